"""One journal line: the event as compact JSON, in the format the journal has always written.

Timestamps as `2026-11-20T14:30:00.000000Z`, NaN and infinities as null, what JSON has no type
for as its text, secrets scrubbed; `encode_line` never raises (a bad field must not lose the
event). tests/runtime/infra/test_journal_line.py pins the format byte for byte.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import orjson

from runtime.infra.log_context import UTC, secret_bytes


def _json_default(value: Any) -> Any:
    """What JSON has no type for, as the journal has always written it."""
    if isinstance(value, dt.datetime):
        return _iso_utc(value)
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, float):              # a float subclass (numpy.float64): NaN/inf → null
        return float(value) if math.isfinite(value) else None
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json")
    return str(value)


def _iso_utc(value: dt.datetime) -> str:
    """`2026-11-20T14:30:00.000000Z`: always microseconds, always Z (on every line: kept cheap,
    no conversion for a value already in UTC)."""
    if value.tzinfo is not UTC:
        value = value.astimezone(UTC)
    return value.isoformat(timespec="microseconds")[:-6] + "Z"


def _clean(value: Any) -> Any:
    """JSON has no NaN/inf: write them as null rather than produce an unreadable line."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


# orjson writes datetimes and dataclasses itself, differently from the journal's format: hand
# them to `_json_default`. It writes NaN/inf as null, as `_clean` does for the fallback.
_ORJSON_OPTIONS = (orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS
                   | orjson.OPT_NON_STR_KEYS)


def encode_line(record: Mapping[str, Any]) -> bytes:
    """One journal line (no newline), secrets scrubbed. Never raises: a bad field must not lose
    the event, so what cannot be encoded at all becomes a `journal_error` field."""
    try:
        line = orjson.dumps(record, default=_json_default, option=_ORJSON_OPTIONS)
    except (TypeError, ValueError):    # orjson.JSONEncodeError is a TypeError (ints > 64 bits...)
        try:
            line = json.dumps(_clean(dict(record)), default=_json_default,
                              separators=(",", ":"), allow_nan=False).encode()
        except (TypeError, ValueError) as exc:
            line = json.dumps({"ts": record.get("ts"), "event": record.get("event"),
                               "actor": record.get("actor"),
                               "journal_error": str(exc)}).encode()
    if secret_bytes:
        for secret in secret_bytes:
            if secret in line:
                line = line.replace(secret, b"***")
    return line
