"""Fixtures: the SPY CSV (real, or generated when absent), an asyncio thread for ib_async, and
the default simulator on free loopback ports (tests.harness.simulator.gw_config)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest

from tests.harness.data import SPY_1M, shared_data_dir
from tests.harness.ib_thread import AsyncioThread, IBClient
from tests.harness.simulator import gw_config
from tools.fake_gateway import FakeGateway, open_fake_gateway


@pytest.fixture(scope="session")
def spy_csv() -> Path:
    return shared_data_dir() / SPY_1M             # real, or the seeded stand-in


@pytest.fixture
def aio() -> Iterator[AsyncioThread]:
    thread = AsyncioThread()
    try:
        yield thread
    finally:
        thread.close()


@pytest.fixture
def ib_client(aio: AsyncioThread) -> IBClient:
    return IBClient(aio)


@pytest.fixture
def make_ib(aio: AsyncioThread) -> Callable[[], IBClient]:
    return lambda: IBClient(aio)


@pytest.fixture
async def gateway(spy_csv: Path) -> AsyncIterator[FakeGateway]:
    """The default simulator: SPY replayed from the CSV, 10:00 ET on 2024-02-21, speed 60."""
    async with open_fake_gateway(gw_config(bars=spy_csv)) as gw:
        yield gw
