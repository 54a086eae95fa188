"""The brain benchmarks still run: one round each, their tables printed. (bench_ws had rotted:
it unpacked `measure()`'s result as a pair after `measure` began to return `Latencies`.) The
numbers are not judged here: timing goals live in docs/BENCHMARKS.md, not in assertions."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
import trio
import trio.testing

from runtime.infra.logs import handoff_pending
from tests.harness import open_tmp_logging
from tests.runtime.ops import bench_ws
from tests.system.brain import bench_actors


def test_bench_actors_prints_the_median_round_and_the_live_replay_verdict(
        capsys: pytest.CaptureFixture[str]) -> None:
    assert bench_actors.main(["--rounds", "1"]) == 0
    out = capsys.readouterr().out
    assert "bars: 1950" in out
    assert "| p99 |" in out
    assert "decision p99 of each round" in out
    assert "this machine's own stalls" in out
    assert "MATCH" in out
    assert "bars after a settle" in out


def test_bench_actors_without_settling_says_so(capsys: pytest.CaptureFixture[str]) -> None:
    assert bench_actors.main(["--rounds", "1", "--no-settle"]) == 0
    assert "no settle" in capsys.readouterr().out


async def test_settle_waits_for_held_lines_and_for_a_worker_thread_only_when_there_are_some(
        tmp_path: Path) -> None:
    """The bench's stand-in for the minute between live bars: nothing to wait for, no sleep; a
    held journal line is handed over; a state save in a worker thread is waited for whole."""
    with open_tmp_logging(tmp_path) as journal:
        assert await bench_actors.settle() is False
        journal.emit("bar", "root.test", n=1)
        assert await bench_actors.settle() is True
        assert not handoff_pending()

        release = threading.Event()
        saved: list[bool] = []

        async def save() -> None:
            await trio.to_thread.run_sync(release.wait)
            saved.append(True)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(save)
            await trio.testing.wait_all_tasks_blocked()     # the thread is running
            nursery.start_soon(trio.to_thread.run_sync, _release_later, release)
            assert await bench_actors.settle() is True
            assert saved == [True], "settle returned while the worker thread still ran"
            limiter = trio.to_thread.current_default_thread_limiter()
            assert limiter.borrowed_tokens == 0


def _release_later(event: threading.Event) -> None:
    time.sleep(0.05)
    event.set()


def test_bench_ws_prints_the_three_ways(capsys: pytest.CaptureFixture[str]) -> None:
    assert bench_ws.main(["--rounds", "1"]) == 0
    out = capsys.readouterr().out
    for way in ("| no console |", "| console, no client |",
                "| console, one stalled WebSocket client |"):
        assert way in out


@pytest.mark.parametrize("args", [["--rounds", "0"], ["--gap-ms", "-1"], ["--cpu", "100000"]])
def test_a_benchmark_refuses_bad_arguments_naming_them(
        args: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        bench_actors.main(args)
    assert args[0] in capsys.readouterr().err
