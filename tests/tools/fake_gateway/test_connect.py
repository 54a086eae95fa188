"""Connecting real ib_async clients: the handshake, version negotiation, the startup burst."""

from __future__ import annotations

import socket
import struct
import time
from pathlib import Path

import trio
from ib_async import Stock

from tests.harness.ib_thread import AsyncioThread, IBClient
from tests.harness.simulator import gw_config
from tools.fake_gateway import FakeGateway, open_fake_gateway
from tools.fake_gateway.wire import FrameDecoder, split_fields


async def test_ib_async_connects_in_milliseconds_and_sees_a_paper_account(
        gateway: FakeGateway, ib_client: IBClient) -> None:
    started = time.perf_counter()
    ib = await ib_client.connect(gateway.port, client_id=5, timeout=4)
    elapsed = time.perf_counter() - started
    assert await ib_client.call(lambda ib: ib.isConnected())
    assert await ib_client.call(lambda ib: ib.managedAccounts()) == ["DU1234567"]
    assert await ib_client.call(lambda ib: ib.client.serverVersion()) == 178
    assert elapsed < 3.0, "connect waited on a startup timeout (4 s)"   # generous bound
    assert {2104, 2106, 2158} <= set(ib_client.error_codes())
    assert gateway.status()["clients"] == [5]
    await ib_client.disconnect()
    with trio.fail_after(5):
        while gateway.status()["connections"]:
            await trio.sleep(0.01)
    assert ib is not None


async def test_a_live_looking_account_id_is_served(spy_csv: Path, ib_client: IBClient) -> None:
    async with open_fake_gateway(gw_config(bars=spy_csv, account="U7654321")) as gw:
        await ib_client.connect(gw.port)
        assert await ib_client.call(lambda ib: ib.managedAccounts()) == ["U7654321"]
        values = await ib_client.call(lambda ib: ib.accountValues())
        assert any(v.tag == "NetLiquidation" and v.account == "U7654321" for v in values)


async def test_account_summary_and_updates_describe_the_paper_account(
        gateway: FakeGateway, ib_client: IBClient) -> None:
    await ib_client.connect(gateway.port)
    summary = await ib_client.call(lambda ib: ib.accountSummaryAsync())
    tags = {v.tag: v.value for v in summary}
    assert float(tags["NetLiquidation"]) == 100_000.0
    assert tags["AccountType"] == "INDIVIDUAL" and "DayTradesRemaining" in tags
    values = await ib_client.call(lambda ib: ib.accountValues())
    assert any(v.tag == "TotalCashValue" and float(v.value) == 100_000.0 for v in values)


async def test_current_time_is_the_simulated_time(gateway: FakeGateway,
                                                  ib_client: IBClient) -> None:
    await ib_client.connect(gateway.port)
    when = await ib_client.call(lambda ib: ib.reqCurrentTimeAsync(), timeout=5)
    assert abs((when - gateway.clock.now_utc()).total_seconds()) < 120


def _raw_handshake(port: int, versions: bytes) -> tuple[socket.socket, list[list[str]]]:
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    sock.sendall(b"API\0" + struct.pack(">I", len(versions)) + versions)
    decoder = FrameDecoder(expect_prefix=False)
    frames: list[list[str]] = []
    deadline = time.monotonic() + 5
    while not frames and time.monotonic() < deadline:
        chunk = sock.recv(4096)
        if not chunk:
            break
        frames += [split_fields(p) for p in decoder.feed(chunk)]
    return sock, frames


async def test_the_handshake_reply_comes_alone_and_negotiates_the_highest_common_version(
        gateway: FakeGateway) -> None:
    for offered, expected in ((b"v157..178", "178"), (b"v100..176 +PACEAPI", "176"),
                              (b"v100..200", "178")):
        sock, frames = await trio.to_thread.run_sync(_raw_handshake, gateway.port, offered)
        with sock:
            assert len(frames) == 1 and len(frames[0]) == 2, frames
            assert frames[0][0] == expected
            sock.settimeout(0.3)
            try:
                extra = sock.recv(4096)
            except TimeoutError:
                extra = b""
            assert extra == b"", "nothing may follow the handshake before startApi"


async def test_a_client_without_a_common_version_is_closed(gateway: FakeGateway) -> None:
    sock, frames = await trio.to_thread.run_sync(_raw_handshake, gateway.port, b"v100..151")
    with sock:
        assert frames == []
        sock.settimeout(2)
        assert sock.recv(4096) == b""


async def test_an_older_client_version_gets_the_older_layouts(
        gateway: FakeGateway, aio: AsyncioThread) -> None:
    client = IBClient(aio)
    ib = await client.create()
    await client.call(lambda ib: setattr(ib.client, "MaxClientVersion", 163))
    await client.connect(gateway.port, client_id=9)
    assert await client.call(lambda ib: ib.client.serverVersion()) == 163
    details = await client.call(lambda ib: ib.reqContractDetailsAsync(Stock("SPY", "SMART",
                                                                            "USD")))
    assert details and details[0].contract.conId == 756733
    assert details[0].liquidHours and details[0].timeZoneId == "US/Eastern"
    assert {2104, 2106} <= set(client.error_codes())     # errors without advancedOrderRejectJson
    assert ib is not None
