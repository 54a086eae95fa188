"""ResourceProbe: how the process is doing, every minute in the journal, and a warning when a
resource trends the wrong way.

An always-on bot dies of slow things: a leak that adds megabytes an hour, logs that fill the
disk, a busy loop that keeps one core warm, a blocking call that makes every wake-up late. So
the probe records process CPU (averaged), RSS, open handles, the log directory's size, free
disk, event-loop lag and channel depths as a `resource` event every minute (the stability
report reads them), and warns through `ctx.alert` when

  * CPU averages over CPU_WARN_PCT for CPU_WINDOW_S,
  * RSS grows steadily (a robust slope over hours, RSS_LEAK_*): a leak, not one spike,
  * the log directory passes LOG_DIR_WARN_MB, free disk falls under DISK_FREE_WARN_GB,
  * the loop lags (a `trio.sleep` wakes late by more than LOOP_LAG_WARN_MS).

Each warning fires once when its condition starts and says "back to normal" once when it ends
(hysteresis), never every minute. Sampling never blocks the loop: the process figures are a
few procfs / NtQuery reads (~0.1 ms, made inline), and the directory walk and the disk query,
which can block on a slow or network drive, run in a worker thread. CPU is measured from the
process's cumulative CPU time, so the average over any window is exact (psutil's
`cpu_percent()` returns 0.0 on its first call and blocks with `interval=`; neither is used).

All durations here are trio seconds (real seconds in production, also on an accelerated
simulated clock): CPU, memory and lag are properties of the real process, not of market time.

On trio's virtual clock (MockClock, the multi-day simulations) real resource figures mean
little and a worker thread would let virtual time leap ahead while it runs (the clock
autojumps whenever the loop is idle), so there the probe reads inline, without
the lag ticker, every five virtual minutes (`ProbeConfig.virtual()`).
"""

from __future__ import annotations

import math
import os
import statistics
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

import psutil
import trio

from messages.status import ResourceStatus
from runtime.infra.clock import on_virtual_clock
from runtime.ops.status_view import StatusView
from runtime.supervision.actor import ActorContext
from runtime.supervision.channels import Latest

# -- cadence ------------------------------------------------------------------------------
SAMPLE_EVERY_S = 10.0
"""CPU time and RSS are read this often (cheap: a few /proc reads in a worker thread)."""

REPORT_EVERY_S = 60.0
"""A `resource` event this often; the log directory is walked and the disk read at this pace."""

VIRTUAL_REPORT_EVERY_S = 300.0
"""On trio's virtual clock (MockClock) the probe samples and reports this often instead."""

LAG_TICK_S = 1.0
"""The loop-lag probe sleeps this long and measures how late it wakes. Any stall longer than
this is always seen; shorter ones are seen when they overlap a wake-up."""

# -- thresholds ---------------------------------------------------------------------------
CPU_WARN_PCT = 5.0
"""Process CPU (percent of one core) averaged over CPU_WINDOW_S above which the bot warns.
A bot that waits on one-minute bars idles; more means a busy loop or a retry storm. The same
5 % is the stability report's criterion."""

CPU_CLEAR_PCT = 4.0
"""...and under which the warning clears (hysteresis: no flapping around 5 %)."""

CPU_WINDOW_S = 15 * 60.0
"""The CPU average is judged over this window only once a full window has been sampled."""

RSS_LEAK_MB_PER_HOUR = 2.0
"""RSS growth above this many MB per hour, sustained over RSS_LEAK_MIN_SPAN_S or more, is a
leak (~50 MB a day: a 150 MB process would not survive a week). Same number as the stability
report's RSS_SLOPE_MAX_MB_PER_HOUR."""

RSS_LEAK_CLEAR_MB_PER_HOUR = 1.0
"""The leak warning clears when the slope falls under this."""

RSS_WARMUP_S = 30 * 60.0
"""RSS samples of the first half hour are ignored: imports, history and caches fill up there."""

RSS_LEAK_MIN_SPAN_S = 3 * 3600.0
"""The slope is judged only over at least this much sampled time after warm-up. With GC moving
RSS by a few MB, one hour of data gives a slope noise around 1 MB/h; three hours about 0.25."""

RSS_LEAK_WINDOW_S = 6 * 3600.0
"""The slope is computed over the most recent this-many seconds, so an old, finished growth
(a cache that filled in the morning) stops counting."""

RSS_BUCKET_S = 5 * 60.0
"""Samples are reduced to one median per bucket before the slope: a one-sample spike vanishes
there, and the Theil-Sen slope (median of pairwise slopes) ignores a spike lasting a few
buckets. A leak is judged on the smallest of three slopes: over the whole window and over
each half of it. A steady leak shows in all three; a step (a cache that filled once) shows
in at most one half, so it never passes for a leak."""

LOG_DIR_WARN_MB = 100.0
"""The log directory above this size is a warning (default rotation keeps ~2 x 11 x 10 MB at
most, so growth past 100 MB means something logs far more than it should). Same as the
stability report's criterion."""

LOG_DIR_CLEAR_MB = 90.0

DISK_FREE_WARN_GB = 2.0
"""Free space on the drive of the log directory under this is a warning: the logs, the state
files and Windows itself need room, and a full disk loses the journal."""

DISK_FREE_CLEAR_GB = 3.0

LOOP_LAG_WARN_MS = 500.0
"""The worst wake-up delay in a minute above this, for LOOP_LAG_WARN_MINUTES minutes in a row,
is a warning: something blocks the event loop (a synchronous call, a CPU-bound step), and bars
and orders wait behind it."""

LOOP_LAG_STALL_MS = 5000.0
"""A single stall this long is a warning at once: the link's probes time out around here."""

LOOP_LAG_WARN_MINUTES = 3
LOOP_LAG_CLEAR_MS = 100.0

MB = 1024 * 1024
GB = 1024 * MB


@dataclass(frozen=True)
class ProbeConfig:
    sample_every_s: float = SAMPLE_EVERY_S
    report_every_s: float = REPORT_EVERY_S
    lag_tick_s: float = LAG_TICK_S
    cpu_warn_pct: float = CPU_WARN_PCT
    cpu_clear_pct: float = CPU_CLEAR_PCT
    cpu_window_s: float = CPU_WINDOW_S
    rss_leak_mb_per_hour: float = RSS_LEAK_MB_PER_HOUR
    rss_leak_clear_mb_per_hour: float = RSS_LEAK_CLEAR_MB_PER_HOUR
    rss_warmup_s: float = RSS_WARMUP_S
    rss_leak_min_span_s: float = RSS_LEAK_MIN_SPAN_S
    rss_leak_window_s: float = RSS_LEAK_WINDOW_S
    rss_bucket_s: float = RSS_BUCKET_S
    log_dir_warn_mb: float = LOG_DIR_WARN_MB
    log_dir_clear_mb: float = LOG_DIR_CLEAR_MB
    disk_free_warn_gb: float = DISK_FREE_WARN_GB
    disk_free_clear_gb: float = DISK_FREE_CLEAR_GB
    loop_lag_warn_ms: float = LOOP_LAG_WARN_MS
    loop_lag_stall_ms: float = LOOP_LAG_STALL_MS
    loop_lag_warn_minutes: int = LOOP_LAG_WARN_MINUTES
    loop_lag_clear_ms: float = LOOP_LAG_CLEAR_MS


    threaded_disk: bool = True
    """Walk the log directory and read the disk in a worker thread."""

    @classmethod
    def virtual(cls) -> ProbeConfig:
        """For trio's virtual clock: a sample and a report every VIRTUAL_REPORT_EVERY_S,
        inline, no lag ticker (a simulated week must not pay for 600,000 ticks)."""
        return cls(sample_every_s=VIRTUAL_REPORT_EVERY_S, report_every_s=VIRTUAL_REPORT_EVERY_S,
                   lag_tick_s=0.0, threaded_disk=False)


    @classmethod
    def accelerated(cls, speed: float) -> ProbeConfig:
        """For a simulated clock running `speed` times real time (a soak, the demo): report
        once per simulated minute, but at most once per wall second, so a trading day that
        lasts a minute of wall time still leaves a resource trend for the stability report."""
        report = max(1.0, REPORT_EVERY_S / speed)
        return cls(sample_every_s=max(0.5, min(SAMPLE_EVERY_S, report / 2)),
                   report_every_s=report)


@dataclass(frozen=True)
class Inbox:
    status: StatusView | None = None
    """The status read-model: the channel depths reported with each sample."""


@dataclass(frozen=True)
class Outbox:
    """Each report goes to the journal, to `resources` (the status read-model: /health, the
    console) and, past a limit, to alerts."""

    resources: Latest[ResourceStatus | None] | None = None


# -- sampling -----------------------------------------------------------------------------
@dataclass(frozen=True)
class ProcessSample:
    """Cheap process figures. None where the platform or permissions do not tell."""

    cpu_seconds: float | None      # cumulative user + system CPU time of this process
    rss_bytes: int | None
    handles: int | None            # open file descriptors (POSIX) or handles (Windows)
    threads: int | None


@dataclass(frozen=True)
class DiskSample:
    log_dir_bytes: int | None
    disk_free_bytes: int | None


class Sampler(Protocol):
    """Where the numbers come from: psutil in production, a script in tests."""

    async def sample_process(self) -> ProcessSample: ...

    async def sample_disk(self) -> DiskSample: ...


class PsutilSampler:
    """Reads this process with psutil. The directory walk and the disk query go to a worker
    thread (`threaded_disk`), so a slow drive (a network share, an antivirus scan of the log
    directory) never stalls the event loop."""

    def __init__(self, log_dir: Path, *, threaded_disk: bool = True) -> None:
        self._log_dir = log_dir
        self._threaded_disk = threaded_disk
        self._process = psutil.Process()

    async def sample_process(self) -> ProcessSample:
        await trio.lowlevel.checkpoint()
        return self._read_process()

    async def sample_disk(self) -> DiskSample:
        if self._threaded_disk:
            return await trio.to_thread.run_sync(self._read_disk)
        await trio.lowlevel.checkpoint()
        return self._read_disk()

    def _read_process(self) -> ProcessSample:
        p = self._process
        with p.oneshot():
            cpu = _try(lambda: float(sum(p.cpu_times()[:2])))
            rss = _try(lambda: int(p.memory_info().rss))
            if hasattr(p, "num_handles"):                       # Windows
                handles = _try(lambda: int(p.num_handles()))
            else:
                handles = _try(lambda: int(p.num_fds()))
            threads = _try(lambda: int(p.num_threads()))
        return ProcessSample(cpu_seconds=cpu, rss_bytes=rss, handles=handles, threads=threads)

    def _read_disk(self) -> DiskSample:
        where = self._log_dir if self._log_dir.exists() else Path.cwd()
        free = _try(lambda: int(psutil.disk_usage(str(where)).free))
        return DiskSample(log_dir_bytes=directory_size(self._log_dir), disk_free_bytes=free)


def _try(read: Callable[[], Any]) -> Any:
    try:
        return read()
    except (psutil.Error, OSError, NotImplementedError, AttributeError):
        return None


def directory_size(root: Path) -> int | None:
    """Bytes in all files under `root` (files vanishing mid-walk, e.g. on rotation, are skipped)."""
    if not root.is_dir():
        return None
    total = 0
    stack = [root]
    while stack:
        current = stack.pop()
        try:
            with os.scandir(current) as entries:
                for entry in entries:
                    try:
                        if entry.is_dir(follow_symlinks=False):
                            stack.append(Path(entry.path))
                        elif entry.is_file(follow_symlinks=False):
                            total += entry.stat(follow_symlinks=False).st_size
                    except OSError:
                        continue
        except OSError:
            continue
    return total


# -- judging ------------------------------------------------------------------------------
def theil_sen_slope(points: list[tuple[float, float]]) -> float | None:
    """The median of the slopes between every pair of points (None with fewer than two).

    Robust: up to ~29 % of the points can be anything without moving it much.
    """
    slopes = [(y2 - y1) / (x2 - x1)
              for i, (x1, y1) in enumerate(points) for x2, y2 in points[i + 1:] if x2 != x1]
    return statistics.median(slopes) if slopes else None


class RssTrend:
    """RSS over hours reduced to bucket medians, and their Theil-Sen slope in MB per hour."""

    def __init__(self, *, started_at: float, bucket_s: float, window_s: float,
                 min_span_s: float, warmup_s: float) -> None:
        self._started_at = started_at
        self._bucket_s = bucket_s
        self._window_s = window_s
        self._min_span_s = min_span_s
        self._warmup_s = warmup_s
        self._buckets: deque[tuple[float, float]] = deque()   # (bucket centre, median MB)
        self._current: list[float] = []
        self._current_index: int | None = None
        self._slope: float | None = None      # recomputed when a bucket closes
        self._steady: float | None = None

    def add(self, t: float, rss_mb: float) -> None:
        age = t - self._started_at
        if age < self._warmup_s:
            return
        index = int((age - self._warmup_s) // self._bucket_s)
        if self._current_index is not None and index != self._current_index:
            self._close_bucket()
        self._current_index = index
        self._current.append(rss_mb)

    def _close_bucket(self) -> None:
        assert self._current_index is not None
        centre = (self._started_at + self._warmup_s
                  + (self._current_index + 0.5) * self._bucket_s)
        self._buckets.append((centre, statistics.median(self._current)))
        self._current = []
        while self._buckets and self._buckets[-1][0] - self._buckets[0][0] > self._window_s:
            self._buckets.popleft()
        points = list(self._buckets)
        self._slope = self._steady = None
        if len(points) >= 6 and points[-1][0] - points[0][0] >= self._min_span_s:
            half = len(points) // 2
            slopes = [theil_sen_slope(part) for part in (points, points[:half], points[half:])]
            if all(x is not None for x in slopes):
                per_hour = [x * 3600.0 for x in slopes if x is not None]
                self._slope, self._steady = per_hour[0], min(per_hour)

    def slope_mb_per_hour(self) -> float | None:
        """The Theil-Sen slope over the window; None until the buckets span `min_span_s`."""
        return self._slope

    def steady_slope_mb_per_hour(self) -> float | None:
        """The smallest of the slopes over the window and over each of its halves: what the
        leak warning judges (growth that is there all along, not once)."""
        return self._steady


Change = Literal["raised", "cleared"] | None


@dataclass
class Watch:
    """One warning with hysteresis: raised after `raise_after` bad readings in a row, cleared
    after `clear_after` good ones; readings in between (neither bad nor good) keep the state."""

    key: str
    is_bad: Callable[[float], bool]
    is_good: Callable[[float], bool]
    raise_after: int = 1
    clear_after: int = 1
    is_urgent: Callable[[float], bool] = lambda value: False
    active: bool = False
    _bad: int = 0
    _good: int = 0

    def update(self, value: float | None) -> Change:
        if value is None or not math.isfinite(value):
            return None
        self._bad = self._bad + 1 if self.is_bad(value) else 0
        self._good = self._good + 1 if self.is_good(value) else 0
        if not self.active and (self._bad >= self.raise_after or self.is_urgent(value)):
            self.active = True
            return "raised"
        if self.active and self._good >= self.clear_after:
            self.active = False
            return "cleared"
        return None


@dataclass
class Report:
    """One minute's figures: the fields of the `resource` event."""

    cpu_pct: float | None
    cpu_pct_15m: float | None
    rss_mb: float | None
    rss_slope_mb_h: float | None
    handles: int | None
    threads: int | None
    log_dir_mb: float | None
    disk_free_gb: float | None
    loop_lag_ms: float | None       # None without the lag ticker (virtual clock)
    channels: dict[str, int] = field(default_factory=dict)


class Probe:
    """One incarnation: the samples, the judgements and the alerts."""

    def __init__(self, ctx: ActorContext, sampler: Sampler, config: ProbeConfig,
                 inbox: Inbox | None = None, outbox: Outbox | None = None) -> None:
        self.ctx = ctx
        self.inbox = inbox or Inbox()
        self.outbox = outbox or Outbox()
        self.sampler = sampler
        self.config = config
        now = trio.current_time()
        self._cpu: deque[tuple[float, float]] = deque()   # (trio time, cumulative CPU s)
        self.rss = RssTrend(started_at=now, bucket_s=config.rss_bucket_s,
                            window_s=config.rss_leak_window_s,
                            min_span_s=config.rss_leak_min_span_s, warmup_s=config.rss_warmup_s)
        self._last: ProcessSample | None = None
        self._lag_max = 0.0
        self._sample_errors: set[str] = set()
        c = config
        self.watches = {
            "cpu": Watch("resource:cpu", lambda v: v > c.cpu_warn_pct,
                         lambda v: v < c.cpu_clear_pct),
            "leak": Watch("resource:rss_leak", lambda v: v > c.rss_leak_mb_per_hour,
                          lambda v: v < c.rss_leak_clear_mb_per_hour),
            "logs": Watch("resource:log_dir", lambda v: v > c.log_dir_warn_mb,
                          lambda v: v < c.log_dir_clear_mb),
            "disk": Watch("resource:disk_free", lambda v: v < c.disk_free_warn_gb,
                          lambda v: v > c.disk_free_clear_gb),
            "lag": Watch("resource:loop_lag", lambda v: v > c.loop_lag_warn_ms,
                         lambda v: v < c.loop_lag_clear_ms,
                         raise_after=c.loop_lag_warn_minutes, clear_after=3,
                         is_urgent=lambda v: v > c.loop_lag_stall_ms),
        }

    async def run(self, task_status: trio.TaskStatus[None]) -> None:
        async with trio.open_nursery() as nursery:
            if self.config.lag_tick_s > 0:
                nursery.start_soon(self._measure_lag)
            await self._sample_once()
            task_status.started()
            await self._sample_forever()

    # -- measuring ----------------------------------------------------------------------
    async def _measure_lag(self) -> None:
        tick = self.config.lag_tick_s
        while True:
            before = trio.current_time()
            await trio.sleep(tick)
            lag = trio.current_time() - before - tick
            self._lag_max = max(self._lag_max, lag)

    async def _sample_forever(self) -> None:
        c = self.config
        next_sample = trio.current_time() + c.sample_every_s
        next_report = trio.current_time() + c.report_every_s
        while True:
            await trio.sleep_until(next_sample)
            await self._sample_once()
            now = trio.current_time()
            next_sample = max(next_sample + c.sample_every_s, now)
            if now >= next_report:
                await self._report()
                next_report = max(next_report + c.report_every_s, now)

    async def _sample_once(self) -> None:
        try:
            sample = await self.sampler.sample_process()
        except Exception as exc:            # a probe must never take the bot down
            self._sampling_failed("process", exc)
            return
        now = trio.current_time()
        self._last = sample
        if sample.cpu_seconds is not None:
            self._cpu.append((now, sample.cpu_seconds))
            while len(self._cpu) > 2 and now - self._cpu[1][0] >= self.config.cpu_window_s:
                self._cpu.popleft()
        if sample.rss_bytes is not None:
            self.rss.add(now, sample.rss_bytes / MB)

    def _sampling_failed(self, what: str, exc: Exception) -> None:
        text = f"{what}: {type(exc).__name__}: {exc}"
        if text not in self._sample_errors:          # each distinct error once
            self._sample_errors.add(text)
            self.ctx.log.warning("resource sampling failed (%s); continuing without it", text)

    def cpu_pct(self, over_s: float) -> float | None:
        """Average CPU (% of one core) over the last `over_s` seconds, None if not yet known."""
        if len(self._cpu) < 2:
            return None
        t_end, cpu_end = self._cpu[-1]
        start = None
        for t, cpu in reversed(self._cpu):
            start = (t, cpu)
            if t_end - t >= over_s - 1e-9:
                break
        assert start is not None
        span = t_end - start[0]
        if span <= 0 or span < over_s - 1e-9:
            return None
        return max(0.0, (cpu_end - start[1]) / span * 100.0)

    # -- reporting ----------------------------------------------------------------------
    async def _report(self) -> None:
        try:
            disk = await self.sampler.sample_disk()
        except Exception as exc:
            self._sampling_failed("disk", exc)
            disk = DiskSample(None, None)
        report = self.build_report(disk)
        self._lag_max = 0.0
        self.ctx.emit("resource", **asdict(report))
        self.ctx.set_note(
            f"cpu {_fmt(report.cpu_pct, '%')} rss {_fmt(report.rss_mb, ' MB')} "
            f"lag {_fmt(report.loop_lag_ms, ' ms')}")
        self.judge(report)
        if self.outbox.resources is not None:
            self.outbox.resources.set(self.status_of(report))

    def build_report(self, disk: DiskSample) -> Report:
        last = self._last
        view = self.inbox.status
        channels: dict[str, int] = view.sources.depths() if view is not None else {}
        return Report(
            cpu_pct=_round(self.cpu_pct(self.config.report_every_s), 2),
            cpu_pct_15m=_round(self.cpu_pct(self.config.cpu_window_s), 2),
            rss_mb=_round(last.rss_bytes / MB if last and last.rss_bytes is not None else None,
                          1),
            rss_slope_mb_h=_round(self.rss.slope_mb_per_hour(), 3),
            handles=last.handles if last else None,
            threads=last.threads if last else None,
            log_dir_mb=_round(disk.log_dir_bytes / MB if disk.log_dir_bytes is not None
                              else None, 2),
            disk_free_gb=_round(disk.disk_free_bytes / GB if disk.disk_free_bytes is not None
                                else None, 2),
            loop_lag_ms=(round(max(0.0, self._lag_max) * 1000.0, 1)
                         if self.config.lag_tick_s > 0 else None),
            channels=channels)

    def status_of(self, r: Report) -> ResourceStatus:
        """The report as the status read-model shows it (`level`: any limit past)."""
        raised = any(w.active for w in self.watches.values())
        return ResourceStatus(ts=self.ctx.clock.now_utc(), cpu_pct=r.cpu_pct, rss_mb=r.rss_mb,
                              log_dir_mb=r.log_dir_mb, disk_free_gb=r.disk_free_gb,
                              loop_lag_ms=r.loop_lag_ms, level="warning" if raised else "ok")

    def judge(self, r: Report) -> None:
        c = self.config
        self._tell("cpu", r.cpu_pct_15m, "%",
                   "CPU high", f"process CPU averaged {r.cpu_pct_15m} % over the last "
                   f"{c.cpu_window_s / 60:g} min (limit {c.cpu_warn_pct:g} %)")
        self._tell("leak", _round(self.rss.steady_slope_mb_per_hour(), 3), "MB/h",
                   "Memory keeps growing", f"RSS grows {r.rss_slope_mb_h} MB/h over the last "
                   f"hours (now {r.rss_mb} MB; limit {c.rss_leak_mb_per_hour:g} MB/h): a leak")
        self._tell("logs", r.log_dir_mb, "MB",
                   "Log directory large", f"the log directory holds {r.log_dir_mb} MB (limit "
                   f"{c.log_dir_warn_mb:g} MB)")
        self._tell("disk", r.disk_free_gb, "GB free",
                   "Disk almost full", f"{r.disk_free_gb} GB free on the log drive (limit "
                   f"{c.disk_free_warn_gb:g} GB)")
        self._tell("lag", r.loop_lag_ms, "ms",
                   "Event loop lagging", f"a wake-up was {r.loop_lag_ms} ms late in the last "
                   f"minute (limit {c.loop_lag_warn_ms:g} ms): something blocks the loop")

    def _tell(self, name: str, value: float | None, unit: str, title: str, text: str) -> None:
        watch = self.watches[name]
        change = watch.update(value)
        if change == "raised":
            self.ctx.alert("warning", title, text, key=watch.key)
        elif change == "cleared":
            self.ctx.alert("info", f"{title}: back to normal", f"now {value:g} {unit}",
                           key=watch.key)


def _round(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)


def _fmt(value: float | None, unit: str) -> str:
    return "?" if value is None else f"{value:g}{unit}"


async def run(ctx: ActorContext, inbox: Inbox, outbox: Outbox,
              config: ProbeConfig | None = None, sampler: Sampler | None = None, *,
              task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
    config = config or (
        ProbeConfig.virtual() if on_virtual_clock() else
        ProbeConfig.accelerated(ctx.clock.speed) if ctx.clock.speed > 1 else ProbeConfig())
    sampler = sampler or PsutilSampler(ctx.settings.log_dir, threaded_disk=config.threaded_disk)
    await Probe(ctx, sampler, config, inbox, outbox).run(task_status)
