"""`python -m tools.bench_journal` still runs: its three ways timed, and every line of each on
disk (the numbers themselves are judged in docs/BENCHMARKS.md, not here)."""

from __future__ import annotations

import pytest

from tools import bench_journal


def test_bench_journal_times_the_three_ways_and_finds_every_line_on_disk(
        capsys: pytest.CaptureFixture[str]) -> None:
    assert bench_journal.main(["--lines", "300", "--repeat", "1"]) == 0
    out = capsys.readouterr().out
    for way in ("journal ", "held ", "human "):
        assert f"\n{way}" in f"\n{out}", f"no {way.strip()!r} row in:\n{out}"
    assert "journal lines on disk: 300 of 300\n" in out
    assert "held lines on disk: 300 of 300\n" in out
    assert "MISSING" not in out
