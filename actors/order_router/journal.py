"""`logs/trades.jsonl`: the trade journal (one JSON line per decision, order, fill, exit, P&L)."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
from pathlib import Path
from typing import IO, Any

TRADES_FILE = "trades.jsonl"


class TradeJournal:
    """`logs/trades.jsonl`: one JSON line per decision, order, fill, exit and P&L."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file: IO[str] | None = None

    def write(self, ts: dt.datetime, kind: str, **fields: Any) -> None:
        record = {"ts": ts.astimezone(dt.UTC).isoformat().replace("+00:00", "Z"), "kind": kind,
                  **fields}
        try:
            if self._file is None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._file = self.path.open("a", encoding="utf-8")
            self._file.write(json.dumps(record, default=str, allow_nan=False) + "\n")
            self._file.flush()
        except (OSError, ValueError):
            self.close()
            raise

    def close(self) -> None:
        if self._file is not None:
            with contextlib.suppress(OSError):
                self._file.close()
            self._file = None


