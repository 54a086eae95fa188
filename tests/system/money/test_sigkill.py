"""Killed with SIGKILL after a fill, restarted: the same risk state, positions and orders.

The bot runs as its own process (tests/harness/bot_process.py: `python -m runtime` plus one
injected signal) against the simulator in this process; after the fill it is killed with no
chance to clean up, and the real `python -m runtime` is started on the same STATE_DIR.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import trio

from tests.harness import read_jsonl
from tests.harness.bot import MID_SESSION, SPY_1M
from tools.fake_gateway import FakeGatewayConfig, open_fake_gateway

SPEED = 60.0
pytestmark = pytest.mark.slow


def _state(state_dir: Path, name: str) -> dict[str, Any]:
    path = state_dir / f"{name}.json"
    if not path.exists():
        return {}
    doc: dict[str, Any] = json.loads(path.read_text())["state"]
    return doc


async def _wait_for(predicate: Any, proc: trio.Process, what: str,
                    timeout: float = 60.0) -> None:
    with trio.fail_after(timeout):
        while not predicate():
            if proc.returncode is not None:
                raise AssertionError(f"the bot exited ({proc.returncode}) before {what}")
            await trio.sleep(0.1)


def _events(log_dir: Path, name: str, pid: int | None = None) -> list[dict[str, Any]]:
    events = read_jsonl(log_dir / "events.jsonl")
    if pid is not None:                       # only the events of one process
        starts = [i for i, e in enumerate(events) if e["event"] == "startup" and
                  e.get("pid") == pid]
        events = events[starts[0]:] if starts else []
    return [e for e in events if e["event"] == name]


async def test_killed_after_a_fill_and_restarted_keeps_risk_state_and_positions(
        tmp_path: Path, shared_data: Path, bot_env: dict[str, str]) -> None:
    orders_log = tmp_path / "orders.jsonl"
    config = FakeGatewayConfig(port=0, control_port=0, bars=shared_data / SPY_1M, speed=SPEED,
                               start=MID_SESSION, orders_log=orders_log)
    state_dir, log_dir = Path(bot_env["STATE_DIR"]), Path(bot_env["LOG_FILE"]).parent
    async with open_fake_gateway(config) as gw:
        env = {**bot_env, "IBKR_PORT": str(gw.port), "DRY_RUN": "false",
               "PAPER_TRADING": "true", "OPERATOR_ID": "op", "DAILY_STOP_TIME": "",
               "BOT_CAPITAL_USD": "1000000",
               "GAMEPLAN_PATH": str(tmp_path / "no_gameplan.json")}
        close = round(gw.market.price("SPY", gw.clock.now_utc()), 2)
        first = await trio.lowlevel.open_process(
            [sys.executable, "-m", "tests.harness.bot_process", "--sim-start",
             gw.clock.now_utc().isoformat(), "--sim-speed", str(SPEED), "--signal",
             f"SPY:{close}"], env=env, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL)
        try:
            await _wait_for(lambda: len(read_jsonl(orders_log)) == 3, first, "the bracket",
                            timeout=90)
            parent = next(o for o in gw.broker.orders.values() if o.parent_perm_id == 0)
            if parent.working:        # the market has not reached the limit yet: it does now
                await gw.fill_order(parent.order_ref)
            await _wait_for(lambda: _events(log_dir, "fill"), first, "the fill", timeout=90)
            fill = _events(log_dir, "fill")[0]
            await _wait_for(lambda: fill["exec_id"] in _state(state_dir, "risk").get(
                "exec_ids", {}), first, "ModeGuard booked the fill")
        finally:
            first.kill()                              # SIGKILL: no shutdown of any kind
            await first.wait()
        risk_before = _state(state_dir, "risk")
        ledger_before = _state(state_dir, "ledger")
        assert [p["contracts"] for p in ledger_before["positions"]] == [fill["quantity"]]
        second = await trio.lowlevel.open_process(
            [sys.executable, "-m", "runtime", "--sim-start", gw.clock.now_utc().isoformat(),
             "--sim-speed", str(SPEED)], env=env, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL)
        try:
            await _wait_for(lambda: _events(log_dir, "reconcile", second.pid), second,
                            "the reconciliation", timeout=90)
            await _wait_for(lambda: any(e["state"] == "ACTIVE" for e in _events(
                log_dir, "trading_state", second.pid)), second, "trading ACTIVE")
            risk_after = _state(state_dir, "risk")
            ledger_after = _state(state_dir, "ledger")
        finally:
            second.kill()
            await second.wait()
        held = {p.spec.local_symbol: p.quantity for p in gw.broker.open_positions()}
    # the same risk numbers: nothing booked twice, nothing forgotten
    for key in ("day", "realized_today", "commissions_today", "exec_ids", "day_trades",
                "halted_day", "kill_switch", "day_start_equity", "week_start_equity"):
        assert risk_after[key] == risk_before[key], key
    # the same position, equal to the broker's
    assert [(p["option"], p["contracts"]) for p in ledger_after["positions"]] == \
        [(p["option"], p["contracts"]) for p in ledger_before["positions"]]
    assert list(held.values()) == [fill["quantity"]]
    # no order sent twice, no fill journaled twice
    refs = Counter(o["orderRef"] for o in read_jsonl(orders_log))
    assert sorted(refs.values()) == [1, 1, 1]
    assert len(_events(log_dir, "fill")) == 1
    reconcile = _events(log_dir, "reconcile", second.pid)[0]
    assert reconcile["fills_recovered"] == 0 and reconcile["warnings"] == []
