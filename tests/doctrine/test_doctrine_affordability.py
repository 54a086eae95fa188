"""Can any contract the plan allows fit the budgets? Said once, in numbers, before any signal."""

from __future__ import annotations

import datetime as dt
import json
import logging
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import trio
import trio.testing

from config.gameplan import Gameplan, parse_gameplan
from config.settings import load_settings
from doctrine.affordability import check_affordability, estimate_premium
from doctrine.options import size_contracts
from runtime.app.demo import DEMO_EQUITY_USD, demo_gameplan

DAY = dt.date(2026, 11, 20)
SIM_PRICES = {"SPY": 435.0, "QQQ": 387.0}      # the demo simulator's levels


def plan(**changes: Any) -> Gameplan:
    return parse_gameplan(json.dumps({**demo_gameplan(DAY), **changes}))


def test_the_default_600_account_fits_nothing_and_says_so_with_numbers() -> None:
    answer = check_affordability(plan(), equity=600.0, account_max_position_pct=0.20,
                                 prices=SIM_PRICES, vix=14.0, fee_per_contract=1.30)
    assert not answer.fits
    text = answer.warning()
    assert text is not None
    assert text.startswith("Affordability: no QQQ/SPY ATM/OTM1 option the plan allows fits: "
                           "cheapest risk per contract ≈ $")
    assert "> risk budget $18.00" in text and "strategy A" in text


def test_the_demo_account_fits_and_gives_no_warning() -> None:
    answer = check_affordability(plan(), equity=DEMO_EQUITY_USD, account_max_position_pct=0.20,
                                 prices=SIM_PRICES, vix=14.0, fee_per_contract=1.30)
    assert answer.fits and answer.warning() is None
    fitting = [c for c in answer.candidates if c.size.contracts > 0]
    assert {c.symbol for c in fitting} == {"SPY", "QQQ"}


def test_the_sizing_is_the_money_paths_own_function() -> None:
    answer = check_affordability(plan(), equity=2500.0, account_max_position_pct=0.20,
                                 prices=SIM_PRICES, vix=14.0, fee_per_contract=1.30)
    for c in answer.candidates:
        again = size_contracts(premium=c.premium, stop_loss_pct=0.25 if c.strategy == "A"
                               else 0.15, equity=2500.0,
                               max_risk_pct=0.03 if c.strategy == "A" else 0.02,
                               max_position_pct=0.20 if c.strategy == "A" else 0.10,
                               size_multiplier=1.0 if c.strategy == "A" else 0.5,
                               account_max_position_pct=0.20, fee_per_contract=1.30)
        assert c.size == again


def test_a_plan_cap_that_no_premium_fits_is_named() -> None:
    answer = check_affordability(plan(max_risk_per_trade=5.0), equity=DEMO_EQUITY_USD,
                                 account_max_position_pct=0.20, prices=SIM_PRICES, vix=14.0)
    text = answer.warning()
    assert text is not None and "risk budget $5.00" in text


def test_a_strategy_c_plan_or_no_plan_is_not_an_affordability_problem() -> None:
    assert check_affordability(None, equity=600.0, account_max_position_pct=0.2).warning() is None
    answer = check_affordability(plan(strategy="C"), equity=600.0, account_max_position_pct=0.2)
    assert answer.candidates == () and answer.warning() is None


def test_the_premium_estimate_is_close_to_the_simulators_quotes() -> None:
    # the demo's simulator quoted a 5-DTE ATM SPY put at 2.24 and a QQQ put at 2.47
    assert estimate_premium(435.0, 13.67, 5, "ATM") == pytest.approx(2.24, rel=0.25)
    assert estimate_premium(387.0, 13.67, 5, "ATM") == pytest.approx(2.47, rel=0.25)


async def test_the_bot_warns_once_at_each_new_plan_that_fits_nothing(
        tmp_path: Path, autojump_clock: trio.testing.MockClock,
        caplog: pytest.LogCaptureFixture) -> None:
    from runtime.app.bot import _watch_affordability
    from runtime.app.wiring import Wiring

    settings = load_settings(None, {"STATE_DIR": str(tmp_path)})
    wiring = Wiring()
    emitted: list[tuple[str, dict[str, Any]]] = []
    journal = SimpleNamespace(emit=lambda name, actor, **f: emitted.append((name, f)))
    handle = SimpleNamespace(settings=settings, wiring=wiring, journal=journal)
    caplog.set_level(logging.WARNING, logger="runtime")
    async with trio.open_nursery() as nursery:
        nursery.start_soon(_watch_affordability, handle)
        await trio.sleep(1)
        assert emitted == []                                  # no plan: nothing allowed
        wiring.gameplan.set(plan())
        await trio.sleep(1)
        wiring.gameplan.set(plan(alert_message="same money, other words"))
        await trio.sleep(1)
        assert len(emitted) == 1                              # the same answer: said once
        wiring.gameplan.set(plan(max_risk_per_trade=5.0))
        await trio.sleep(1)
        nursery.cancel_scope.cancel()
    assert [name for name, _ in emitted] == ["affordability", "affordability"]
    assert "risk budget $18.00" in emitted[0][1]["text"]
    assert "risk budget $5.00" in emitted[1][1]["text"]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 2 and warnings[0].startswith("Affordability: no QQQ/SPY")
