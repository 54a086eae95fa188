"""Option choice and sizing: weekly expiry, strike, liquidity, affordability, never over budget."""

from __future__ import annotations

import dataclasses
import datetime as dt
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from doctrine.options import (
    EntryPlan,
    OptionQuote,
    Refusal,
    RiskBudget,
    choose_expiry,
    choose_strike,
    entry_min_dte,
    liquidity_problem,
    plan_option_entry,
    size_contracts,
    sized_signal,
)
from doctrine.params import DOCTRINE
from messages.brain import EntrySignal, SignalRejected
from messages.market import OptionSpec

MON = dt.date(2024, 2, 19)
EXPIRIES = [MON + dt.timedelta(days=d) for d in range(0, 30)]  # dailies, incl. 0DTE


def test_expiry_is_the_earliest_in_range_and_never_0dte() -> None:
    assert choose_expiry(EXPIRIES, MON, min_dte=0, max_dte=14) == MON + dt.timedelta(days=1)
    assert choose_expiry(EXPIRIES, MON, min_dte=4, max_dte=14) == dt.date(2024, 2, 23)
    fridays = [dt.date(2024, 2, 23), dt.date(2024, 3, 1)]
    assert choose_expiry(fridays, MON, min_dte=5, max_dte=14) == dt.date(2024, 3, 1)
    refused = choose_expiry(fridays, MON, min_dte=5, max_dte=7)
    assert isinstance(refused, Refusal) and refused.stage == "expiry"
    assert isinstance(choose_expiry([MON], MON, min_dte=0, max_dte=14), Refusal)


def test_min_dte_never_lets_the_force_close_sell_at_once() -> None:
    assert entry_min_dte(DOCTRINE["A"], 3) == 4
    assert entry_min_dte(DOCTRINE["A"], 1) == 2
    assert entry_min_dte(DOCTRINE["B"], 3) == 5
    assert entry_min_dte(dataclasses.replace(DOCTRINE["A"], min_dte=0), 0) == 1


STRIKES = [495.0, 496.0, 497.0, 498.0, 499.0, 500.0, 501.0, 502.0]


@pytest.mark.parametrize(("price", "right", "moneyness", "expected"), [
    (498.4, "C", "ATM", 498.0), (498.6, "C", "ATM", 499.0), (498.5, "C", "ATM", 498.0),
    (498.5, "P", "ATM", 499.0), (498.4, "C", "OTM1", 499.0), (498.4, "P", "OTM1", 497.0),
    (498.6, "C", "OTM1", 500.0), (498.6, "P", "OTM1", 498.0), (10.0, "C", "ATM", 495.0),
])
def test_strike_choice(price: float, right: str, moneyness: str, expected: float) -> None:
    assert choose_strike(STRIKES, price, right, moneyness) == expected  # type: ignore[arg-type]


def test_strike_refusals() -> None:
    assert isinstance(choose_strike([], 500, "C", "ATM"), Refusal)
    assert isinstance(choose_strike(STRIKES, 502.2, "C", "OTM1"), Refusal)
    assert isinstance(choose_strike(STRIKES, math.nan, "C", "ATM"), Refusal)
    assert isinstance(choose_strike(STRIKES, 500, "C", "ITM2"), Refusal)


SPEC = OptionSpec(underlying="SPY", expiry=dt.date(2024, 2, 23), strike=500.0, right="C")


@pytest.mark.parametrize(("bid", "ask", "volume", "oi", "problem"), [
    (1.00, 1.02, 500, 1000, None),
    (None, 1.02, 500, 1000, "no two-sided quote"),
    (0.0, 1.02, 500, 1000, "no two-sided quote"),
    (1.05, 1.02, 500, 1000, "crossed"),
    (1.00, 1.20, 500, 1000, "spread 18.2%"),
    (1.00, 1.02, 10, 1000, "volume 10"),
    (1.00, 1.02, None, 1000, "volume None"),
    (1.00, 1.02, 500, None, "open interest None"),
])
def test_liquidity_gates(bid: float | None, ask: float, volume: float | None,
                         oi: float | None, problem: str | None) -> None:
    q = OptionQuote(spec=SPEC, bid=bid, ask=ask, volume=volume, open_interest=oi)
    found = liquidity_problem(q, max_spread_pct=0.10, min_volume=50, min_open_interest=100)
    assert (found is None) if problem is None else (found is not None and problem in found)


def test_size_is_floored_never_rounded_up() -> None:
    # $600 equity, A: 3 % risk = $18; premium 1.80 x 100 x 25 % = $45 per contract -> 0
    zero = size_contracts(premium=1.80, stop_loss_pct=0.25, equity=600, max_risk_pct=0.03,
                          max_position_pct=0.20)
    assert zero.contracts == 0
    assert zero.reason.startswith("risk budget $18.00 < risk per contract $45.00")
    # cheap premium, tight stop: risk allows 8, the $120 position cap allows 2
    two = size_contracts(premium=0.45, stop_loss_pct=0.05, equity=600, max_risk_pct=0.03,
                         max_position_pct=0.20)
    assert (two.contracts, "position budget" in two.reason) == (2, True)
    exact = size_contracts(premium=0.60, stop_loss_pct=0.25, equity=1000, max_risk_pct=0.03,
                           max_position_pct=1.0)
    assert exact.contracts == 2   # 2 x $15 == $30 exactly: fits
    capped = size_contracts(premium=0.45, stop_loss_pct=0.25, equity=60000, max_risk_pct=0.03,
                            max_position_pct=0.20, max_risk_ceiling=18.0,
                            max_single_position=120.0, account_max_position_pct=0.1)
    assert capped.contracts == 1 and capped.risk_budget == 18.0


@pytest.mark.parametrize("bad", [
    {"premium": 0.0}, {"premium": -1.0}, {"premium": math.nan}, {"equity": 0.0},
    {"equity": math.inf}, {"stop_loss_pct": 0.0}, {"stop_loss_pct": 1.0},
    {"size_multiplier": 0.0}, {"fee_per_contract": -1.0},
])
def test_bad_inputs_size_to_zero_with_a_reason(bad: dict[str, float]) -> None:
    args = dict(premium=1.0, stop_loss_pct=0.25, equity=10_000.0, max_risk_pct=0.03,
                max_position_pct=0.2, size_multiplier=1.0, fee_per_contract=0.0)
    args.update(bad)
    result = size_contracts(**args)  # type: ignore[arg-type]
    assert result.contracts == 0 and result.reason


money = st.floats(min_value=0.01, max_value=1e6, allow_nan=False, allow_infinity=False)
fraction = st.floats(min_value=0.001, max_value=0.999)
optional_cap = st.one_of(st.none(), st.floats(min_value=0, max_value=1e5))


@settings(max_examples=400, deadline=None)
@given(premium=st.floats(min_value=0.01, max_value=500), stop=fraction, equity=money,
       risk_pct=st.floats(min_value=0, max_value=1), pos_pct=st.floats(min_value=0, max_value=1),
       mult=st.floats(min_value=0.01, max_value=1), account=st.one_of(st.none(), fraction),
       per_trade=optional_cap, ceiling=optional_cap, single=optional_cap,
       fee=st.floats(min_value=0, max_value=5))
def test_size_never_exceeds_any_budget_and_is_never_negative(
        premium: float, stop: float, equity: float, risk_pct: float, pos_pct: float,
        mult: float, account: float | None, per_trade: float | None, ceiling: float | None,
        single: float | None, fee: float) -> None:
    r = size_contracts(premium=premium, stop_loss_pct=stop, equity=equity,
                       max_risk_pct=risk_pct, max_position_pct=pos_pct, size_multiplier=mult,
                       account_max_position_pct=account, max_risk_per_trade=per_trade,
                       max_risk_ceiling=ceiling, max_single_position=single,
                       fee_per_contract=fee)
    assert isinstance(r.contracts, int) and r.contracts >= 0
    risk_cap = min(c for c in (equity * risk_pct * mult, per_trade, ceiling) if c is not None)
    pos_cap = min(c for c in (equity * min(pos_pct, account if account is not None else 1.0)
                              * mult, single) if c is not None)
    risk_each = premium * 100 * stop + fee
    cost_each = premium * 100 + fee
    assert r.contracts * risk_each <= risk_cap + 1e-9 * max(1.0, risk_cap)
    assert r.contracts * cost_each <= pos_cap + 1e-9 * max(1.0, pos_cap)
    # and it is the largest such count (floor, not an under-estimate)
    if r.contracts < 10_000:
        assert ((r.contracts + 1) * risk_each > risk_cap
                or (r.contracts + 1) * cost_each > pos_cap)


def quotes(bid: float, ask: float) -> OptionQuote:
    return OptionQuote(spec=SPEC, bid=bid, ask=ask, volume=1000, open_interest=5000)


def plan_entry(equity: float, ask: float, premium_cap: float | None = None,
               expiries: list[dt.date] | None = None) -> EntryPlan | Refusal:
    params = dataclasses.replace(DOCTRINE["A"], premium_max_usd=premium_cap)
    return plan_option_entry(
        underlying="SPY", right="C", underlying_price=500.2, today=MON,
        expiries=expiries if expiries is not None else [dt.date(2024, 2, 23)],
        strikes_for=lambda _e: STRIKES,
        quote_for=lambda spec: OptionQuote(spec=spec, bid=ask - 0.02, ask=ask, volume=1000,
                                           open_interest=5000),
        params=params, force_close_dte=3, budget=RiskBudget(equity=equity),
        size_multiplier=1.0)


def test_full_entry_plan_picks_contract_and_size() -> None:
    result = plan_entry(equity=10_000, ask=1.20)
    assert isinstance(result, EntryPlan)
    assert result.option.key == "SPY 2024-02-23 500C"
    assert (result.contracts, result.limit_price, result.dte) == (10, 1.20, 4)


@pytest.mark.parametrize(("kwargs", "stage"), [
    ({"equity": 600, "ask": 1.80}, "size"),
    ({"equity": 10_000, "ask": 1.20, "premium_cap": 100.0}, "affordability"),
    ({"equity": 10_000, "ask": 1.20, "expiries": [dt.date(2024, 2, 21)]}, "expiry"),
    ({"equity": 10_000, "ask": 0.04}, "liquidity"),
])
def test_entry_plan_refusals_name_the_stage(kwargs: dict[str, object], stage: str) -> None:
    result = plan_entry(**kwargs)  # type: ignore[arg-type]
    assert isinstance(result, Refusal) and result.stage == stage, result


def test_sized_signal_carries_the_contract_or_the_rejection() -> None:
    ts = dt.datetime(2024, 2, 19, 16, 0, tzinfo=dt.UTC)
    signal = EntrySignal(ts=ts, bar_ts=ts, symbol="SPY", strategy="A", direction="bullish",
                         right="C", reasons=("x",), size_multiplier=1.0, close=500.2)
    ok = plan_entry(equity=10_000, ask=1.20)
    assert isinstance(ok, EntryPlan)
    sized = sized_signal(signal, ok)
    assert isinstance(sized, EntrySignal)
    assert (sized.option, sized.contracts, sized.limit_price) == (ok.option, 10, 1.20)
    zero = plan_entry(equity=600, ask=1.80)
    assert isinstance(zero, Refusal)
    rejected = sized_signal(signal, zero)
    assert isinstance(rejected, SignalRejected)
    assert (rejected.stage, rejected.direction) == ("size", "bullish")
    assert rejected.reason.startswith("risk budget $18.00")
