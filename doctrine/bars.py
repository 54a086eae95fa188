"""Replay's input bars: a tuple per bar (`RawBar`) or six columns (`BarColumns`).

A C CSV parser hands over columns; building a tuple per bar from them costs more than the
replay loop's own bookkeeping, so `replay_all` reads the columns directly, while every other
reader (the report, the sweep, the merge with VIX bars) sees a Sequence of RawBar.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import overload

RawBar = tuple[float, float, float, float, float, float]
"""(start in UTC epoch seconds, open, high, low, close, volume)."""


class BarColumns(Sequence[RawBar]):
    """Bars as six columns, the way a C CSV parser hands them over: `replay_all` reads the
    columns without building a tuple per bar; to everything else a Sequence of RawBar."""

    __slots__ = ("close", "high", "low", "open", "ts", "volume")

    def __init__(self, ts: list[float], open_: list[float], high: list[float],
                 low: list[float], close: list[float], volume: list[float]) -> None:
        if not len(ts) == len(open_) == len(high) == len(low) == len(close) == len(volume):
            raise ValueError("bar columns of different lengths")
        self.ts, self.open, self.high, self.low, self.close, self.volume = (
            ts, open_, high, low, close, volume)

    def __len__(self) -> int:
        return len(self.ts)

    @overload
    def __getitem__(self, i: int) -> RawBar: ...
    @overload
    def __getitem__(self, i: slice) -> list[RawBar]: ...

    def __getitem__(self, i: int | slice) -> RawBar | list[RawBar]:
        if isinstance(i, slice):
            return list(zip(self.ts[i], self.open[i], self.high[i], self.low[i],
                            self.close[i], self.volume[i], strict=True))
        return (self.ts[i], self.open[i], self.high[i], self.low[i], self.close[i],
                self.volume[i])

    def __iter__(self) -> Iterator[RawBar]:
        return zip(self.ts, self.open, self.high, self.low, self.close, self.volume,
                   strict=True)
