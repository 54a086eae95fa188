"""`python -m tools.consistency LOGDIR [--gameplan JSON] [--out FILE]`: live vs backtest.

The decisions are one code path (doctrine/brain.py: the actors drive its stages, replay
drives `Brain`), so this checks the I/O AROUND the brain: that the actors got every bar once,
in order, with its minute's VIX applied first and the plan in force, and journaled what they
decided. It rebuilds the bar stream from a run's journal (`events.jsonl` and its rotations
`.1 … .N`: `bar` events, VIX bars under the symbol VIX, `bar_gap` holes), replays it through
doctrine.replay.ReplayEngine (VIX before bars at the same instant) and compares, on every bar
the bot received LIVE, the entry signals and refused setups (`signal` events of kind "entry"
and "rejected": symbol, bar, strategy, direction, stage) and the decision in force (the last
kind "decision" at or before the bar's end: strategy, rule, pivots, locked, VIX gate).
History and backfill bars warm both sides but are not compared. The plan is `--gameplan`
(every day, date rewritten, as tools.replay does) or the first plan the bot accepted.

Exit codes: 0 MATCH, 1 MISMATCH (the first differences printed), 2 unusable input (no
journal, no bars, no live bar, no plan). `compare_logdir()` returns the result (soak, tests).
"""

from __future__ import annotations

import argparse
import bisect
import dataclasses
import datetime as dt
import json
import re
import sys
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from config.gameplan import Gameplan, GameplanError, parse_gameplan, read_gameplan
from config.market_calendar import ET
from doctrine.replay import RawBar, ReplayConfig, ReplayEngine, merge_events
from tools.replay import infer_bar_seconds

VIX_SYMBOL = "VIX"
MAX_DIFFERENCES = 20
_ROTATED = re.compile(r"^events\.jsonl\.(\d+)$")
SignalKey = tuple[str, float, str, str, str]
"""(symbol, bar start epoch s, strategy, direction, stage: "" for an entry)."""
DecisionKey = tuple[str, str, int, bool, str]
"""(strategy, rule, pivots, locked, VIX gate)."""


class UnusableInput(Exception):
    """The journal cannot be compared (exit code 2, one line naming the problem)."""


@dataclass
class RunJournal:
    """What a run's journal says, in the shapes the comparison needs."""

    bars: dict[str, list[RawBar]] = field(default_factory=dict)
    vix: list[RawBar] = field(default_factory=list)
    sources: dict[tuple[str, float], str] = field(default_factory=dict)
    gaps: set[tuple[str, float]] = field(default_factory=set)   # (symbol, bar after a gap)
    signals: list[SignalKey] = field(default_factory=list)
    decisions: list[tuple[float, DecisionKey, str]] = field(default_factory=list)  # at, key, line
    plans: list[dict[str, Any]] = field(default_factory=list)
    conflicting_bars: int = 0
    bad_lines: int = 0
    processes: int = 0


def journal_files(logdir: Path) -> list[Path]:
    """The journal oldest first: events.jsonl.N … events.jsonl.1, events.jsonl."""
    rotated = sorted(((int(m.group(1)), p) for p in logdir.iterdir()
                      if (m := _ROTATED.match(p.name))), reverse=True)
    current = logdir / "events.jsonl"
    return [p for _, p in rotated] + ([current] if current.is_file() else [])


def _epoch(value: Any) -> float:
    when = dt.datetime.fromisoformat(value)     # TypeError/ValueError: the caller names the line
    if when.tzinfo is None:
        raise ValueError(f"time without a UTC offset: {value!r}")
    return when.timestamp()


def read_journal(logdir: Path, *, vix_symbol: str = VIX_SYMBOL) -> RunJournal:
    if not logdir.is_dir():
        raise UnusableInput(f"{logdir}: not a directory")
    files = journal_files(logdir)
    if not files:
        raise UnusableInput(f"{logdir}: no events.jsonl in it")
    run = RunJournal()
    seen: dict[tuple[str, float], RawBar] = {}
    for path in files:
        with path.open(encoding="utf-8") as handle:
            for n, line in enumerate(handle, start=1):
                if line.strip():
                    try:
                        ev = json.loads(line)
                    except json.JSONDecodeError:
                        ev = None
                    if not isinstance(ev, dict):
                        run.bad_lines += 1
                        continue
                    try:
                        _read_event(run, ev, f"{path.name}:{n}", seen, vix_symbol)
                    except (KeyError, TypeError, ValueError) as exc:
                        raise UnusableInput(f"{path.name}:{n}: a {ev.get('event')} event the "
                                            f"tool cannot read: {exc}") from None
    for series in (*run.bars.values(), run.vix):
        series.sort()
    return run


def _read_event(run: RunJournal, ev: dict[str, Any], where: str,
                seen: dict[tuple[str, float], RawBar], vix_symbol: str) -> None:
    event, kind = ev.get("event"), ev.get("kind")
    if event == "bar":
        symbol, ts = str(ev["symbol"]), _epoch(ev["bar_ts"])
        raw: RawBar = (ts, float(ev["open"]), float(ev["high"]), float(ev["low"]),
                       float(ev["close"]), float(ev.get("volume") or 0.0))
        if (symbol, ts) in seen:      # a new process re-reading history: counted once
            run.conflicting_bars += seen[(symbol, ts)] != raw
            return
        seen[(symbol, ts)] = raw
        run.sources[(symbol, ts)] = str(ev.get("source", "live"))
        (run.vix if symbol == vix_symbol else run.bars.setdefault(symbol, [])).append(raw)
    elif event == "bar_gap":
        run.gaps.add((str(ev["symbol"]), _epoch(ev["end"])))
    elif event == "signal" and kind == "decision":
        run.decisions.append((_epoch(ev["at"]), (
            str(ev["strategy"]), str(ev["rule"]), int(ev["pivots"]), bool(ev["locked"]),
            str(ev["vix_gate"])), where))
    elif event == "signal" and kind in ("entry", "rejected"):
        run.signals.append((str(ev["symbol"]), _epoch(ev["bar_ts"]), str(ev["strategy"]),
                            str(ev["direction"]), str(ev["stage"]) if kind == "rejected" else ""))
    elif event == "gameplan" and ev.get("status") == "accepted" and isinstance(
            ev.get("plan"), dict):
        run.plans.append(ev["plan"])
    elif event == "startup":
        run.processes += 1


@dataclass(frozen=True)
class Difference:
    kind: str            # entry | rejected | decision
    at: float            # the bar's start (epoch s)
    symbol: str
    live: str
    replay: str

    def describe(self) -> str:
        return f"{self.kind} {self.symbol} bar {_iso(self.at)}: live {self.live} | " \
               f"replay {self.replay}"


@dataclass
class ConsistencyResult:
    """The verdict and what it rests on."""

    bars: int = 0
    live_bars: int = 0
    vix_bars: int = 0
    entries_live: int = 0
    entries_replay: int = 0
    rejected_live: int = 0
    rejected_replay: int = 0
    decisions_live: int = 0
    bars_decision_checked: int = 0
    plan: str = ""
    differences: list[Difference] = field(default_factory=list)
    difference_count: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def match(self) -> bool:
        return self.difference_count == 0

    def summary_lines(self) -> list[str]:
        lines = [
            f"bars: {self.bars} ({self.live_bars} live, compared), VIX bars: {self.vix_bars}; "
            f"plan: {self.plan}",
            f"entry signals: live {self.entries_live}, replay {self.entries_replay}",
            f"refused setups: live {self.rejected_live}, replay {self.rejected_replay}",
            f"strategy in force checked on {self.bars_decision_checked} live bars "
            f"({self.decisions_live} live decision events)",
            *(f"note: {n}" for n in self.notes)]
        if self.match:
            return [*lines, "MATCH"]
        return [*lines, f"MISMATCH: {self.difference_count} difference(s); the first:",
                *(f"  {d.describe()}" for d in self.differences)]

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["differences"] = [{"kind": d.kind, "bar_ts": _iso(d.at), "symbol": d.symbol,
                               "live": d.live, "replay": d.replay} for d in self.differences]
        return {"match": self.match, **out}


def plan_of_run(run: RunJournal) -> tuple[Gameplan, list[str]]:
    """The first plan the bot accepted, and a note if later plans differ."""
    if not run.plans:
        raise UnusableInput("the journal has no accepted gameplan: give --gameplan")
    plan = dict(run.plans[0])       # as pydantic dumps it ("10:00:00"); the schema reads "HH:MM"
    for key in ("entry_window_start", "entry_window_end"):
        if isinstance(plan.get(key), str):
            plan[key] = plan[key][:5]
    gate = plan.get("vix_gate")
    if isinstance(gate, dict) and isinstance(gate.get("check_time"), str):
        plan["vix_gate"] = {**gate, "check_time": gate["check_time"][:5]}
    try:
        first = parse_gameplan(json.dumps(plan))
    except GameplanError as exc:
        raise UnusableInput(f"the journaled gameplan does not validate: {exc}") from None
    variants = {json.dumps({k: v for k, v in p.items() if k not in ("date", "session_id")},
                           sort_keys=True) for p in run.plans}
    return first, ([f"the bot accepted {len(variants)} different plans (apart from dates); "
                    "replay applies the first to every day, so differences are expected "
                    "after a change"] if len(variants) > 1 else [])


def compare_logdir(logdir: Path, plan: Gameplan | None = None, *,
                   max_differences: int = MAX_DIFFERENCES) -> ConsistencyResult:
    """Read a run's journal and compare it with replay (raises UnusableInput)."""
    return compare_run(read_journal(logdir), plan, max_differences=max_differences)


def compare_run(run: RunJournal, plan: Gameplan | None = None, *,
                max_differences: int = MAX_DIFFERENCES) -> ConsistencyResult:
    if not run.bars:
        raise UnusableInput("the journal has no bar events")
    live = {k for k, s in run.sources.items() if s == "live" and k[0] in run.bars}
    if not live:
        raise UnusableInput("the journal has no live bar: nothing the bot decided on")
    notes: list[str] = []
    if plan is None:
        plan, notes = plan_of_run(run)
    unplanned = sorted({_et_day(k[1]) for k in live} - {str(p.get("date")) for p in run.plans})
    for count, note in (
            (len(unplanned), f"live day(s) without an accepted gameplan: "
                             f"{', '.join(unplanned)}: the bot held C there, replay applied "
                             "the plan"),
            (run.conflicting_bars, f"{run.conflicting_bars} bar(s) journaled twice with "
                                   "different values; the first was used"),
            (run.processes > 1, f"{run.processes} processes in the journal: each restart "
                                "re-warmed its indicators from history, which replay does not"),
            (run.bad_lines, f"{run.bad_lines} unreadable journal line(s) skipped")):
        if count:
            notes.append(note)
    bar_seconds = infer_bar_seconds(sorted(b for s in run.bars.values() for b in s))
    engine = ReplayEngine(sorted(run.bars), plan=plan,
                          config=ReplayConfig(dry_run=False, bar_seconds=bar_seconds))
    signals: list[SignalKey] = []
    in_force: list[tuple[str, float, DecisionKey]] = []
    for at, kind, symbol, b in merge_events(run.bars, run.vix or None, bar_seconds,
                                            infer_bar_seconds(run.vix) if run.vix else None):
        if kind == 0:
            engine.on_vix(b[4], at)
            continue
        if (symbol, b[0]) in run.gaps:
            engine.on_gap(symbol)
        record = engine.on_bar(symbol, b[0], b[2], b[3], b[4], b[5])
        if record is None or (symbol, b[0]) not in live:
            continue
        d = engine.decisions[-1]
        in_force.append((symbol, b[0], (d.strategy, d.rule, d.pivots, d.locked, d.vix_gate)))
        if (sig := record.signal) is not None:
            signals.append((symbol, b[0], sig["strategy"], sig["direction"],
                            "" if sig["accepted"] else sig["stage"]))

    live_signals = [s for s in run.signals if (s[0], s[1]) in live]
    diffs = _compare_signals(live_signals, signals) + _compare_decisions(
        run.decisions, in_force, bar_seconds)
    diffs.sort(key=lambda d: (d.at, d.symbol, d.kind))
    entries = sum(1 for s in run.signals if not s[4])
    replay_entries = sum(1 for s in signals if not s[4])
    return ConsistencyResult(
        bars=sum(map(len, run.bars.values())), live_bars=len(live), vix_bars=len(run.vix),
        entries_live=entries, entries_replay=replay_entries,
        rejected_live=len(run.signals) - entries, rejected_replay=len(signals) - replay_entries,
        decisions_live=len(run.decisions), bars_decision_checked=len(in_force),
        plan=plan.session_id, differences=diffs[:max_differences],
        difference_count=len(diffs), notes=notes)


def _compare_signals(live: Sequence[SignalKey], replay: Sequence[SignalKey]
                     ) -> list[Difference]:
    """Multisets keyed by (symbol, bar): a signal journaled twice is a difference too."""
    live_count, replay_count = Counter(live), Counter(replay)
    out = []
    for key in sorted(set(live_count) | set(replay_count)):
        n_live, n_replay = live_count[key], replay_count[key]
        if n_live != n_replay:
            what = " ".join(x for x in key[2:] if x)
            out.append(Difference("rejected" if key[4] else "entry", key[1], key[0],
                                  f"{what} x{n_live}" if n_live else "none",
                                  f"{what} x{n_replay}" if n_replay else "none"))
    return out


def _compare_decisions(live: Sequence[tuple[float, DecisionKey, str]],
                       in_force: Sequence[tuple[str, float, DecisionKey]],
                       bar_seconds: int) -> list[Difference]:
    """The live decision in force at a bar's end: the last one whose instant is not after it
    (the bot evaluates at data instants that never go back, so journal order breaks ties)."""
    ordered = sorted(live, key=lambda d: d[0])     # stable: journal order among equal instants
    instants = [d[0] for d in ordered]
    out = []
    for symbol, start, key in in_force:
        i = bisect.bisect_right(instants, start + bar_seconds)
        if i == 0:
            out.append(Difference("decision", start, symbol, "no decision yet", _show(key)))
        elif (got := ordered[i - 1])[1] != key:
            out.append(Difference("decision", start, symbol, f"{_show(got[1])} ({got[2]})",
                                  _show(key)))
    return out


def _show(key: DecisionKey) -> str:
    strategy, rule, pivots, locked, gate = key
    return f"{strategy}/{rule} pivots={pivots}{' locked' if locked else ''} gate={gate}"


def _et_day(epoch: float) -> str:
    return dt.datetime.fromtimestamp(epoch, ET).date().isoformat()


def _iso(epoch: float) -> str:
    return dt.datetime.fromtimestamp(epoch, dt.UTC).isoformat().replace("+00:00", "Z")


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tools.consistency", description=(
        "Replay a run's journaled bars through the backtest engine and compare its entry "
        "signals and strategy decisions with the ones the live bot journaled."))
    ap.add_argument("logdir", type=Path, help="the run's log directory (events.jsonl*)")
    ap.add_argument("--gameplan", type=Path, default=None,
                    help="plan to replay with (default: the first plan the bot accepted)")
    ap.add_argument("--out", type=Path, default=None, help="write the result as JSON here")
    ap.add_argument("--vix-symbol", default=VIX_SYMBOL, help="symbol of the VIX bars")
    args = ap.parse_args(argv)
    try:
        try:
            plan = read_gameplan(args.gameplan) if args.gameplan is not None else None
        except GameplanError as exc:
            raise UnusableInput(str(exc)) from None
        result = compare_run(read_journal(args.logdir, vix_symbol=args.vix_symbol), plan)
        print("\n".join(result.summary_lines()))
        if args.out is not None:
            args.out.write_text(json.dumps(result.to_dict(), indent=1) + "\n",
                                encoding="utf-8")
    except (UnusableInput, OSError) as exc:
        print(f"consistency: {exc}", file=sys.stderr)
        return 2
    return 0 if result.match else 1


if __name__ == "__main__":
    sys.exit(main())
