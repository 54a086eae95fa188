"""The daily gameplan through the StrategySelector actor: accepted, changed, refused, late."""

from __future__ import annotations

import datetime as dt
import json
import sys
from pathlib import Path
from typing import Any

import pytest
import trio
import trio.testing

from tests.harness.brain import OPERATOR, Brain, et, open_brain, plan_dict, write_plan

DAY = dt.date(2024, 3, 5)          # a Tuesday session


def gameplan_events(brain: Brain) -> list[dict[str, Any]]:
    return brain.of("gameplan")


async def test_a_valid_plan_is_accepted_published_and_audited(
        tmp_path: Path, plan_path: Path, autojump_clock: trio.testing.MockClock) -> None:
    write_plan(plan_path, plan_dict(DAY))
    async with open_brain(tmp_path, et(DAY, 8, 0)) as brain:
        await brain.settle()
        plan = brain.plan()
        assert plan is not None and plan.session_id == f"gauntlet_{DAY:%Y%m%d}_0905"
        assert brain.decision.plan_session_id == plan.session_id
        assert brain.decision.strategy == "C"        # no VIX yet: fail closed, but the plan is in
        [event] = gameplan_events(brain)
        assert event["status"] == "accepted" and event["changes"].startswith("new gameplan")
        assert event["plan"]["operator_id"] == OPERATOR
        assert brain.alerts("critical") == []
    human = brain.settings.log_file.read_text(encoding="utf-8")
    assert f"Gameplan gauntlet_{DAY:%Y%m%d}_0905 accepted" in human


async def test_a_plan_changed_mid_day_is_audited_and_re_evaluated(
        tmp_path: Path, plan_path: Path, autojump_clock: trio.testing.MockClock) -> None:
    write_plan(plan_path, plan_dict(DAY, vix_gate=...))
    async with open_brain(tmp_path, et(DAY, 10, 0)) as brain:
        brain.wiring.vix.set(_vix(15.0, brain))
        await brain.until(lambda: brain.decision.strategy == "A")
        write_plan(plan_path, plan_dict(DAY, vix_gate=..., strategy="C", symbols=[],
                                        position_size_multiplier=0.0,
                                        session_id=f"gauntlet_{DAY:%Y%m%d}_1130"))
        await brain.until(lambda: len(gameplan_events(brain)) == 2)
        change = gameplan_events(brain)[1]
        assert "strategy: A -> C" in change["changes"]
        assert "symbols: [SPY] -> []" in change["changes"]
        await brain.settle()
        last = brain.decisions()[-1]
        assert (last["strategy"], last["rule"], last["cause"]) == ("C", "plan_c", "gameplan")
        changed = brain.plan()
        assert changed is not None and changed.strategy == "C"
        # the same content written again is no change at all
        write_plan(plan_path, json.dumps(change["plan"] | {"entry_window_start": "10:00",
                                                           "entry_window_end": "15:30"},
                                         indent=4))
        await brain.settle(120)
        assert len(gameplan_events(brain)) == 2
    human = brain.settings.log_file.read_text(encoding="utf-8")
    assert "strategy: A -> C" in human          # the audit line


def _vix(value: float, brain: Brain) -> Any:
    from messages.market import VixReading
    return VixReading(value=value, ts=brain.clock.now_utc())


BAD_PLANS: list[tuple[str, Any, str, str]] = [
    ("missing", None, "missing", "does not exist"),
    ("invalid", plan_dict(DAY, hard_limits={"max_daily_loss_pct": 0.1,
                                            "pdt_trades_remaining": 5,
                                            "weekly_drawdown_governor_active": False,
                                            "max_intraday_pivots": 2}),
     "invalid", "'hard_limits.pdt_trades_remaining': must be between 0 and 3, got 5"),
    ("stale", plan_dict(DAY - dt.timedelta(days=1)), "stale",
     f"'date': plan is for {DAY - dt.timedelta(days=1)}, today (ET) is {DAY}"),
    ("wrong operator", plan_dict(DAY, operator_id="SOMEONE"), "wrong_operator",
     f"'operator_id': 'SOMEONE' does not match the configured OPERATOR_ID '{OPERATOR}'"),
    ("not json", "{\"date\": ", "invalid_json", "is not valid JSON"),
]


@pytest.mark.parametrize(("case", "content", "kind", "text"), BAD_PLANS,
                         ids=[c[0] for c in BAD_PLANS])
async def test_a_bad_plan_selects_c_with_one_critical_alert_naming_the_problem(
        tmp_path: Path, plan_path: Path, autojump_clock: trio.testing.MockClock,
        case: str, content: Any, kind: str, text: str) -> None:
    if content is not None:
        write_plan(plan_path, content)
    async with open_brain(tmp_path, et(DAY, 10, 0)) as brain:
        brain.wiring.vix.set(_vix(15.0, brain))
        await brain.settle(600)                    # many polls, one alert
        assert brain.plan() is None
        assert brain.decision.strategy == "C" and brain.decision.rule == "no_plan"
        critical = [a for a in brain.alerts("critical") if "Gameplan" in a["title"]]
        assert len(critical) == 1, critical
        assert kind in critical[0]["title"] and text in critical[0]["text"]
        [event] = gameplan_events(brain)
        assert event["status"] == "refused" and event["kind"] == kind


async def test_a_utf8_bom_is_accepted(
        tmp_path: Path, plan_path: Path, autojump_clock: trio.testing.MockClock) -> None:
    write_plan(plan_path, b"\xef\xbb\xbf" + json.dumps(plan_dict(DAY)).encode("utf-8"))
    async with open_brain(tmp_path, et(DAY, 8, 0)) as brain:
        await brain.settle()
        assert brain.plan() is not None
        assert brain.alerts("critical") == []


async def test_no_valid_plan_by_0915_locks_c_for_the_day(
        tmp_path: Path, plan_path: Path, autojump_clock: trio.testing.MockClock) -> None:
    write_plan(plan_path, plan_dict(DAY - dt.timedelta(days=1)))     # yesterday's, overnight
    async with open_brain(tmp_path, et(DAY, 8, 0)) as brain:
        await brain.settle()
        assert brain.alerts("critical") == []
        [waiting] = [a for a in brain.alerts("info") if "gameplan" in a["title"]]
        assert waiting["title"] == "Waiting for today's gameplan"
        await brain.clock.sleep_until(et(DAY, 9, 15, 1))      # no bar at all: the timer decides
        assert brain.decision.locked and brain.decision.rule == "no_plan"
        assert brain.decisions()[-1]["cause"] == "timer"
        [critical] = brain.alerts("critical")
        assert "No valid gameplan by 09:15 ET" in critical["title"]
        assert "plan is for" in critical["text"]
        assert any(a["title"] == "Strategy C locked for the day" for a in brain.alerts("warning"))
        # a plan that turns up later does not unlock the day
        write_plan(plan_path, plan_dict(DAY, session_id=f"gauntlet_{DAY:%Y%m%d}_0930"))
        brain.wiring.vix.set(_vix(15.0, brain))
        await brain.settle(120)
        assert brain.plan() is not None
        assert brain.decision.strategy == "C" and brain.decision.locked
        assert brain.decision.reasons == ("C locked for the day: no valid gameplan by 09:15 ET",)


async def test_yesterdays_plan_becomes_stale_at_midnight(
        tmp_path: Path, plan_path: Path, autojump_clock: trio.testing.MockClock) -> None:
    write_plan(plan_path, plan_dict(DAY))
    async with open_brain(tmp_path, et(DAY, 23, 50)) as brain:
        await brain.settle()
        assert brain.plan() is not None
        await brain.clock.sleep_until(et(DAY + dt.timedelta(days=1), 0, 0, 1))
        assert brain.plan() is None
        assert brain.decision.day == DAY + dt.timedelta(days=1)
        assert brain.decision.strategy == "C"
        assert gameplan_events(brain)[-1]["kind"] == "stale"


async def test_the_plans_indicator_periods_reach_the_indicators(
        tmp_path: Path, plan_path: Path, autojump_clock: trio.testing.MockClock) -> None:
    data = plan_dict(DAY)
    data["strategy_parameters"].update(ema_fast=5, ema_slow=13)
    write_plan(plan_path, data)
    async with open_brain(tmp_path, et(DAY, 8, 0)) as brain:
        await brain.settle()
        assert brain.indicators.shown("periods") == "EMA 5/13, RSI 14, BB 20/2"


async def test_no_critical_gameplan_alert_on_a_day_without_a_session(
        tmp_path: Path, plan_path: Path, autojump_clock: trio.testing.MockClock) -> None:
    sunday = dt.date(2024, 3, 10)
    write_plan(plan_path, plan_dict(dt.date(2024, 3, 8)))           # Friday's plan, stale
    async with open_brain(tmp_path, et(sunday, 8, 0)) as brain:
        await brain.settle()
        await brain.clock.sleep_until(et(sunday, 12, 0))           # well past 09:15
        assert brain.alerts("critical") == []
        [said] = [a for a in brain.alerts("info") if "gameplan" in a["title"]]
        assert said["title"] == "No market session today: the gameplan can wait"
        assert brain.decision.strategy == "C"


@pytest.mark.skipif(sys.platform != "linux", reason="elsewhere the plan file is polled")
async def test_a_plan_written_while_running_is_taken_when_written_not_at_a_poll(
        tmp_path: Path, plan_path: Path, autojump_clock: trio.testing.MockClock) -> None:
    from actors.strategy_selector import Tuning
    write_plan(plan_path, plan_dict(DAY))
    async with open_brain(tmp_path, et(DAY, 8, 0), tuning=Tuning(plan_poll_s=86_400.0)) as brain:
        await brain.settle()
        assert len(gameplan_events(brain)) == 1
        began = trio.current_time()
        write_plan(plan_path, plan_dict(DAY, session_id=f"gauntlet_{DAY:%Y%m%d}_0845"))
        await brain.until(lambda: len(gameplan_events(brain)) == 2)
        assert trio.current_time() - began < 1.0          # not a day later
        plan = brain.plan()
        assert plan is not None and plan.session_id.endswith("_0845")
