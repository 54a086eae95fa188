"""`python -m tools.bench_journal [--lines N] [--repeat R]`: what one journal line costs the caller.

The journal is written from actors' own tasks (a bar, a signal, an order status), so its cost on
the calling thread is cost on the hot path. This opens the real `open_logging` (rotating files in a
temporary directory, the writer threads running) and times, on the caller's thread:

  journal   `Journal.emit("bar", ...)` with a bar's fields (a datetime, five numbers, a symbol),
            encoded at once: a line from outside the event loop's thread (or no trio at all)
  held      the same call on the trio thread under open_logging's idle hand-off, as every actor
            makes it: the event is kept and encoded when the loop goes idle (the loop idles
            1 ms after every 100 calls, as between bars)
  human     `logger.info(...)` of one formatted human line

It prints p50 / p99 / mean in µs over N lines (R rounds; the best round, as other load on a shared
machine only ever adds), then checks every journal line reached the file.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import trio

from runtime.infra.logs import Journal, open_logging

BAR_TS = dt.datetime(2026, 11, 20, 14, 30, tzinfo=dt.UTC)


def _quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


BLOCK = 100
"""Calls timed back to back; then 1 ms of rest, so the writer thread keeps up as in life."""


def _time_block(call: Callable[[int], object], first: int, lines: int, out: list[float]) -> None:
    """Time calls `first` .. `first + BLOCK` (at most `lines`), per call in µs, into `out`."""
    clock = time.perf_counter_ns
    for i in range(first, min(first + BLOCK, lines)):
        start = clock()
        call(i)
        out.append((clock() - start) / 1000)


def _time_calls(call: Callable[[int], object], lines: int) -> list[float]:
    out: list[float] = []
    for first in range(0, lines, BLOCK):
        _time_block(call, first, lines, out)
        time.sleep(0.001)
    return out


async def _time_calls_in_trio(call: Callable[[int], object], lines: int) -> list[float]:
    """`_time_calls` on the trio thread: the loop idles (and hands the held lines over) in
    each rest."""
    out: list[float] = []
    for first in range(0, lines, BLOCK):
        _time_block(call, first, lines, out)
        await trio.sleep(0.001)
    return out


def _emit_bar(journal: Journal) -> Callable[[int], object]:
    def emit(i: int) -> object:
        journal.emit("bar", "root.link.bar_feed", symbol="SPY", bar_ts=BAR_TS,
                     open=601.25 + i % 7, high=601.5, low=600.75, close=601.0,
                     volume=12_345 + i, session_id=3)
        return None
    return emit


def _bench_held(log_dir: Path, lines: int, repeat: int) -> list[list[float]]:
    async def main() -> list[list[float]]:
        with open_logging(log_file=log_dir / "bot.log", max_bytes=1 << 30, backup_count=2,
                          console=False) as journal:
            return [await _time_calls_in_trio(_emit_bar(journal), lines)
                    for _ in range(repeat)]
    rounds: list[list[float]] = trio.run(main)
    return rounds


def _report(name: str, rounds: list[list[float]]) -> str:
    best = min(rounds, key=lambda r: _quantile(r, 0.99))
    return (f"{name:8} p50 {statistics.median(best):7.1f} µs  p99 {_quantile(best, .99):7.1f} µs  "
            f"mean {statistics.fmean(best):7.1f} µs  ({len(best)} lines, best of {len(rounds)})")


def bench(lines: int, repeat: int) -> list[str]:
    journal_rounds: list[list[float]] = []
    human_rounds: list[list[float]] = []
    with tempfile.TemporaryDirectory() as tmp:
        log_file = Path(tmp) / "bot.log"
        with open_logging(log_file=log_file, max_bytes=1 << 30, backup_count=2,
                          console=False) as journal:
            logger = logging.getLogger("root.brain.indicators")
            emit = _emit_bar(journal)

            def human(i: int) -> object:
                logger.info("bar %s %s close %.2f", "SPY", BAR_TS, 601.0 + i % 7)
                return None

            for _ in range(repeat):
                journal_rounds.append(_time_calls(emit, lines))
                human_rounds.append(_time_calls(human, lines))
        held_dir = Path(tmp) / "held"
        held_rounds = _bench_held(held_dir, lines, repeat)
        on_disk = [_lines_in(Path(tmp) / "events.jsonl"), _lines_in(held_dir / "events.jsonl")]
    out = [_report("journal", journal_rounds), _report("held", held_rounds),
           _report("human", human_rounds)]
    expected = lines * repeat
    for name, parsed in zip(("journal", "held"), on_disk, strict=True):
        out.append(f"{name} lines on disk: {len(parsed)} of {expected}"
                   + ("" if len(parsed) == expected else "  (MISSING LINES)"))
    return out


def _lines_in(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.bench_journal", description=__doc__)
    parser.add_argument("--lines", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    for line in bench(args.lines, args.repeat):
        print(line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
