"""Instruments: computed option conIds, the weekly expiry calendar, contract resolution."""

from __future__ import annotations

import datetime as dt
import itertools

from config.market_calendar import ET, get_calendar
from tools.fake_gateway.contracts import (
    UNDERLYINGS,
    ContractBook,
    ContractQuery,
    chain_strikes,
    decode_option_con_id,
    option_con_id,
    option_contract,
    parse_occ,
)

NOW = dt.datetime(2024, 3, 20, 10, 0, tzinfo=ET)


def _query(**kw: object) -> ContractQuery:
    fields: dict[str, object] = dict(con_id=0, symbol="", sec_type="", expiry="", strike=0.0,
                                     right="", multiplier="", exchange="SMART",
                                     primary_exchange="", currency="USD", local_symbol="",
                                     trading_class="")
    fields.update(kw)
    return ContractQuery(**fields)  # type: ignore[arg-type]


def test_option_con_ids_are_stable_and_decode_back_to_the_contract() -> None:
    spy = UNDERLYINGS["SPY"]
    for strike, right in ((497.0, "C"), (497.0, "P"), (12.5, "C"), (1200.0, "P")):
        con_id = option_con_id(spy, dt.date(2024, 3, 22), strike, right)
        assert con_id == option_con_id(spy, dt.date(2024, 3, 22), strike, right)
        assert 0 < con_id < 2**31 - 1
        und, expiry, k, r = decode_option_con_id(con_id) or (None, None, None, None)
        assert (und, expiry, k, r) == (spy, dt.date(2024, 3, 22), strike, right)
    assert decode_option_con_id(756733) is None


def test_occ_symbols_round_trip() -> None:
    spec = option_contract(UNDERLYINGS["QQQ"], dt.date(2024, 2, 23), 431.0, "P")
    assert spec.local_symbol == "QQQ   240223P00431000"
    assert parse_occ(spec.local_symbol) == ("QQQ", dt.date(2024, 2, 23), "P", 431.0)


def test_spy_lists_monday_wednesday_friday_and_moves_a_holiday_friday_to_thursday() -> None:
    book = ContractBook(get_calendar())
    expiries = book.options.listed_expiries(UNDERLYINGS["SPY"], dt.date(2024, 3, 20))
    assert expiries[:6] == [dt.date(2024, 3, 20), dt.date(2024, 3, 22), dt.date(2024, 3, 25),
                            dt.date(2024, 3, 27), dt.date(2024, 3, 28),   # Good Friday → Thu
                            dt.date(2024, 4, 1)]
    assert max(expiries) <= dt.date(2024, 3, 20) + dt.timedelta(days=42)
    iwm = book.options.listed_expiries(UNDERLYINGS["IWM"], dt.date(2024, 3, 20))
    assert all(d.weekday() == 4 or d == dt.date(2024, 3, 28) for d in iwm)


def test_a_holiday_monday_has_no_expiry() -> None:
    book = ContractBook(get_calendar())
    expiries = book.options.listed_expiries(UNDERLYINGS["SPY"], dt.date(2024, 5, 20))
    assert dt.date(2024, 5, 27) not in expiries        # Memorial Day
    assert dt.date(2024, 5, 29) in expiries


def test_resolution_by_fields_by_con_id_and_by_local_symbol_agree() -> None:
    book = ContractBook(get_calendar())
    by_fields = book.resolve(_query(symbol="SPY", sec_type="OPT", expiry="20240322",
                                    strike=510.0, right="C"), NOW)
    assert len(by_fields) == 1
    spec = by_fields[0]
    assert book.resolve(_query(con_id=spec.con_id, exchange=""), NOW) == [spec]
    assert book.resolve(_query(sec_type="OPT", local_symbol=spec.local_symbol), NOW) == [spec]
    stock = book.resolve(_query(symbol="SPY", sec_type="STK"), NOW)
    assert [s.con_id for s in stock] == [756733]
    assert book.resolve(_query(symbol="VIX", sec_type="IND", exchange="CBOE"), NOW)[0].con_id \
        == 13455763


def test_a_partial_option_query_lists_the_whole_expiry_around_the_price() -> None:
    book = ContractBook(get_calendar())
    specs = book.resolve(_query(symbol="SPY", sec_type="OPT", expiry="20240322"), NOW,
                         strikes_near=500.0)
    strikes = sorted({s.strike for s in specs})
    assert strikes == chain_strikes(500.0)
    assert {s.right for s in specs} == {"C", "P"}


def test_expired_and_unlisted_options_do_not_resolve() -> None:
    book = ContractBook(get_calendar())
    assert book.resolve(_query(symbol="SPY", sec_type="OPT", expiry="20240318", strike=500.0,
                               right="C"), NOW) == []         # expired Monday
    assert book.resolve(_query(symbol="SPY", sec_type="OPT", expiry="20240321", strike=500.0,
                               right="C"), NOW) == []         # a Thursday: not listed
    expired = option_contract(UNDERLYINGS["SPY"], dt.date(2024, 3, 18), 500.0, "C")
    assert book.resolve(_query(con_id=expired.con_id), NOW) == []
    assert book.resolve(_query(symbol="SPY", sec_type="OPT", expiry="20240322", strike=500.25,
                               right="C"), NOW) == []
    assert book.resolve(_query(symbol="ZZZZ", sec_type="STK"), NOW) == []


def test_chain_strikes_cover_fifteen_percent_in_dollar_steps() -> None:
    strikes = chain_strikes(500.0)
    assert strikes[0] <= 425 and strikes[-1] >= 575
    assert all(b - a == 1.0 for a, b in itertools.pairwise(strikes))
