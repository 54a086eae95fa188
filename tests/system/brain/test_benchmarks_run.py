"""The brain benchmarks still run: one round each, their tables printed. (bench_ws had rotted:
it unpacked `measure()`'s result as a pair after `measure` began to return `Latencies`.) The
numbers are not judged here: timing goals live in docs/BENCHMARKS.md, not in assertions."""

from __future__ import annotations

import pytest

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
