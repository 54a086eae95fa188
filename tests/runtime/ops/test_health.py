"""The health endpoint over real HTTP on 127.0.0.1: status, tree, kill switch, hardening."""

from __future__ import annotations

import datetime as dt
import json
import socket
from pathlib import Path

import pytest
import trio

from messages.control import OperatorCommand, TradingState, TradingStatus
from messages.link import LinkState, LinkStatus
from runtime.infra.logs import Journal
from runtime.ops.health import LINK_GRACE_S, MAX_BODY_BYTES, port_file, serve_ops
from tests.harness.ops import open_health

JSON = {"Content-Type": "application/json"}


async def test_health_answers_200_with_the_contract_fields(tmp_path: Path) -> None:
    async with open_health(tmp_path) as h:
        h.wiring.link_state.set(LinkState(status=LinkStatus.UP, session_id=3,
                                              accounts=("DU123",)))
        h.wiring.trading.set(TradingStatus(state=TradingState.ACTIVE))
        h.wiring.last_bar.set(h.clock.now_utc() - dt.timedelta(seconds=42))
        with trio.fail_after(5):
            r = await h.client.get("/health")
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    body = r.json()
    assert {"mode", "trading_state", "link", "last_bar_age_s", "uptime_s"} <= set(body)
    assert (body["mode"], body["trading_state"], body["link"]) == ("DRY_RUN", "ACTIVE", "up")
    assert 42.0 <= body["last_bar_age_s"] < 45.0
    assert body["healthy"] is True and body["problems"] == [] and body["link_session"] == 3


@pytest.mark.parametrize(("down_for", "expected_outage", "status"), [
    (60.0, False, 200),                   # a blip: inside the grace period
    (LINK_GRACE_S + 80, False, 503),      # down too long
    (LINK_GRACE_S + 80, True, 200),       # the scheduled 16:30 Gateway restart
])
async def test_a_link_down_past_its_grace_is_unhealthy_except_in_the_restart_window(
        tmp_path: Path, down_for: float, expected_outage: bool, status: int) -> None:
    async with open_health(tmp_path) as h:
        since = h.clock.now_utc() - dt.timedelta(seconds=down_for)
        h.wiring.link_state.set(LinkState(status=LinkStatus.DOWN, since=since,
                                              reason="peer closed",
                                              expected_outage=expected_outage))
        with trio.fail_after(5):
            r = await h.client.get("/health")
    assert r.status_code == status
    body = r.json()
    assert body["link"] == "down" and body["link_down_s"] >= down_for
    assert body["healthy"] is (status == 200)
    if status == 503:
        assert body["problems"][0].startswith("Gateway link down for")


async def test_a_link_never_up_counts_from_the_bot_start(tmp_path: Path) -> None:
    async with open_health(tmp_path) as h:
        # the wiring's initial state: down, no `since`; the bot has run 10 minutes
        h.view.run.started_at = trio.current_time() - 600.0
        with trio.fail_after(5):
            r = await h.client.get("/health")
    assert r.status_code == 503 and r.json()["link_down_s"] >= 600.0


async def test_halted_by_a_fault_is_unhealthy_and_a_normal_halt_is_not(tmp_path: Path) -> None:
    async with open_health(tmp_path) as h:
        h.wiring.link_state.set(LinkState(status=LinkStatus.UP, session_id=1))
        h.wiring.trading.set(TradingStatus(state=TradingState.HALTED,
                                               reasons=("after hours",)))
        with trio.fail_after(5):
            normal = await h.client.get("/health")
            h.wiring.trading.set(TradingStatus(state=TradingState.HALTED, fault=True,
                                                   reasons=("account mismatch",)))
            fault = await h.client.get("/health")
            head = await h.client.head("/health")
    assert normal.status_code == 200 and normal.json()["trading_state"] == "HALTED"
    assert fault.status_code == 503
    assert fault.json()["problems"] == ["trading halted by a fault: account mismatch"]
    assert head.status_code == 503 and head.content == b""


async def test_tree_answers_the_actor_tree_and_dumps_it_at_most_once_a_second(
        tmp_path: Path) -> None:
    async with open_health(tmp_path) as h:
        with trio.fail_after(5):
            first = await h.client.get("/tree")
            second = await h.client.get("/tree")
        tree = first.json()
        dumps = h.journal("tree")
    assert first.status_code == 200 and tree["name"] == "root"
    assert [c["name"] for c in tree["children"]] == ["notifier", "mode_guard"]
    assert tree["children"][0]["state"] == "running"
    assert second.json() == tree
    assert [d["reason"] for d in dumps] == ["request"]     # a polling script cannot flood


async def test_the_kill_switch_sends_an_operator_command_and_journals_it(
        tmp_path: Path) -> None:
    async with open_health(tmp_path) as h:
        commands = h.wiring.commands.clone_receiver()
        with trio.fail_after(5):
            on = await h.client.post("/kill-switch", json={"engaged": True})
            off = await h.client.post("/kill-switch", json={"engaged": False})
        received: list[OperatorCommand] = [commands.receive_nowait(), commands.receive_nowait()]
        journaled = h.journal("kill_switch")
    assert on.status_code == 202 and on.json()["engaged"] is True
    assert off.status_code == 202
    assert [(c.kind, c.source) for c in received] == [("kill_switch_on", "http"),
                                                      ("kill_switch_off", "http")]
    assert [(e["source"], e["engaged"]) for e in journaled] == [("http", True), ("http", False)]


async def test_the_kill_switch_refuses_web_pages_other_types_and_bad_bodies(
        tmp_path: Path) -> None:
    async with open_health(tmp_path) as h:
        with trio.fail_after(5):
            form = await h.client.post("/kill-switch", content=b'{"engaged": false}',
                                       headers={"Content-Type": "text/plain"})
            page = await h.client.post("/kill-switch", json={"engaged": False},
                                       headers={"Origin": "http://evil.example"})
            bad = await h.client.post("/kill-switch", json={"engaged": "yes"})
            garbage = await h.client.post("/kill-switch", content=b"{", headers=JSON)
            get = await h.client.get("/kill-switch")
        assert h.wiring.commands.depth() == 0 and h.journal("kill_switch") == []
    assert form.status_code == 415 and page.status_code == 403
    assert bad.status_code == 400 and garbage.status_code == 400
    assert get.status_code == 405 and get.headers["allow"] == "POST"


async def test_the_kill_switch_answers_503_when_the_command_queue_is_full(
        tmp_path: Path) -> None:
    async with open_health(tmp_path) as h:
        sender = h.wiring.commands.clone_sender()
        for _ in range(h.wiring.commands.capacity):
            sender.send_nowait(OperatorCommand(kind="dump_tree", source="signal",
                                               ts=h.clock.now_utc()))
        with trio.fail_after(5):
            r = await h.client.post("/kill-switch", json={"engaged": True})
    assert r.status_code == 503 and "full" in r.json()["error"]


async def test_unknown_paths_wrong_methods_and_foreign_hosts_are_refused(tmp_path: Path) -> None:
    async with open_health(tmp_path) as h:
        with trio.fail_after(5):
            missing = await h.client.get("/metrics")
            post = await h.client.post("/health", json={})
            rebinding = await h.client.get("/health", headers={"Host": "evil.example:8787"})
            local = await h.client.get("/health", headers={"Host": f"localhost:{h.port}"})
    assert missing.status_code == 404 and "GET /health" in missing.json()["endpoints"]
    assert post.status_code == 405 and post.headers["allow"] == "GET, HEAD"
    assert rebinding.status_code == 403
    assert local.status_code in (200, 503)


async def _raw(port: int, data: bytes) -> bytes:
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    async with stream:
        await stream.send_all(data)
        out = b""
        while chunk := await stream.receive_some(65536):
            out += chunk
    return out


async def test_malformed_or_oversized_requests_are_refused_and_idle_clients_block_nobody(
        tmp_path: Path) -> None:
    async with open_health(tmp_path) as h:
        with trio.fail_after(5):
            idle = await trio.open_tcp_stream("127.0.0.1", h.port)   # connects, says nothing
            garbage = await _raw(h.port, b"\x16\x03\x01 hello\r\n\r\n")
            huge = b"x" * (MAX_BODY_BYTES + 1)
            big = await _raw(h.port, b"POST /kill-switch HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                             b"Connection: close\r\nContent-Type: application/json\r\n"
                             b"Content-Length: "
                             + str(len(huge)).encode() + b"\r\n\r\n" + huge)
            long_head = await _raw(h.port, b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                                   b"Connection: close\r\nX: "
                                   + b"a" * 200_000 + b"\r\n\r\n")
            ok = await h.client.get("/health")      # answered while `idle` is still open
            await idle.aclose()
    assert garbage.startswith(b"HTTP/1.1 400")
    assert big.startswith(b"HTTP/1.1 413")
    assert long_head.startswith((b"HTTP/1.1 431", b"HTTP/1.1 400")), long_head[:200]
    assert ok.status_code in (200, 503)


async def test_the_port_is_written_to_the_state_dir_and_removed_at_exit(tmp_path: Path) -> None:
    async with open_health(tmp_path) as h:
        path = port_file(h.settings.state_dir)
        assert int(path.read_text(encoding="ascii")) == h.port
        listening = h.journal("health_listening")
        assert listening == [{**listening[0], "host": "127.0.0.1", "port": h.port}]
    assert not path.exists()


async def test_a_taken_port_leaves_the_bot_running_without_the_endpoint(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        async with open_health(tmp_path) as h, trio.open_nursery() as nursery:
            with trio.fail_after(5):
                got = await nursery.start(lambda task_status: serve_ops(
                    h.view, Journal(), h.wiring.commands.clone_sender(), lambda _: {},
                    port=port, task_status=task_status))
            nursery.cancel_scope.cancel()
    assert got is None
    assert any(f"cannot listen on 127.0.0.1:{port}" in r.getMessage() for r in caplog.records)


async def test_the_answer_is_one_json_document_and_names_its_clock(tmp_path: Path) -> None:
    async with open_health(tmp_path) as h:
        with trio.fail_after(5):
            raw = await _raw(h.port, b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                             b"Connection: close\r\n\r\n")
            tree = await h.client.get("/tree")
    head, _, body = raw.partition(b"\r\n\r\n")
    assert b"content-type: application/json" in head.lower()
    assert json.loads(body)["clock"] == "bot"          # uptime_s on the bot's clock
    assert tree.json()["clock"] == "trio"              # node uptimes in real seconds
