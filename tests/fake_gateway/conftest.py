"""Fixtures: CSV data (real, or generated when absent), an asyncio thread for ib_async, and a
simulator factory that starts `open_fake_gateway` on free loopback ports."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from config.market_calendar import ET
from tests.conftest import shared_data_dir
from tests.fake_gateway.ib_thread import AsyncioThread, IBClient
from tools.fake_gateway import FakeGateway, FakeGatewayConfig, open_fake_gateway

SPY_CSV_NAME = "spy_1m_src-leoxu2023_2024-02-20_2024-05-17_rth.csv"
#: a regular session inside the CSV, with the previous session in the CSV too
IN_SESSION = dt.datetime(2024, 2, 21, 10, 0, tzinfo=ET)


@pytest.fixture(scope="session")
def spy_csv() -> Path:
    return shared_data_dir() / SPY_CSV_NAME       # real, or the seeded stand-in


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


def gw_config(**overrides: Any) -> FakeGatewayConfig:
    """Free loopback ports, 10:00 ET on 2024-02-21, speed 60, plus `overrides`.

    Tests that need their own simulator enter `open_fake_gateway(gw_config(...))` themselves
    (a trio nursery must be entered and exited by the same task).
    """
    fields: dict[str, Any] = {"port": 0, "control_port": 0, "speed": 60.0,
                              "start": IN_SESSION}
    fields.update(overrides)
    return FakeGatewayConfig(**fields)


@pytest.fixture
async def gateway(spy_csv: Path) -> AsyncIterator[FakeGateway]:
    """The default simulator: SPY replayed from the CSV, 10:00 ET on 2024-02-21, speed 60."""
    async with open_fake_gateway(gw_config(bars=spy_csv)) as gw:
        yield gw
