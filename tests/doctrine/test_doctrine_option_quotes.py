"""Replay's option quotes: the model's fast bid equals its quote's bid; recorded quotes are used
as of their timestamp (never before) and drive the dry-run fills when given."""

from __future__ import annotations

import datetime as dt
import random
from pathlib import Path

import pytest

from config.market_calendar import get_calendar
from doctrine.option_quotes import ModelQuotes, RecordedQuotes
from doctrine.options import choose_strike
from doctrine.replay import ReplayConfig, ReplayEngine, run_replay
from doctrine.sessions import et_epoch
from messages.market import OptionSpec
from tests.harness.data import SPY_63, bars_of
from tests.harness.seeded_bars import sessions_from, write_bars
from tools.backtest.inputs import InputError, read_bars_csv, read_option_quotes
from tools.replay import main as replay_main


def test_model_bid_is_the_quote_s_bid_bit_for_bit() -> None:
    model = ModelQuotes(get_calendar())
    rng = random.Random(1)
    now = et_epoch(dt.date(2024, 3, 4), dt.time(10, 0))
    for _ in range(3000):
        spec = OptionSpec(underlying="SPY", expiry=dt.date(2024, 3, rng.choice((4, 8, 15))),
                          strike=float(rng.randint(480, 520)), right=rng.choice(("C", "P")))
        s = rng.uniform(470.0, 530.0)
        at = now + rng.uniform(0, 6 * 3600)
        vix = rng.choice((None, 0.0, rng.uniform(9.0, 40.0)))
        q = model.quote(spec, s, at, vix)
        assert model.bid(spec, s, at, vix) == (q.bid if q is not None else None)


def test_the_model_s_short_ladder_gives_the_strike_a_wide_one_gives() -> None:
    """ModelQuotes lists eleven strikes; the strike the doctrine picks (ATM or one step out,
    calls and puts, ties at half a dollar included) is the one a 61-strike ladder gives."""
    model = ModelQuotes(get_calendar())
    rng = random.Random(2)
    prices = [rng.uniform(50.0, 700.0) for _ in range(2000)] + [500.5, 499.5, 500.0]
    for price in prices:
        short = model.strikes("SPY", dt.date(2024, 3, 15), price)
        wide = [round(price) + i * 1.0 for i in range(-30, 31)]
        for right in ("C", "P"):
            for moneyness in ("ATM", "OTM1"):
                assert choose_strike(short, price, right, moneyness) == \
                    choose_strike(wide, price, right, moneyness)


def spec(key: str) -> OptionSpec:
    underlying, expiry, sr = key.split()
    return OptionSpec(underlying=underlying, expiry=dt.date.fromisoformat(expiry),
                      strike=float(sr[:-1]), right="C" if sr[-1] == "C" else "P")


def test_recorded_quote_is_used_from_its_timestamp_until_it_is_too_old() -> None:
    t0 = et_epoch(dt.date(2024, 3, 4), dt.time(10, 0))
    c = spec("SPY 2024-03-15 500C")
    quotes = RecordedQuotes([(t0, c, 1.00, 1.05, None, None),
                             (t0 + 60, c, 1.10, 1.15, 10.0, 20.0)], max_age_s=120)
    assert quotes.quote(c, 500.0, t0 - 1, None) is None          # never before it was seen
    first = quotes.quote(c, 500.0, t0 + 59, None)
    assert first is not None and first.bid == 1.00
    assert quotes.bid(c, 500.0, t0 + 60, None) == 1.10
    assert quotes.quote(c, 500.0, t0 + 181, None) is None        # too old
    assert quotes.expiries("SPY", dt.date(2024, 3, 4)) == [dt.date(2024, 3, 15)]
    assert quotes.strikes("SPY", dt.date(2024, 3, 15), 500.0) == [500.0]


def write_quotes(path: Path, bars_path: Path) -> Path:
    """A chain of every $1 strike around the price, quoted each minute at a fixed premium
    of $2.00 / $2.04 plus the distance to the strike: distinctive, so the test can tell."""
    rows = ["timestamp,contract,bid,ask,volume,open_interest"]
    for line in bars_path.read_text().splitlines()[1::5]:
        stamp, _o, _h, _l, close, _v = line.split(",")
        price = float(close)
        for strike in range(round(price) - 3, round(price) + 4):
            for right in ("C", "P"):
                intrinsic = max(0.0, price - strike) if right == "C" else max(0.0,
                                                                            strike - price)
                bid = round(2.0 + intrinsic, 2)
                rows.append(f"{stamp},SPY 2024-04-19 {strike}{right},{bid:.2f},"
                            f"{bid + 0.04:.2f},500,1000")
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path


def test_replay_trades_at_the_recorded_prices(tmp_path: Path) -> None:
    days = sessions_from(dt.date(2024, 4, 8), 3)
    bars_path = write_bars(tmp_path / "spy_1m_x.csv", days, seed=4)
    quotes = read_option_quotes(write_quotes(tmp_path / "quotes.csv", bars_path))
    engine = ReplayEngine(["SPY"], config=ReplayConfig(vix_constant=15.0, equity=25_000.0),
                          quotes=quotes)
    for _ in run_replay(engine, {"SPY": read_bars_csv(bars_path)}):
        pass
    trades = engine.book.trades
    assert trades, "the recorded chain must be traded"
    assert all(t.option_key.startswith("SPY 2024-04-19 ") for t in trades)
    # fills at recorded prices only: entries at an ask, exits at a bid of the file
    rows = [r.split(",") for r in (tmp_path / "quotes.csv").read_text().splitlines()[1:]]
    asks = {(r[1], float(r[3])) for r in rows}
    bids = {(r[1], float(r[2])) for r in rows}
    assert all((t.option_key, t.entry_price) in asks for t in trades)
    assert all((t.option_key, t.exit_price) in bids for t in trades)
    assert "recorded option quotes from quotes.csv" in engine.quotes.describe()
    assert replay_main(["--bars", str(bars_path), "--vix-constant", "15", "--equity", "25000",
                        "--option-quotes", str(tmp_path / "quotes.csv"), "--report",
                        str(tmp_path / "r"), "--no-charts"]) == 0
    assert "recorded option quotes" in (tmp_path / "r" / "index.html").read_text()


@pytest.mark.parametrize(("text", "message"), [
    ("timestamp,contract,bid\n", "header must be"),
    ("timestamp,contract,bid,ask\n2024-03-04T10:00:00-05:00,SPY 500C,1,1.1\n",
     "is not like"),
    ("timestamp,contract,bid,ask\n2024-03-04T10:00:00-05:00,SPY 2024-03-15 500C,1.2,1.1\n",
     "ask 1.1 below bid 1.2"),
])
def test_bad_quote_files_are_refused_naming_the_line(tmp_path: Path, text: str,
                                                      message: str) -> None:
    path = tmp_path / "q.csv"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(InputError, match=message):
        read_option_quotes(path)


@pytest.mark.parametrize(("vix", "equity", "seed"), [
    (15.0, 25_000.0, 1), (20.0, 25_000.0, 2), (12.0, 60_000.0, 3), (23.0, 60_000.0, 4)])
def test_skipping_calm_bars_gives_the_same_exits_as_repricing_every_bar(
        tmp_path: Path, vix: float, equity: float, seed: int) -> None:
    """The Calm shortcut (no premium exit can fire, so the held option is not repriced) must
    not change one exit, price or P&L against repricing on every bar."""
    bars = read_bars_csv(write_bars(tmp_path / "spy.csv",
                                    sessions_from(dt.date(2024, 4, 1), 10), seed=seed))
    runs = []
    for calm in (False, True):
        engine = ReplayEngine(["SPY"], config=ReplayConfig(vix_constant=vix, equity=equity))
        engine.calm_enabled = calm
        records = [(r.signal, r.exit) for r in run_replay(engine, {"SPY": bars})]
        runs.append((records, engine.book.trades, engine.summary()))
        skips = engine.calm_skips
    assert runs[0][1], "the data must produce trades"
    assert skips > 100, "the shortcut must actually be taken"
    assert runs[0] == runs[1]


def test_calm_shortcut_changes_nothing_on_the_bundled_2024_sessions() -> None:
    bars = bars_of(SPY_63)
    runs = []
    for calm in (False, True):
        engine = ReplayEngine(["SPY"], config=ReplayConfig(vix_constant=15.0, equity=10_000.0))
        engine.calm_enabled = calm
        for _ in run_replay(engine, {"SPY": bars}):
            pass
        runs.append((engine.book.trades, engine.summary(), engine.calm_skips))
    assert len(runs[0][0]) > 100 and runs[1][2] > 1000
    assert runs[0][:2] == runs[1][:2]
