"""Every fault, observed from the client side exactly as ib_async surfaces it, driven both
through the FakeGateway methods and through the control port's line protocol."""

from __future__ import annotations

import asyncio
import json
import struct
from pathlib import Path
from typing import Any

import pytest
import trio
from ib_async import Stock

from tests.harness import wait_until
from tests.harness.ib_thread import IBClient
from tests.harness.simulator import gw_config
from tools.fake_gateway import FakeGateway, open_fake_gateway
from tools.fake_gateway.wire import FrameDecoder, encode_fields, split_fields

SPY = Stock("SPY", "SMART", "USD")


class ControlClient:
    """The control port as an operator (or the soak) uses it: one line in, one line out."""

    def __init__(self, stream: trio.SocketStream) -> None:
        self._stream = stream
        self._buf = b""

    async def command(self, line: str) -> str:
        await self._stream.send_all(line.encode() + b"\n")
        with trio.fail_after(5):
            while b"\n" not in self._buf:
                data = await self._stream.receive_some(65536)
                assert data, "control port closed"
                self._buf += data
        reply, self._buf = self._buf.split(b"\n", 1)
        return reply.decode()


async def open_control(gw: FakeGateway) -> ControlClient:
    return ControlClient(await trio.open_tcp_stream("127.0.0.1", gw.control_port))


async def test_drop_disconnects_every_client(gateway: FakeGateway, make_ib: Any) -> None:
    a, b = make_ib(), make_ib()
    await a.connect(gateway.port, 1)
    await b.connect(gateway.port, 2)
    control = await open_control(gateway)
    assert await control.command("drop") == "ok"
    await wait_until(lambda: a.disconnects == 1 and b.disconnects == 1, timeout=10.0)
    assert not await a.call(lambda ib: ib.isConnected())
    await a.connect(gateway.port, 1)          # the Gateway itself is still there
    assert await a.call(lambda ib: ib.isConnected())


async def test_restart_refuses_connections_then_accepts_again(gateway: FakeGateway,
                                                              ib_client: IBClient) -> None:
    await ib_client.connect(gateway.port)
    control = await open_control(gateway)
    assert await control.command("restart 2") == "ok"
    await wait_until(lambda: ib_client.disconnects == 1, timeout=10.0)
    with pytest.raises(ConnectionRefusedError):
        await ib_client.connect(gateway.port, timeout=1)
    status = json.loads(await control.command("status"))
    assert status["accepting"] is False and status["clients"] == []
    with trio.fail_after(5):
        await gateway.wait_accepting()
    await ib_client.connect(gateway.port)
    assert json.loads(await control.command("status"))["clients"] == [1]


async def test_hang_keeps_sockets_open_but_answers_nothing(gateway: FakeGateway,
                                                           make_ib: Any) -> None:
    connected, newcomer = make_ib(), make_ib()
    await connected.connect(gateway.port, 1)
    control = await open_control(gateway)
    assert await control.command("hang") == "ok"
    with pytest.raises(TimeoutError):
        await newcomer.connect(gateway.port, 2, timeout=1)
    assert await connected.call(lambda ib: ib.isConnected())       # no heartbeat in the API
    pending: list[Any] = []
    await connected.call(lambda ib: pending.append(
        asyncio.ensure_future(ib.reqCurrentTimeAsync())))
    await trio.sleep(0.5)
    assert not pending[0].done()
    assert json.loads(await control.command("status"))["hung"] is True
    assert await control.command("unhang") == "ok"
    await wait_until(lambda: pending[0].done(), timeout=10.0)
    assert pending[0].result() is not None
    await newcomer.connect(gateway.port, 2)


@pytest.mark.parametrize("code", [1100, 1101, 1102, 2103, 2104, 2105, 2106, 10197])
async def test_error_codes_reach_the_error_event(gateway: FakeGateway, ib_client: IBClient,
                                                 code: int) -> None:
    await ib_client.connect(gateway.port)
    before = len(ib_client.errors)
    control = await open_control(gateway)
    assert await control.command(f"error {code}") == "ok"
    await wait_until(lambda: any(c == code for _, c, _ in ib_client.errors[before:]), timeout=10.0)
    req_id, _, text = next(e for e in ib_client.errors[before:] if e[1] == code)
    assert req_id == -1 and text
    assert await ib_client.call(lambda ib: ib.isConnected())


async def test_1101_means_the_subscriptions_are_gone(gateway: FakeGateway,
                                                     ib_client: IBClient) -> None:
    await ib_client.connect(gateway.port)
    await ib_client.call(lambda ib: ib.qualifyContractsAsync(SPY))
    ticker = await ib_client.call(lambda ib: ib.reqMktData(SPY))
    await wait_until(lambda: ticker.last > 0, timeout=10.0)
    assert gateway.status()["subscriptions"] == 1
    await gateway.send_error(1100)
    assert gateway.status()["connectivity_lost"] is True
    await gateway.send_error(1101)
    await wait_until(lambda: 1101 in ib_client.error_codes(), timeout=10.0)
    assert gateway.status()["subscriptions"] == 0
    await ib_client.call(lambda ib: ib.cancelMktData(SPY))
    again = await ib_client.call(lambda ib: ib.reqMktData(SPY))
    await wait_until(lambda: gateway.status()["subscriptions"] == 1 and again.last > 0,
                     timeout=10.0)


async def test_a_broken_farm_stops_ticks_until_it_is_ok_again(gateway: FakeGateway,
                                                              ib_client: IBClient) -> None:
    await ib_client.connect(gateway.port)
    await ib_client.call(lambda ib: ib.qualifyContractsAsync(SPY))
    ticker = await ib_client.call(lambda ib: ib.reqMktData(SPY))
    await wait_until(lambda: ticker.last > 0, timeout=10.0)
    await gateway.send_error(2103)
    await trio.sleep(0.3)
    frozen = len(ib_client.errors), ticker.time
    await trio.sleep(0.6)
    assert ticker.time == frozen[1], "ticks kept flowing with the farm broken"
    await gateway.send_error(2104)
    await wait_until(lambda: ticker.time != frozen[1], timeout=10.0)


async def test_clientid_in_use_answers_326_then_closes(gateway: FakeGateway,
                                                       ib_client: IBClient) -> None:
    control = await open_control(gateway)
    assert await control.command("clientid-in-use on") == "ok"
    with pytest.raises(TimeoutError):
        await ib_client.connect(gateway.port, 1, timeout=1)
    assert 326 in ib_client.error_codes()
    assert await control.command("clientid-in-use off") == "ok"
    await ib_client.connect(gateway.port, 1)


async def test_a_duplicate_client_id_is_refused_like_tws(gateway: FakeGateway,
                                                         make_ib: Any) -> None:
    first, second = make_ib(), make_ib()
    await first.connect(gateway.port, 11)
    with pytest.raises(TimeoutError):
        await second.connect(gateway.port, 11, timeout=1)
    assert 326 in second.error_codes()
    assert await first.call(lambda ib: ib.isConnected())


async def test_pacing_answers_162_beyond_ibs_limits(gateway: FakeGateway,
                                                    ib_client: IBClient) -> None:
    await ib_client.connect(gateway.port)
    await ib_client.call(lambda ib: ib.qualifyContractsAsync(SPY))
    control = await open_control(gateway)
    assert await control.command("pacing on") == "ok"

    async def history(duration: str) -> Any:
        return await ib_client.call(lambda ib: ib.reqHistoricalDataAsync(
            SPY, "", duration, "1 min", "TRADES", True))

    assert len(await history("1800 S")) > 0
    assert len(await history("1800 S")) == 0                  # identical within 15 s
    assert 162 in ib_client.error_codes()
    text = next(t for _, c, t in ib_client.errors if c == 162)
    assert "pacing violation" in text
    for seconds in (60, 120, 180, 240):                       # 6th for SPY within 2 s
        assert len(await history(f"{seconds} S")) > 0
    assert len(await history("300 S")) == 0
    assert await control.command("pacing off") == "ok"
    assert len(await history("1800 S")) > 0


async def test_the_control_port_explains_bad_commands(gateway: FakeGateway) -> None:
    control = await open_control(gateway)
    for bad in ("restart", "restart soon", "error", "error abc", "pacing maybe", "fly", "drop x"):
        reply = await control.command(bad)
        assert reply.startswith("error: "), (bad, reply)
    status = json.loads(await control.command("status"))
    for key in ("sim_time", "clients", "accepting", "hung", "pacing", "clientid_in_use",
                "orders", "open_orders", "positions", "subscriptions", "read_only"):
        assert key in status
    assert status["accepting"] is True and status["read_only"] is False


async def _raw_client(port: int) -> tuple[trio.SocketStream, FrameDecoder]:
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    version = b"v157..178"
    await stream.send_all(b"API\0" + struct.pack(">I", len(version)) + version)
    decoder = FrameDecoder(expect_prefix=False)
    await stream.send_all(encode_fields([71, 2, 77, ""]))
    return stream, decoder


async def _read_until(stream: trio.SocketStream, decoder: FrameDecoder,
                      predicate: Any) -> list[str]:
    with trio.fail_after(5):
        while True:
            data = await stream.receive_some(65536)
            assert data, "connection closed"
            for payload in decoder.feed(data):
                fields = split_fields(payload)
                if predicate(fields):
                    return fields


async def test_malformed_requests_get_320_and_the_connection_lives_on(
        gateway: FakeGateway, ib_client: IBClient) -> None:
    await ib_client.connect(gateway.port, 1)
    stream, decoder = await _raw_client(gateway.port)
    async with stream:
        await _read_until(stream, decoder, lambda f: f[0] == "9")          # nextValidId
        await stream.send_all(encode_fields([20, 5, "junk"]))             # truncated history
        err = await _read_until(stream, decoder, lambda f: f[0] == "4" and f[3] == "320")
        assert err[2] == "5"
        await stream.send_all(encode_fields(["not-a-number", 1]))
        await stream.send_all(encode_fields([9999, 1]))                    # unknown message
        await stream.send_all(encode_fields([3, 1, "x" * 10]))             # broken placeOrder
        await stream.send_all(encode_fields([49, 1]))                      # reqCurrentTime
        reply = await _read_until(stream, decoder, lambda f: f[0] == "49")
        assert int(reply[2]) > 1_700_000_000
    assert await ib_client.call(lambda ib: ib.isConnected())               # others unharmed
    assert await ib_client.call(lambda ib: ib.reqCurrentTimeAsync()) is not None


async def test_a_client_that_vanishes_mid_message_does_not_hurt_the_server(
        spy_csv: Path, ib_client: IBClient) -> None:
    async with open_fake_gateway(gw_config(bars=spy_csv)) as gw:
        stream, decoder = await _raw_client(gw.port)
        await _read_until(stream, decoder, lambda f: f[0] == "9")
        await stream.send_all(struct.pack(">I", 1000) + b"20\x00half")     # then vanish
        await stream.aclose()
        await ib_client.connect(gw.port, 1)
        await wait_until(lambda: gw.status()["connections"] == 1, timeout=10.0)


async def test_fill_command_trades_through_a_working_order_and_refuses_anything_else(
        gateway: FakeGateway) -> None:
    from tools.fake_gateway.control import CommandError, run_command

    with pytest.raises(CommandError, match="0 orders"):
        await run_command(gateway, "fill NOPE")
    with pytest.raises(CommandError, match="usage"):
        await run_command(gateway, "fill")
    with pytest.raises(CommandError, match="not a price"):
        await run_command(gateway, "fill X abc")


async def test_symbols_limits_what_it_knows_and_the_rest_get_200(gateway: FakeGateway,
                                                                 ib_client: IBClient) -> None:
    await ib_client.connect(gateway.port)
    control = await open_control(gateway)
    assert await control.command("symbols SPY,VIX") == "ok"
    assert json.loads(await control.command("status"))["known_symbols"] == ["SPY", "VIX"]
    iwm = Stock("IWM", "SMART", "USD")
    assert await ib_client.call(lambda ib: ib.qualifyContractsAsync(iwm)) == [None]
    assert 200 in ib_client.error_codes()
    assert (await ib_client.call(lambda ib: ib.qualifyContractsAsync(SPY)))[0].conId
    assert await control.command("symbols all") == "ok"
    assert (await ib_client.call(lambda ib: ib.qualifyContractsAsync(iwm)))[0].conId


async def test_reject_answers_data_requests_with_the_chosen_code(gateway: FakeGateway,
                                                                 ib_client: IBClient) -> None:
    await ib_client.connect(gateway.port)
    await ib_client.call(lambda ib: ib.qualifyContractsAsync(SPY))
    control = await open_control(gateway)

    async def history() -> Any:
        return await ib_client.call(lambda ib: ib.reqHistoricalDataAsync(
            SPY, "", "1800 S", "1 min", "TRADES", True))

    assert await control.command("reject 10197 SPY") == "ok"
    assert len(await history()) == 0
    req_id, _, text = next(e for e in ib_client.errors if e[1] == 10197)
    assert req_id > 0 and "competing live session" in text
    assert await control.command("reject 354") == "ok"        # any symbol, another code
    assert json.loads(await control.command("status"))["rejections"] == {"SPY": 10197,
                                                                       "*": 354}
    assert await control.command("reject off SPY") == "ok"
    assert len(await history()) == 0
    assert 354 in ib_client.error_codes()
    assert await control.command("reject off") == "ok"
    assert len(await history()) > 0
    for bad in ("reject", "reject x", "reject 1 2 3"):
        assert (await control.command(bad)).startswith("error: ")


async def test_login_pending_answers_the_handshake_but_never_starts_the_session(
        gateway: FakeGateway, ib_client: IBClient) -> None:
    control = await open_control(gateway)
    assert await control.command("login-pending on") == "ok"
    assert json.loads(await control.command("status"))["login_pending"] is True
    with pytest.raises(TimeoutError):
        await ib_client.connect(gateway.port, timeout=1.0)
    assert await control.command("login-pending off") == "ok"
    await ib_client.connect(gateway.port)
    assert await ib_client.call(lambda ib: ib.isConnected())
