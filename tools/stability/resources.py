"""Resource samples and the RSS trend that tells a leak from noise.

A restart resets RSS, so a regression over all samples would read every restart as a drop
and hide a leak (or, with a restart late in the period, invent one). The slope here is the
*pooled within-run* least-squares slope: each run gets its own intercept and they share one
slope, weighted by how much time each run spans. It is the ordinary slope when there is one run.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

from tools.stability.thresholds import RSS_SLOPE_MIN_SPAN_HOURS, RSS_WARMUP_MINUTES


@dataclass(frozen=True, slots=True)
class Sample:
    ts: dt.datetime
    run: int
    run_start: dt.datetime
    cpu_pct: float | None
    rss_mb: float | None
    log_dir_mb: float | None


@dataclass(frozen=True, slots=True)
class Slope:
    mb_per_hour: float
    runs: int
    hours: float


def rss_slope(samples: Iterable[Sample], *, warmup_min: float = RSS_WARMUP_MINUTES,
              min_span_h: float = RSS_SLOPE_MIN_SPAN_HOURS) -> Slope | None:
    """Pooled within-run RSS slope in MB/hour, or None when no run has enough data."""
    by_run: dict[int, list[tuple[float, float]]] = {}
    for s in samples:
        if s.rss_mb is None:
            continue
        if (s.ts - s.run_start).total_seconds() < warmup_min * 60:
            continue
        hours = (s.ts - s.run_start).total_seconds() / 3600
        by_run.setdefault(s.run, []).append((hours, s.rss_mb))
    sxy = sxx = span_total = 0.0
    used = 0
    for points in by_run.values():
        if len(points) < 3:
            continue
        xs = [p[0] for p in points]
        span = max(xs) - min(xs)
        if span < min_span_h:
            continue
        mx = sum(xs) / len(xs)
        my = sum(p[1] for p in points) / len(points)
        sxy += sum((x - mx) * (y - my) for x, y in points)
        sxx += sum((x - mx) ** 2 for x in xs)
        span_total += span
        used += 1
    if used == 0 or sxx == 0:
        return None
    return Slope(mb_per_hour=sxy / sxx, runs=used, hours=span_total)


def mean(values: Iterable[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return sum(present) / len(present) if present else None
