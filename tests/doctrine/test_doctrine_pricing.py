"""Black-Scholes against textbook values, put-call parity and finite-difference greeks."""

from __future__ import annotations

import math

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from doctrine.pricing import bs_greeks, bs_price, years_between


def test_textbook_values() -> None:
    # Hull's classic example: S=K=100, T=1, r=5 %, sigma=20 %
    assert bs_price(100, 100, 1.0, 0.2, "C", r=0.05) == pytest.approx(10.4506, abs=1e-4)
    assert bs_price(100, 100, 1.0, 0.2, "P", r=0.05) == pytest.approx(5.5735, abs=1e-4)
    # Hull 15.6: S=42, K=40, r=10 %, sigma=20 %, T=0.5 -> c=4.76, p=0.81
    assert bs_price(42, 40, 0.5, 0.2, "C", r=0.1) == pytest.approx(4.76, abs=5e-3)
    assert bs_price(42, 40, 0.5, 0.2, "P", r=0.1) == pytest.approx(0.81, abs=5e-3)


@settings(max_examples=200, deadline=None)
@given(s=st.floats(10, 1000), k=st.floats(10, 1000), t=st.floats(1e-4, 2),
       sigma=st.floats(0.01, 1.5), r=st.floats(0, 0.1), q=st.floats(0, 0.05))
@example(s=10.0, k=516.5, t=0.01322080474108032, sigma=0.8932260410088744, r=0.0, q=0.0)
def test_put_call_parity(s: float, k: float, t: float, sigma: float, r: float,
                         q: float) -> None:
    call = bs_price(s, k, t, sigma, "C", r, q)
    put = bs_price(s, k, t, sigma, "P", r, q)
    assert call - put == pytest.approx(s * math.exp(-q * t) - k * math.exp(-r * t),
                                       abs=1e-9 * max(s, k))
    assert call >= 0 and put >= 0


@pytest.mark.parametrize("right", ["C", "P"])
def test_greeks_match_finite_differences(right: str) -> None:
    s, k, t, sigma, r = 500.0, 505.0, 5 / 365, 0.16, 0.05
    g = bs_greeks(s, k, t, sigma, right, r)  # type: ignore[arg-type]
    h = 0.01
    def price(s_: float = s, t_: float = t, v_: float = sigma) -> float:
        return bs_price(s_, k, t_, v_, right, r)  # type: ignore[arg-type]

    assert g.price == pytest.approx(price())
    assert g.delta == pytest.approx((price(s + h) - price(s - h)) / (2 * h), rel=1e-5)
    assert g.gamma == pytest.approx((price(s + h) - 2 * price() + price(s - h)) / h**2,
                                    rel=1e-3)
    assert g.vega == pytest.approx((price(v_=sigma + 1e-4) - price(v_=sigma - 1e-4)) / 2e-4
                                   / 100, rel=1e-5)
    day = 1 / 365
    assert g.theta == pytest.approx((price(t_=t - day / 100) - price()) / (day / 100) * day,
                                    rel=1e-3)


def test_expiry_and_zero_vol_give_intrinsic_value() -> None:
    assert bs_price(510, 500, 0.0, 0.2, "C") == pytest.approx(10.0)
    assert bs_price(490, 500, 0.0, 0.2, "C") == 0.0
    assert bs_price(490, 500, 0.0, 0.2, "P") == pytest.approx(10.0)
    assert bs_greeks(510, 500, 0.0, 0.2, "C").delta == 1.0
    assert years_between(100.0, 50.0) == 0.0


@pytest.mark.parametrize("args", [(0, 100, 1, 0.2), (100, -1, 1, 0.2), (100, 100, -1, 0.2),
                                  (100, 100, 1, math.nan)])
def test_bad_inputs_are_refused(args: tuple[float, float, float, float]) -> None:
    with pytest.raises(ValueError):
        bs_price(*args, "C")
