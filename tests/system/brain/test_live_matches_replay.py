"""The live brain makes exactly the backtest's decisions on the real 2019 SPY + VIX week.

The brain subtree (the app's wiring) receives 2019-02-11 as history at start-up and
2019-02-12..15 live, minute by minute on the virtual clock, with the VIX bar of a minute
sometimes published before the SPY bar and sometimes after it (BarFeed's streams are
independent). The plan is written each morning. ReplayEngine over the same bars must give the
same entry signals, refused setups and strategy in force, and tools.consistency must say so
from the journal alone (and see an altered signal).
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
import trio
import trio.testing

from doctrine.replay import RawBar, ReplayConfig, ReplayEngine, merge_events
from messages.brain import EntrySignal
from tests.harness.brain import (
    Brain,
    day_bars,
    et,
    open_brain,
    plan_dict,
    plan_of,
    write_plan,
)
from tests.harness.data import SPY_2019, VIX_2019, bars_of, uses_real_data
from tools import consistency

HISTORY_DAY = dt.date(2019, 2, 11)
LIVE_DAYS = [dt.date(2019, 2, d) for d in (12, 13, 14, 15)]
VIX_CEILING = 16.2   # the week's VIX crosses it on the 14th: two pivots, then C locks


def week_plan(day: dt.date) -> dict[str, Any]:
    data = plan_dict(day)
    data["strategy_parameters"]["vix_ceiling"] = VIX_CEILING
    return data


async def play_week(brain: Brain, plan_path: Path, spy: list[RawBar], vix: list[RawBar]) -> None:
    """History for the first day at once, then every later minute at its end, live."""
    for b in day_bars(spy, HISTORY_DAY):
        await brain.send_bar("SPY", b, "history")
    for b in day_bars(vix, HISTORY_DAY):
        brain.set_vix(b, "history")
    live_spy = [b for d in LIVE_DAYS for b in day_bars(spy, d)]
    live_vix = [b for d in LIVE_DAYS for b in day_bars(vix, d)]
    events = merge_events({"SPY": live_spy}, live_vix, 60)
    day = None
    for at, kind, symbol, raw in events:
        this_day = dt.datetime.fromtimestamp(at, dt.UTC).astimezone(et(HISTORY_DAY, 0).tzinfo)
        if this_day.date() != day:
            day = this_day.date()
            if day != LIVE_DAYS[0]:
                await brain.clock.sleep_until(et(day, 8, 30))
                write_plan(plan_path, week_plan(day))
        # BarFeed delivers a completed bar a moment after its end; VIX and SPY of the same
        # minute arrive in either order
        vix_first = (int(at) // 60) % 2 == 0
        delay = 1.0 if (kind == 0) == vix_first else 2.0
        await brain.clock.sleep_until(dt.datetime.fromtimestamp(at + delay, dt.UTC))
        if kind == 0:
            brain.set_vix(raw)
        else:
            await brain.send_bar(symbol, raw)
    await brain.settle(30.0)


def replay_week(spy: list[RawBar], vix: list[RawBar]) -> tuple[list[tuple[Any, ...]],
                                                                 dict[float, str]]:
    """ReplayEngine over the same bars: entry keys and the strategy of every live bar."""
    plan = plan_of(week_plan(LIVE_DAYS[0]))
    engine = ReplayEngine(["SPY"], plan=plan, config=ReplayConfig(dry_run=False))
    bars = [b for d in [HISTORY_DAY, *LIVE_DAYS] for b in day_bars(spy, d)]
    vixes = [b for d in [HISTORY_DAY, *LIVE_DAYS] for b in day_bars(vix, d)]
    first_live = day_bars(spy, LIVE_DAYS[0])[0][0]
    entries: list[tuple[Any, ...]] = []
    strategy: dict[float, str] = {}
    for at, kind, _, b in merge_events({"SPY": bars}, vixes, 60):
        if kind == 0:
            engine.on_vix(b[4], at)
            continue
        record = engine.on_bar("SPY", b[0], b[2], b[3], b[4], b[5])
        assert record is not None, "every recorded bar is counted"
        if b[0] < first_live:
            continue
        strategy[b[0]] = record.strategy
        if record.signal is not None and record.signal["accepted"]:
            entries.append(("SPY", b[0], record.signal["strategy"], record.signal["direction"]))
    return entries, strategy


@pytest.mark.slow
async def test_live_brain_makes_the_backtests_decisions_on_the_2019_week(
        tmp_path: Path, plan_path: Path, autojump_clock: trio.testing.MockClock) -> None:
    spy, vix = bars_of(SPY_2019), bars_of(VIX_2019)
    write_plan(plan_path, week_plan(LIVE_DAYS[0]))
    async with open_brain(tmp_path, et(LIVE_DAYS[0], 6, 0)) as brain:
        await play_week(brain, plan_path, spy, vix)
        assert brain.indicators.incarnation == 1 and brain.selector.incarnation == 1
        live_entries = [("SPY", e.bar_ts.timestamp(), e.strategy, e.direction)
                        for e in brain.entries]
        journal_entries = brain.of("signal", kind="entry")
        decisions = brain.decisions()

    replay_entries, replay_strategy = replay_week(spy, vix)
    # the real week has > 20 momentum setups; its generated stand-in (a plain clone) fewer
    assert len(replay_entries) > (20 if uses_real_data() else 10)
    assert live_entries == replay_entries                 # same bars, same order, same signals
    assert len(journal_entries) == len(live_entries)
    assert all(isinstance(s, EntrySignal) and s.option is None and s.contracts is None
               for s in brain.signals)
    # the strategy the live bot held at each bar's end is replay's
    ats = [(dt.datetime.fromisoformat(d["at"]).timestamp(), d["strategy"]) for d in decisions]
    for start, expected in replay_strategy.items():
        held = [s for at, s in ats if at <= start + 60][-1]
        assert held == expected, dt.datetime.fromtimestamp(start, dt.UTC)
    locks = [d for d in decisions if d["locked"]]
    assert locks and locks[0]["pivots"] == 2
    assert locks[0]["day"] == "2019-02-14" or not uses_real_data()   # the real VIX: the 14th

    # the tool says the same from the journal alone
    logdir = tmp_path / "logs"
    result = consistency.compare_logdir(logdir)
    assert result.match, "\n".join(result.summary_lines())
    assert result.entries_live == result.entries_replay == len(replay_entries)
    assert result.notes == []
    assert result.live_bars == sum(len(day_bars(spy, d)) for d in LIVE_DAYS)
    assert consistency.main([str(logdir), "--out", str(tmp_path / "c.json")]) == 0
    assert json.loads((tmp_path / "c.json").read_text(encoding="utf-8"))["match"] is True

    # one altered signal in the journal is a MISMATCH naming that bar
    events = logdir / "events.jsonl"
    lines = events.read_text(encoding="utf-8").splitlines()
    i = next(n for n, line in enumerate(lines) if '"kind":"entry"' in line)
    altered = json.loads(lines[i])
    altered["direction"] = "bearish" if altered["direction"] == "bullish" else "bullish"
    lines[i] = json.dumps(altered)
    events.write_text("\n".join(lines) + "\n", encoding="utf-8")
    bad = consistency.compare_logdir(logdir)
    assert not bad.match and bad.difference_count == 2     # one missing, one extra
    assert {d.kind for d in bad.differences} == {"entry"}
    assert all(d.at == dt.datetime.fromisoformat(altered["bar_ts"]).timestamp()
               for d in bad.differences)
    assert consistency.main([str(logdir)]) == 1
