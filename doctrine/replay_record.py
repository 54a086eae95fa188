"""One line of `tools.replay --out`: a bar of one symbol, its indicators, the strategy, any
signal or exit, formatted fast (replay writes one per bar)."""

from __future__ import annotations

import datetime as dt
import json
import time
from typing import Any

from doctrine.indicators import IndicatorValues


class ReplayRecord:
    """One output line: a bar of one symbol, its indicators, the strategy and any signal."""

    __slots__ = ("exit", "signal", "strategy", "values")

    def __init__(self, values: IndicatorValues, strategy: str,
                 signal: dict[str, Any] | None, exit: dict[str, Any] | None) -> None:
        self.values = values
        self.strategy = strategy
        self.signal = signal
        self.exit = exit

    def to_json(self) -> str:
        """The JSON line. Numbers carry 12 significant digits (1e-9 at SPY prices): shortest
        round-trip repr costs three times as much and replay's throughput is a goal."""
        v = self.values
        nums = (v.close, v.rsi, v.ema_fast, v.ema_slow, v.vwap, v.bb_upper, v.bb_mid,
                v.bb_lower)
        if None in nums:
            body = _LINE % tuple("null" if x is None else format(x, ".12g") for x in nums)
        else:
            body = _LINE_NUMBERS % nums
        sig = "null" if self.signal is None else json.dumps(self.signal, separators=(",", ":"))
        ex = "null" if self.exit is None else json.dumps(self.exit, separators=(",", ":"))
        return (f'{{"ts":"{_iso_utc(v.ts)}","symbol":"{v.symbol}",{body},'
                f'"strategy":"{self.strategy}","signal":{sig},"exit":{ex}}}')


_LINE = ('"close":%s,"rsi":%s,"ema_fast":%s,"ema_slow":%s,"vwap":%s,"bb_upper":%s,'
         '"bb_mid":%s,"bb_lower":%s')
_LINE_NUMBERS = _LINE.replace("%s", "%.12g")


_day_cache: list[Any] = [None, ""]


def _iso_utc(ts: float) -> str:
    """`2019-02-11T14:30:00Z` for an epoch instant; the date part is cached (hot path)."""
    secs = int(ts)
    if secs != ts:
        return dt.datetime.fromtimestamp(ts, dt.UTC).isoformat().replace("+00:00", "Z")
    day, rem = divmod(secs, 86400)
    if day != _day_cache[0]:
        _day_cache[0] = day
        _day_cache[1] = time.strftime("%Y-%m-%dT", time.gmtime(day * 86400))
    clock = _clock_cache.get(rem)
    if clock is None:
        h, r = divmod(rem, 3600)
        clock = _clock_cache[rem] = f"{h:02d}:{r // 60:02d}:{r % 60:02d}Z"
    return _day_cache[1] + clock  # type: ignore[no-any-return]


_clock_cache: dict[int, str] = {}
