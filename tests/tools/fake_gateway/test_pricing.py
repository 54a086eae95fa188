"""Option quotes look like a real weekly chain: premiums, spreads, deltas."""

from __future__ import annotations

import math

import pytest

from tools.fake_gateway.pricing import (
    black_scholes,
    implied_vol,
    quote_option,
    smile_vol,
)

WEEK = 5.0 / 365.0


def test_put_call_parity_holds() -> None:
    c = black_scholes(500.0, 500.0, WEEK, 0.14, "C")
    p = black_scholes(500.0, 500.0, WEEK, 0.14, "P")
    assert c.price - p.price == pytest.approx(500.0 - 500.0 * math.exp(-0.04 * WEEK), abs=1e-9)
    assert 0.45 < c.delta < 0.6 and -0.55 < p.delta < -0.4
    assert c.theta < 0 and c.vega > 0 and c.gamma > 0


def test_implied_vol_inverts_the_model() -> None:
    price = black_scholes(495.0, 500.0, WEEK, 0.17, "C").price
    assert implied_vol(price, 495.0, 500.0, WEEK, "C") == pytest.approx(0.17, abs=1e-6)
    assert implied_vol(0.0, 495.0, 500.0, WEEK, "C") is None


def test_puts_carry_more_vol_than_calls_equally_far_out() -> None:
    put_side = smile_vol(16.0, 0.85, 500.0, 480.0, WEEK)
    call_side = smile_vol(16.0, 0.85, 500.0, 520.0, WEEK)
    atm = smile_vol(16.0, 0.85, 500.0, 500.0, WEEK)
    assert put_side > atm > call_side * 0.9
    assert atm == pytest.approx(0.136)


@pytest.mark.parametrize("strike", [480.0, 495.0, 500.0, 505.0, 510.0])
def test_spy_weekly_quotes_have_penny_spreads_and_penny_prices(strike: float) -> None:
    vol = smile_vol(15.0, 0.85, 500.0, strike, WEEK)
    theo = black_scholes(500.0, strike, WEEK, vol, "C").price
    q = quote_option(theo, 500.0, strike, vol, WEEK, 1.0)
    assert q.bid is not None and q.bid < q.ask
    assert 0.01 <= q.ask - q.bid <= 0.05 + 0.01 * theo     # deep ITM: wider, like reality
    assert round(q.bid, 2) == q.bid and round(q.ask, 2) == q.ask
    assert q.bid <= theo + 1e-9 <= q.ask + 1e-9
    if theo < 3.0:
        assert q.ask - q.bid <= 0.05


def test_a_worthless_option_has_no_bid_and_a_one_cent_ask() -> None:
    vol = smile_vol(15.0, 0.85, 500.0, 560.0, 1 / 365)
    theo = black_scholes(500.0, 560.0, 1 / 365, vol, "C").price
    q = quote_option(theo, 500.0, 560.0, vol, 1 / 365, 1.0)
    assert q.bid is None and q.ask == 0.01
