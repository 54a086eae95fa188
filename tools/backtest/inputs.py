"""Reading replay's inputs: bar CSVs, VIX files (intraday bars or CBOE's daily file), option quotes.

Every reader refuses bad input with an `InputError` naming the file and line (the CLI prints
it as one line and exits 2). The bar reader is on the end-to-end throughput path: a file is
read by pandas' C parser (pandas is loaded anyway, by the NYSE calendar; ~0.8 us a bar
against ~2 us in Python), which yields the very floats `float()` does (a test compares every
bundled file); anything it does not read cleanly (a price it cannot convert, a missing one,
a timestamp without a UTC offset, time not ascending) is read again by the Python readers,
which accept what they always did and name the bad line.
"""

from __future__ import annotations

import datetime as dt
import io
import itertools
import operator
from collections.abc import Sequence
from pathlib import Path
from typing import IO

from doctrine.bars import BarColumns, RawBar
from doctrine.option_quotes import QuoteRow, RecordedQuotes
from doctrine.vix_daily import DailyVix
from messages.market import OptionSpec

EXPECTED_HEADER = ["timestamp", "open", "high", "low", "close", "volume"]
DAILY_VIX_HEADER = ["date", "open", "high", "low", "close"]
QUOTES_HEADER = ["timestamp", "contract", "bid", "ask"]
QUOTES_OPTIONAL = ["volume", "open_interest"]


class InputError(Exception):
    """Bad input: reported as one line, exit code 2."""


def _open(path: Path) -> IO[str]:
    try:
        return path.open(encoding="utf-8-sig", newline="")
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc.strerror or exc}") from None


def _header(path: Path, handle: IO[str]) -> list[str]:
    return [h.strip() for h in handle.readline().strip().lower().split(",")]


class _EpochParser:
    """ISO 8601 with a UTC offset -> UTC epoch seconds, fast for `YYYY-MM-DDTHH:MM:SS+HH:MM`."""

    def __init__(self) -> None:
        self._bases: dict[str, float] = {}

    def __call__(self, text: str) -> float:
        if len(text) == 25 and text[10] == "T" and text[13] == ":" and text[16] == ":":
            key = text[:10] + text[19:]
            base = self._bases.get(key)
            if base is None:
                base = self._bases[key] = _slow(text[:10] + "T00:00:00" + text[19:])
            h, m, s = int(text[11:13]), int(text[14:16]), int(text[17:19])
            if h < 24 and m < 60 and s < 60:
                return base + h * 3600 + m * 60 + s
        return _slow(text)


def _slow(text: str) -> float:
    when = dt.datetime.fromisoformat(text)
    if when.tzinfo is None:
        raise ValueError("timestamp has no UTC offset")
    return when.timestamp()


def read_bars_csv(path: Path) -> list[RawBar]:
    """Bars from a CSV, as (start epoch s, open, high, low, close, volume), ascending."""
    return list(read_bar_columns(path))


def read_bar_columns(path: Path) -> Sequence[RawBar]:
    """`read_bars_csv` without a tuple per bar where the C parser read the file (replay's
    throughput path: `replay_all` reads the columns)."""
    with _open(path) as handle:
        header = _header(path, handle)
        if header != EXPECTED_HEADER:
            raise InputError(f"{path}: header must be {','.join(EXPECTED_HEADER)}, "
                             f"got {','.join(header)}")
    columns = _bars_by_pandas(path)
    if columns is not None:
        return columns
    with _open(path) as handle:
        handle.readline()
        body = handle.read()
    fast = _bars_by_column(body)
    if fast is not None:
        return fast
    return _bars(path, io.StringIO(body))     # the careful pass names the bad line


def _bars_by_pandas(path: Path) -> BarColumns | None:
    """The whole file through pandas' C parser, or None if it does not read cleanly (then
    the Python readers decide). Timestamps must carry their offset (`%z`), as they must for
    the Python reader; an empty volume is 0, as there."""
    import numpy as np
    import pandas as pd

    floats = {name: np.float64 for name in EXPECTED_HEADER[1:]}
    try:
        frame = pd.read_csv(path, header=0, names=EXPECTED_HEADER, engine="c",
                            dtype={"timestamp": str, **floats}, keep_default_na=False,
                            na_values=[""], encoding="utf-8-sig")
        stamps = pd.to_datetime(frame["timestamp"], format="%Y-%m-%dT%H:%M:%S%z", utc=True)
        epochs = stamps.dt.as_unit("s").astype("int64").to_numpy()
    except (ValueError, TypeError, OverflowError, pd.errors.ParserError):
        return None
    prices = frame[EXPECTED_HEADER[1:5]]
    if len(frame) == 0 or prices.isna().to_numpy().any() or not (np.diff(epochs) > 0).all():
        return None
    o, h, lo, c = (prices[name].to_numpy().tolist() for name in EXPECTED_HEADER[1:5])
    volume = frame["volume"].fillna(0.0).to_numpy().tolist()
    return BarColumns(epochs.astype(np.float64).tolist(), o, h, lo, c, volume)


def _bars_by_column(body: str) -> list[RawBar] | None:
    """The whole file column by column (C-speed conversions), or None if anything looks off
    (then the line-by-line reader finds and names the problem). Same floats as `float()`."""
    lines = body.splitlines()
    while lines and not lines[-1].strip():
        lines.pop()
    if not lines:
        return []
    fields = ",".join(lines).split(",")
    if len(fields) != 6 * len(lines):
        return None
    try:
        stamps = _epochs(fields[0::6])
        columns = [list(map(float, fields[k::6])) for k in (1, 2, 3, 4)]
        raw_volume = fields[5::6]
        volume = (list(map(float, raw_volume)) if all(raw_volume)
                  else [float(v) if v else 0.0 for v in raw_volume])
    except (ValueError, IndexError):
        return None
    if not all(map(operator.lt, stamps, itertools.islice(stamps, 1, None))):
        return None
    return list(zip(stamps, *columns, volume, strict=True))


def _epochs(stamps: Sequence[str]) -> list[float]:
    """UTC epoch seconds of `YYYY-MM-DDTHH:MM:SS+HH:MM` strings: the date+offset part and
    the clock part are each converted once and cached (a file has few of either)."""
    bases: dict[str, float] = {}
    clocks: dict[str, int] = {}
    out: list[float] = []
    append = out.append
    for text in stamps:
        try:
            append(bases[text[:10] + text[19:]] + clocks[text[11:19]])
        except KeyError:
            if len(text) != 25 or text[10] != "T" or text[13] != ":" or text[16] != ":":
                append(_slow(text))
                continue
            h, m, sec = int(text[11:13]), int(text[14:16]), int(text[17:19])
            if not (h < 24 and m < 60 and sec < 60):
                raise ValueError(f"bad time {text!r}") from None
            bases[text[:10] + text[19:]] = _slow(text[:10] + "T00:00:00" + text[19:])
            clocks[text[11:19]] = h * 3600 + m * 60 + sec
            append(bases[text[:10] + text[19:]] + clocks[text[11:19]])
    return out


def _bars(path: Path, handle: IO[str]) -> list[RawBar]:
    out: list[RawBar] = []
    append = out.append
    parse = _EpochParser()
    last = float("-inf")
    for lineno, line in enumerate(handle, start=2):
        parts = line.rstrip("\r\n").split(",")
        try:
            ts = parse(parts[0])
            vol = parts[5] if len(parts) > 5 else ""
            bar = (ts, float(parts[1]), float(parts[2]), float(parts[3]), float(parts[4]),
                   float(vol) if vol else 0.0)
        except (ValueError, IndexError) as exc:
            if not line.strip():
                continue
            raise InputError(f"{path}:{lineno}: {exc}") from None
        if ts <= last:
            raise InputError(f"{path}:{lineno}: timestamps must be ascending, unique")
        last = ts
        append(bar)
    return out


def infer_bar_seconds(bars: Sequence[RawBar]) -> int:
    """The smallest step between consecutive bars (60 for 1-minute files)."""
    starts = bars.ts if isinstance(bars, BarColumns) else list(map(operator.itemgetter(0),
                                                                     bars))
    if len(starts) > 1:
        step: float = min(map(operator.sub, itertools.islice(starts, 1, None), starts))
        if step > 0:                 # ascending (the readers make sure): no filtering needed
            return round(step)
    steps = [d for d in map(operator.sub, itertools.islice(starts, 1, None), starts) if d > 0]
    return round(min(steps)) if steps else 60


def read_vix(path: Path, *, first: dt.date | None = None,
             last: dt.date | None = None) -> list[RawBar] | DailyVix:
    """Intraday VIX bars (the bars header) or CBOE's daily file (`date,open,high,low,close`).

    For a daily file, `first`/`last` (the replayed dates) skip converting rows that cannot
    matter: CBOE's file spans decades; a week before `first` covers the previous close."""
    with _open(path) as handle:
        header = _header(path, handle)
        if header == EXPECTED_HEADER:
            return _bars(path, handle)
        if header != DAILY_VIX_HEADER:
            raise InputError(f"{path}: header must be {','.join(EXPECTED_HEADER)} (intraday "
                             f"bars) or {','.join(DAILY_VIX_HEADER)} (CBOE's daily file), "
                             f"got {','.join(header)}")
        rows: list[tuple[dt.date, float, float]] = []
        lo = (first - dt.timedelta(days=10)).isoformat() if first is not None else ""
        hi = last.isoformat() if last is not None else "9999"
        wanted = [(n, line) for n, line in enumerate(handle, start=2) if lo <= line[:10] <= hi]
        for lineno, line in wanted:
            if not line.strip():
                continue
            parts = line.rstrip("\r\n").split(",")
            try:
                day = dt.date.fromisoformat(parts[0].strip())
                open_, close = float(parts[1]), float(parts[4])
            except (ValueError, IndexError) as exc:
                raise InputError(f"{path}:{lineno}: {exc}") from None
            if not (open_ > 0 and close > 0):
                raise InputError(f"{path}:{lineno}: VIX open/close must be positive")
            rows.append((day, open_, close))
        if not rows:
            raise InputError(f"{path}: no VIX rows"
                             + (f" from {lo} to {hi}" if first or last else ""))
        return DailyVix(rows)


def read_option_quotes(path: Path, *, max_age_s: float = 900.0) -> RecordedQuotes:
    """`timestamp,contract,bid,ask[,volume,open_interest]` (see doctrine/option_quotes.py)."""
    with _open(path) as handle:
        header = _header(path, handle)
        if header[:4] != QUOTES_HEADER or header[4:] not in (QUOTES_OPTIONAL[:0],
                                                             QUOTES_OPTIONAL[:1],
                                                             QUOTES_OPTIONAL):
            raise InputError(f"{path}: header must be {','.join(QUOTES_HEADER)}"
                             f"[,{','.join(QUOTES_OPTIONAL)}], got {','.join(header)}")
        parse = _EpochParser()
        specs: dict[str, OptionSpec] = {}
        rows: list[QuoteRow] = []
        for lineno, line in enumerate(handle, start=2):
            if not line.strip():
                continue
            parts = [p.strip() for p in line.rstrip("\r\n").split(",")]
            try:
                ts = parse(parts[0])
                spec = specs.get(parts[1])
                if spec is None:
                    spec = specs[parts[1]] = parse_contract(parts[1])
                nums = [float(p) if p else None for p in parts[2:6]]
            except (ValueError, IndexError) as exc:
                raise InputError(f"{path}:{lineno}: {exc}") from None
            nums += [None] * (4 - len(nums))
            bid, ask, volume, oi = nums
            if bid is not None and ask is not None and ask < bid:
                raise InputError(f"{path}:{lineno}: ask {ask} below bid {bid}")
            rows.append((ts, spec, bid, ask, volume, oi))
    if not rows:
        raise InputError(f"{path}: no quotes")
    return RecordedQuotes(rows, max_age_s=max_age_s, source=path.name)


def parse_contract(key: str) -> OptionSpec:
    """`SPY 2024-03-01 500C` (OptionSpec.key) -> the spec."""
    try:
        underlying, expiry, strike_right = key.split()
        right = strike_right[-1].upper()
        if right not in ("C", "P"):
            raise ValueError
        return OptionSpec(underlying=underlying.upper(), expiry=dt.date.fromisoformat(expiry),
                          strike=float(strike_right[:-1]), right=right)
    except ValueError:
        raise ValueError(f"contract {key!r} is not like 'SPY 2024-03-01 500C'") from None


def symbol_from_filename(path: Path) -> str:
    return path.name.split("_", 1)[0].split(".", 1)[0].upper()
