"""ResourceProbe: the `resource` event every minute, and warnings that mean something."""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import trio
import trio.testing

from actors.resource_probe import (
    CPU_WARN_PCT,
    RSS_LEAK_MB_PER_HOUR,
    ProbeConfig,
    PsutilSampler,
    RssTrend,
    Watch,
    theil_sen_slope,
)
from runtime.app.wiring import Wiring
from tests.harness.resource_probe import START, FakeSampler, flat, open_probe

HOUR = 3600.0
MINUTE = 60.0


def noisy(base: float, slope_mb_h: float, seed: int,
          jitter: float = 1.5) -> Callable[[float], float]:
    """RSS with a trend and garbage-collector noise (deterministic)."""
    rng = random.Random(seed)
    return lambda t: base + slope_mb_h * t / HOUR + rng.uniform(-jitter, jitter)


async def test_a_resource_event_every_minute_carries_the_contract_fields(
        tmp_path: Path, autojump_clock: trio.testing.MockClock) -> None:
    sampler = FakeSampler(cpu_pct=flat(2.5), rss_mb=flat(180.0), log_dir_mb=flat(12.5),
                          disk_free_gb=flat(40.0))
    async with open_probe(tmp_path, sampler) as probe:
        await trio.sleep(5 * MINUTE + 1)
        events = probe.resources()
        assert len(events) == 5
        last = events[-1]
        assert last["cpu_pct"] == pytest.approx(2.5)
        assert last["rss_mb"] == 180.0 and last["log_dir_mb"] == 12.5
        assert last["disk_free_gb"] == 40.0 and last["handles"] == 42
        assert last["loop_lag_ms"] is None                 # lag ticker off in this config
        assert last["channels"] == {name: 0 for name in Wiring().depths()}
        assert last["cpu_pct_15m"] is None                 # not 15 minutes of data yet
        published = probe.wiring.resources.value      # the status read-model's value
        assert published is not None and published.rss_mb == 180.0
        assert published.level == "ok" and probe.ctx.node.gauges == {}
        assert probe.ctx.node.note == "cpu 2.5% rss 180 MB lag ?"
        assert sampler.calls == 31                        # every 10 s, plus the first
    assert probe.warnings() == []


async def test_a_steady_rss_slope_raises_one_leak_warning_after_hours(
        tmp_path: Path, autojump_clock: trio.testing.MockClock) -> None:
    sampler = FakeSampler(rss_mb=noisy(150.0, 3.0, seed=1))
    async with open_probe(tmp_path, sampler) as probe:
        await trio.sleep(3 * HOUR)
        assert probe.warnings() == []           # too early to judge: 30 min warm-up + 3 h
        await trio.sleep(5 * HOUR)
        leaks = probe.warnings("resource:rss_leak")
        slope = probe.resources()[-1]["rss_slope_mb_h"]
    assert len(leaks) == 1 and leaks[0].severity == "warning"
    assert leaks[0].title == "Memory keeps growing"
    assert slope == pytest.approx(3.0, abs=0.3)
    assert (leaks[0].ts - START).total_seconds() >= 3.5 * HOUR   # warm-up + minimum span


async def test_a_spike_or_a_one_time_step_is_not_a_leak(
        tmp_path: Path, autojump_clock: trio.testing.MockClock) -> None:
    base = noisy(150.0, 0.0, seed=2)

    def rss(t: float) -> float:
        if abs(t - 4 * HOUR) < 5:                        # one sample at 600 MB
            return 600.0
        if 6 * HOUR <= t < 6 * HOUR + 10 * MINUTE:       # a 10-minute excursion
            return 300.0
        return base(t)

    def step(t: float) -> float:                         # a cache that filled once
        return base(t) + (40.0 if t >= 2 * HOUR else 0.0)

    async with open_probe(tmp_path / "spike", FakeSampler(rss_mb=rss)) as spiky:
        await trio.sleep(10 * HOUR)
        assert spiky.warnings("resource:rss_leak") == []
        assert abs(spiky.resources()[-1]["rss_slope_mb_h"]) < 0.5
    async with open_probe(tmp_path / "step", FakeSampler(rss_mb=step)) as stepped:
        await trio.sleep(10 * HOUR)
        assert stepped.warnings("resource:rss_leak") == []


async def test_cpu_over_five_percent_for_fifteen_minutes_warns_once_and_clears_once(
        tmp_path: Path, autojump_clock: trio.testing.MockClock) -> None:
    def load(t: float) -> float:
        if 60 * MINUTE <= t < 62 * MINUTE:    # a two-minute burst: 15-min average 4.9 %
            return 30.0
        return 10.0 if t < 40 * MINUTE else 1.0

    async with open_probe(tmp_path, FakeSampler(cpu_pct=load)) as probe:
        await trio.sleep(90 * MINUTE)
        cpu = probe.warnings("resource:cpu")
    assert [(a.severity, a.title) for a in cpu] == [("warning", "CPU high"),
                                                    ("info", "CPU high: back to normal")]
    assert f"limit {CPU_WARN_PCT:g} %" in cpu[0].text


async def test_log_directory_and_free_disk_warn_with_hysteresis(
        tmp_path: Path, autojump_clock: trio.testing.MockClock) -> None:
    def logs(t: float) -> float:          # grows past 100 MB, wobbles around it, is cleaned
        if t < 70 * MINUTE:
            return 50.0 + t / MINUTE
        if t < 80 * MINUTE:
            return 100.5 if int(t / MINUTE) % 2 else 99.5
        return 60.0

    def disk(t: float) -> float:
        return 10.0 if t < 30 * MINUTE else 1.2

    async with open_probe(tmp_path, FakeSampler(log_dir_mb=logs, disk_free_gb=disk)) as probe:
        await trio.sleep(2 * HOUR)
        log_alerts = probe.warnings("resource:log_dir")
        disk_alerts = probe.warnings("resource:disk_free")
    assert [a.severity for a in log_alerts] == ["warning", "info"]    # no flapping at 100 MB
    assert [a.severity for a in disk_alerts] == ["warning"]           # said once, not hourly
    assert "1.2 GB free" in disk_alerts[0].text


async def test_loop_lag_is_how_late_a_sleep_wakes(tmp_path: Path) -> None:
    config = ProbeConfig(lag_tick_s=0.02, sample_every_s=0.1, report_every_s=0.3,
                         loop_lag_warn_ms=100.0, loop_lag_warn_minutes=1,
                         loop_lag_clear_ms=50.0)
    with trio.fail_after(10):
        async with open_probe(tmp_path, FakeSampler(), config) as probe:
            await trio.sleep(0.4)
            time.sleep(0.3)          # noqa: ASYNC251  (blocking the loop is the point)
            n = len(probe.resources())
            while len(probe.resources()) < n + 1:
                await trio.sleep(0.05)
            lagged = max(e["loop_lag_ms"] for e in probe.resources())
            lag_alerts = probe.warnings("resource:loop_lag")
    assert lagged >= 250.0
    assert lag_alerts and lag_alerts[0].title == "Event loop lagging"


async def test_a_failing_sampler_is_logged_once_and_the_probe_keeps_reporting(
        tmp_path: Path, autojump_clock: trio.testing.MockClock,
        caplog: pytest.LogCaptureFixture) -> None:
    sampler = FakeSampler(fail_with=PermissionError("access denied"))
    with caplog.at_level(logging.WARNING, logger="root.resource_probe"):
        async with open_probe(tmp_path, sampler) as probe:
            await trio.sleep(10 * MINUTE + 1)
            assert len(probe.resources()) == 10
            assert probe.resources()[-1]["rss_mb"] is None
            assert probe.resources()[-1]["log_dir_mb"] == 20.0
    failures = [r for r in caplog.records if "resource sampling failed" in r.getMessage()]
    assert len(failures) == 1 and "PermissionError: access denied" in failures[0].getMessage()


async def test_the_psutil_sampler_reads_this_process_and_the_log_directory(
        tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    (logs / "old").mkdir(parents=True)
    (logs / "bot.log").write_bytes(b"x" * 1000)
    (logs / "old" / "bot.log.1").write_bytes(b"y" * 2500)
    sampler = PsutilSampler(logs)
    with trio.fail_after(10):
        first = await sampler.sample_process()
        sum(i * i for i in range(300_000))             # burn a little CPU
        second = await sampler.sample_process()
        disk = await sampler.sample_disk()
    assert first.cpu_seconds is not None and second.cpu_seconds is not None
    assert second.cpu_seconds > first.cpu_seconds
    assert second.rss_bytes is not None and second.rss_bytes > 10 * 1024 * 1024
    assert second.handles is not None and second.handles > 0
    assert disk.log_dir_bytes == 3500
    assert disk.disk_free_bytes is not None and disk.disk_free_bytes > 0


def test_theil_sen_ignores_outliers_that_least_squares_would_follow() -> None:
    points = [(float(t), 2.0 * t) for t in range(20)]
    points[10] = (10.0, 500.0)
    assert theil_sen_slope(points) == pytest.approx(2.0)
    assert theil_sen_slope([(1.0, 1.0)]) is None


def test_the_rss_trend_needs_its_warm_up_and_span_before_judging() -> None:
    trend = RssTrend(started_at=0.0, bucket_s=300.0, window_s=6 * HOUR, min_span_s=3 * HOUR,
                     warmup_s=30 * MINUTE)
    for t in range(0, int(3.4 * HOUR), 10):
        trend.add(float(t), 100.0 + RSS_LEAK_MB_PER_HOUR * 2 * t / HOUR)
    assert trend.slope_mb_per_hour() is None              # 2.9 h after warm-up
    for t in range(int(3.4 * HOUR), int(4 * HOUR), 10):
        trend.add(float(t), 100.0 + RSS_LEAK_MB_PER_HOUR * 2 * t / HOUR)
    assert trend.slope_mb_per_hour() == pytest.approx(4.0)
    assert trend.steady_slope_mb_per_hour() == pytest.approx(4.0)


def test_a_watch_raises_after_its_count_and_clears_only_when_good() -> None:
    w = Watch("k", lambda v: v > 10, lambda v: v < 5, raise_after=2,
              is_urgent=lambda v: v > 100)
    assert [w.update(v) for v in (11, 3, 11, 11, 8, 11, 4)] == [
        None, None, None, "raised", None, None, "cleared"]
    assert w.update(None) is None
    assert w.update(1000) == "raised"                     # urgent: at once
