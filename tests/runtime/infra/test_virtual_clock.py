"""`on_virtual_clock()`: true on trio's MockClock, false on the real one, and the bot never
imports trio.testing to find out (it imports pytest when pytest is installed: ~5 MB of RSS and
~60 ms at every start, issue 17's idle cost)."""

from __future__ import annotations

import subprocess
import sys

import trio
import trio.testing

from runtime.infra.clock import on_virtual_clock
from tests.harness import REPO


def test_the_mock_clock_is_told_from_the_real_one() -> None:
    async def ask() -> bool:
        return on_virtual_clock()

    assert trio.run(ask) is False
    assert trio.run(ask, clock=trio.testing.MockClock()) is True


def test_the_bot_starts_without_pytest_or_trio_testing_in_memory() -> None:
    probe = ("import sys, runtime.__main__, runtime.app.app, runtime.app.bot; "
             "print(sorted(m for m in ('_pytest', 'pytest', 'trio.testing') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", probe], cwd=REPO, capture_output=True,
                          text=True, timeout=120, check=True)
    assert done.stdout.strip() == "[]"
