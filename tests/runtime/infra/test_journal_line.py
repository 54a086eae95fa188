"""The journal's line format (journal_line.py): what orjson writes is byte for byte what the
journal wrote with json.dumps before issue 17, and every kind of field reads back as it did."""

from __future__ import annotations

import datetime as dt
import enum
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pydantic
import pytest

from runtime.infra.journal_line import encode_line


def _old_default(value: Any) -> Any:
    """The journal's encoder before orjson (issue 17's baseline), as it was."""
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json")
    return str(value)


def _old_clean(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _old_clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_old_clean(v) for v in value]
    return value


def _old_line(record: dict[str, Any]) -> str:
    return json.dumps(_old_clean(record), default=_old_default, separators=(",", ":"),
                      allow_nan=False)


class _Side(enum.StrEnum):
    BUY = "BUY"


class _Model(pydantic.BaseModel):
    symbol: str
    at: dt.datetime


BAR = {"ts": "2026-11-20T14:30:00.000000Z", "event": "bar", "actor": "root.link.bar_feed",
       "symbol": "SPY", "bar_ts": dt.datetime(2026, 11, 20, 9, 30, tzinfo=dt.timezone(
           dt.timedelta(hours=-5))), "open": 601.25, "high": 601.5, "low": 600.75,
       "close": 601.0, "volume": 12345, "session_id": 3, "gap": None, "ok": True}


def test_a_typical_line_is_byte_for_byte_what_the_journal_wrote_before() -> None:
    assert encode_line(BAR).decode() == _old_line(BAR)
    tree = {"ts": BAR["ts"], "event": "tree", "actor": "runtime", "reason": "start",
            "tree": {"name": "root", "children": [{"name": "a", "channels": {"inbox": 0}}]}}
    assert encode_line(tree).decode() == _old_line(tree)


@pytest.mark.parametrize("value", [
    dt.date(2026, 11, 20), dt.time(9, 30), Path("/x/y"), {3}, (1, 2), frozenset({"a"}),
    float("nan"), float("inf"), np.float64(1.5), np.float64("nan"), np.int64(7), np.bool_(True),
    _Side.BUY, _Model(symbol="SPY", at=dt.datetime(2026, 1, 2, tzinfo=dt.UTC)),
    {"nested": [float("nan"), (1.5, "x")]}, {1: "int key"}, "ünïcode", object(), 2 ** 80,
])
def test_every_kind_of_field_reads_back_as_it_did(value: Any) -> None:
    record = {"ts": BAR["ts"], "event": "x", "actor": "a", "v": value}
    new = json.loads(encode_line(record))
    old = json.loads(_old_line(record))
    if isinstance(value, object) and type(value) is object:
        assert new["v"].startswith("<object object at") and old["v"].startswith("<object")
    else:
        assert new == old


