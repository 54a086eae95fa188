"""`python -m tools.consistency LOGDIR [--gameplan JSON] [--out FILE]`: live vs backtest.

A bot whose live decisions drift from its backtest cannot be trusted: what was tested is not
what trades. The decisions themselves are one code path (doctrine/brain.py: the actors drive
its stages, replay drives `Brain`), so what this tool checks is the I/O AROUND the brain: that
the actors received every bar once, in order, with the VIX reading of its minute applied first,
the plan in force, and journaled what they decided. It reads the event journal of a run
(`events.jsonl` and its rotated `events.jsonl.1 … .N`), rebuilds the exact bar stream the
bot received (every `bar` event: symbol, bar_ts, OHLCV, source; VIX bars carry the symbol VIX;
`bar_gap` events mark holes), replays it through doctrine.replay.ReplayEngine in replay's own
order (VIX before bars at the same instant), and compares, for every bar the bot received LIVE:

* the entry signals (symbol, bar_ts, strategy, direction) with the journal's `signal` events
  of kind "entry";
* the refused setups (symbol, bar_ts, strategy, direction, stage) with kind "rejected";
* the strategy decision in force (strategy, rule, pivots, locked, VIX gate) with the last
  `signal` event of kind "decision" whose instant `at` is at or before the bar's end.

History and backfill bars warm the indicators in both, but are not compared: the live bot
never enters on them and did not live through them. The plan is `--gameplan` (schema checked,
applied to every day with its date rewritten, as tools.replay does) or, by default, the first
plan the bot accepted (`gameplan` events carry it).

Exit codes: 0 MATCH, 1 MISMATCH (the first differences are printed), 2 unusable input (no
journal, no bars, no live bar, no plan). `compare_logdir()` returns the result object for the
soak and the tests.
"""

from __future__ import annotations

import argparse
import bisect
import datetime as dt
import json
import re
import sys
from collections import Counter
from collections.abc import Iterator, Sequence
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

EntryKey = tuple[str, float, str, str]
"""(symbol, bar start epoch s, strategy, direction)."""
RejectKey = tuple[str, float, str, str, str]
"""(symbol, bar start epoch s, strategy, direction, stage)."""
DecisionKey = tuple[str, str, int, bool, str]
"""(strategy, rule, pivots, locked, VIX gate): what a decision decides."""


class UnusableInput(Exception):
    """The journal cannot be compared (exit code 2, one line naming the problem)."""


# -- reading the journal --------------------------------------------------------------------------


@dataclass(frozen=True)
class LiveDecision:
    at: float
    key: DecisionKey
    line: str            # where it is in the journal: file:line


@dataclass
class RunJournal:
    """What a run's journal says, in the shapes the comparison needs."""

    files: list[Path]
    bars: dict[str, list[RawBar]] = field(default_factory=dict)
    vix: list[RawBar] = field(default_factory=list)
    sources: dict[tuple[str, float], str] = field(default_factory=dict)
    gaps: dict[str, set[float]] = field(default_factory=dict)   # bar starts right after a gap
    entries: list[EntryKey] = field(default_factory=list)
    rejected: list[RejectKey] = field(default_factory=list)
    decisions: list[LiveDecision] = field(default_factory=list)
    plans: list[dict[str, Any]] = field(default_factory=list)
    duplicate_bars: int = 0
    conflicting_bars: int = 0
    bad_lines: int = 0
    processes: int = 0


def journal_files(logdir: Path) -> list[Path]:
    """The journal oldest first: events.jsonl.N … events.jsonl.1, events.jsonl."""
    rotated = sorted(((int(m.group(1)), p) for p in logdir.iterdir()
                      if (m := _ROTATED.match(p.name))), reverse=True)
    files = [p for _, p in rotated]
    current = logdir / "events.jsonl"
    if current.is_file():
        files.append(current)
    return files


def _epoch(value: Any) -> float:
    if not isinstance(value, str):
        raise ValueError(f"not an ISO 8601 time: {value!r}")
    when = dt.datetime.fromisoformat(value)
    if when.tzinfo is None:
        raise ValueError(f"time without a UTC offset: {value!r}")
    return when.timestamp()


def _lines(files: Sequence[Path]) -> Iterator[tuple[str, dict[str, Any] | None]]:
    for path in files:
        with path.open(encoding="utf-8") as handle:
            for n, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                try:
                    obj = json.loads(line)
                except json.JSONDecodeError:
                    yield f"{path.name}:{n}", None
                    continue
                yield f"{path.name}:{n}", obj if isinstance(obj, dict) else None


def read_journal(logdir: Path, *, vix_symbol: str = VIX_SYMBOL) -> RunJournal:
    if not logdir.is_dir():
        raise UnusableInput(f"{logdir}: not a directory")
    files = journal_files(logdir)
    if not files:
        raise UnusableInput(f"{logdir}: no events.jsonl in it")
    run = RunJournal(files=files)
    seen: dict[tuple[str, float], tuple[float, ...]] = {}
    for where, ev in _lines(files):
        if ev is None:
            run.bad_lines += 1
            continue
        kind = ev.get("event")
        try:
            if kind == "bar":
                _read_bar(run, ev, seen, vix_symbol)
            elif kind == "bar_gap":
                run.gaps.setdefault(str(ev["symbol"]), set()).add(_epoch(ev["end"]))
            elif kind == "signal":
                _read_signal(run, ev, where)
            elif kind == "gameplan":
                if ev.get("status") == "accepted" and isinstance(ev.get("plan"), dict):
                    run.plans.append(ev["plan"])
            elif kind == "startup":
                run.processes += 1
        except (KeyError, TypeError, ValueError) as exc:
            raise UnusableInput(f"{where}: a {kind} event the tool cannot read: {exc}") from None
    for series in (*run.bars.values(), run.vix):
        series.sort(key=lambda b: b[0])
    return run


def _read_bar(run: RunJournal, ev: dict[str, Any], seen: dict[tuple[str, float], tuple[float, ...]],
              vix_symbol: str) -> None:
    symbol = str(ev["symbol"])
    ts = _epoch(ev["bar_ts"])
    raw: RawBar = (ts, float(ev["open"]), float(ev["high"]), float(ev["low"]),
                   float(ev["close"]), float(ev.get("volume") or 0.0))
    key = (symbol, ts)
    if key in seen:
        # the same bar again: a new process re-reading history. The bot counts it once.
        run.duplicate_bars += 1
        if seen[key] != raw[1:]:
            run.conflicting_bars += 1
        return
    seen[key] = raw[1:]
    run.sources[key] = str(ev.get("source", "live"))
    if symbol == vix_symbol:
        run.vix.append(raw)
    else:
        run.bars.setdefault(symbol, []).append(raw)


def _read_signal(run: RunJournal, ev: dict[str, Any], where: str) -> None:
    kind = ev.get("kind")
    if kind == "decision":
        run.decisions.append(LiveDecision(
            at=_epoch(ev["at"]),
            key=(str(ev["strategy"]), str(ev["rule"]), int(ev["pivots"]), bool(ev["locked"]),
                 str(ev["vix_gate"])), line=where))
    elif kind == "entry":
        run.entries.append((str(ev["symbol"]), _epoch(ev["bar_ts"]), str(ev["strategy"]),
                            str(ev["direction"])))
    elif kind == "rejected":
        run.rejected.append((str(ev["symbol"]), _epoch(ev["bar_ts"]), str(ev["strategy"]),
                             str(ev["direction"]), str(ev["stage"])))


# -- the comparison -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Difference:
    kind: str            # entry | rejected | decision
    at: float            # the bar's start (epoch s)
    symbol: str
    live: str
    replay: str

    def describe(self) -> str:
        when = dt.datetime.fromtimestamp(self.at, dt.UTC).isoformat().replace("+00:00", "Z")
        return f"{self.kind} {self.symbol} bar {when}: live {self.live} | replay {self.replay}"


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
        ]
        lines.extend(f"note: {n}" for n in self.notes)
        if self.match:
            lines.append("MATCH")
        else:
            lines.append(f"MISMATCH: {self.difference_count} difference(s); the first:")
            lines.extend(f"  {d.describe()}" for d in self.differences)
        return lines

    def to_dict(self) -> dict[str, Any]:
        return {
            "match": self.match, "bars": self.bars, "live_bars": self.live_bars,
            "vix_bars": self.vix_bars, "entries_live": self.entries_live,
            "entries_replay": self.entries_replay, "rejected_live": self.rejected_live,
            "rejected_replay": self.rejected_replay, "decisions_live": self.decisions_live,
            "bars_decision_checked": self.bars_decision_checked, "plan": self.plan,
            "difference_count": self.difference_count,
            "differences": [{"kind": d.kind, "bar_ts": _iso(d.at), "symbol": d.symbol,
                             "live": d.live, "replay": d.replay} for d in self.differences],
            "notes": self.notes,
        }


def plan_of_run(run: RunJournal) -> tuple[Gameplan, list[str]]:
    """The first plan the bot accepted, and notes about later plans that differ."""
    if not run.plans:
        raise UnusableInput("the journal has no accepted gameplan: give --gameplan")
    notes = []
    try:
        first = parse_gameplan(json.dumps(_as_written(run.plans[0])))
    except GameplanError as exc:
        raise UnusableInput(f"the journaled gameplan does not validate: {exc}") from None
    variants = {json.dumps({k: v for k, v in p.items() if k not in ("date", "session_id")},
                           sort_keys=True) for p in run.plans}
    if len(variants) > 1:
        notes.append(f"the bot accepted {len(variants)} different plans (apart from dates); "
                     "replay applies the first to every day, so differences are expected "
                     "after a change")
    return first, notes


def _as_written(plan: dict[str, Any]) -> dict[str, Any]:
    """The journal holds the plan as pydantic dumps it ("10:00:00"); the schema reads the
    operator's "HH:MM"."""
    out = dict(plan)
    for key in ("entry_window_start", "entry_window_end"):
        if isinstance(out.get(key), str):
            out[key] = out[key][:5]
    gate = out.get("vix_gate")
    if isinstance(gate, dict) and isinstance(gate.get("check_time"), str):
        out["vix_gate"] = {**gate, "check_time": gate["check_time"][:5]}
    return out


def compare_logdir(logdir: Path, plan: Gameplan | None = None, *,
                   max_differences: int = MAX_DIFFERENCES) -> ConsistencyResult:
    """Read a run's journal and compare it with replay (raises UnusableInput)."""
    return compare_run(read_journal(logdir), plan, max_differences=max_differences)


def compare_run(run: RunJournal, plan: Gameplan | None = None, *,
                max_differences: int = MAX_DIFFERENCES) -> ConsistencyResult:
    notes: list[str] = []
    if not run.bars:
        raise UnusableInput("the journal has no bar events")
    live = {k for k, s in run.sources.items() if s == "live" and k[0] in run.bars}
    if not live:
        raise UnusableInput("the journal has no live bar: nothing the bot decided on")
    if plan is None:
        plan, notes = plan_of_run(run)
    planned = {str(p.get("date")) for p in run.plans}
    unplanned = sorted({_et_day(k[1]) for k in live} - planned)
    if unplanned:
        notes.append(f"live day(s) without an accepted gameplan: {', '.join(unplanned)}: the "
                     "bot held C there, replay applied the plan")
    if run.conflicting_bars:
        notes.append(f"{run.conflicting_bars} bar(s) journaled twice with different values; "
                     "the first was used")
    if run.processes > 1:
        notes.append(f"{run.processes} processes in the journal: each restart re-warmed its "
                     "indicators from history, which replay does not")
    if run.bad_lines:
        notes.append(f"{run.bad_lines} unreadable journal line(s) skipped")
    series = [b for s in run.bars.values() for b in s]
    bar_seconds = infer_bar_seconds(sorted(series))
    vix_seconds = infer_bar_seconds(run.vix) if run.vix else None
    engine = ReplayEngine(sorted(run.bars), plan=plan,
                             config=ReplayConfig(dry_run=False, bar_seconds=bar_seconds))

    result = ConsistencyResult(bars=len(series), live_bars=len(live), vix_bars=len(run.vix),
                               plan=plan.session_id, notes=notes)
    replay_entries: list[EntryKey] = []
    replay_rejected: list[RejectKey] = []
    in_force: list[tuple[str, float, DecisionKey]] = []
    for at, kind, symbol, b in merge_events(run.bars, run.vix or None, bar_seconds,
                                            vix_seconds):
        if kind == 0:
            engine.on_vix(b[4], at)
            continue
        if b[0] in run.gaps.get(symbol, ()):
            engine.on_gap(symbol)
        record = engine.on_bar(symbol, b[0], b[2], b[3], b[4], b[5])
        if record is None or (symbol, b[0]) not in live:
            continue
        d = engine.decisions[-1]
        in_force.append((symbol, b[0], (d.strategy, d.rule, d.pivots, d.locked, d.vix_gate)))
        sig = record.signal
        if sig is None:
            continue
        if sig["accepted"]:
            replay_entries.append((symbol, b[0], sig["strategy"], sig["direction"]))
        else:
            replay_rejected.append((symbol, b[0], sig["strategy"], sig["direction"],
                                    sig["stage"]))

    diffs: list[Difference] = []
    diffs += _compare_sets("entry", [e for e in run.entries if (e[0], e[1]) in live],
                           replay_entries)
    diffs += _compare_sets("rejected", [r for r in run.rejected if (r[0], r[1]) in live],
                           replay_rejected)
    diffs += _compare_decisions(run.decisions, in_force, bar_seconds)
    diffs.sort(key=lambda d: (d.at, d.symbol, d.kind))
    result.entries_live = len(run.entries)
    result.entries_replay = len(replay_entries)
    result.rejected_live = len(run.rejected)
    result.rejected_replay = len(replay_rejected)
    result.decisions_live = len(run.decisions)
    result.bars_decision_checked = len(in_force)
    result.difference_count = len(diffs)
    result.differences = diffs[:max_differences]
    return result


def _compare_sets(kind: str, live: Sequence[tuple[Any, ...]],
                  replay: Sequence[tuple[Any, ...]]) -> list[Difference]:
    """Multisets keyed by (symbol, bar): a signal journaled twice is a difference too."""
    out: list[Difference] = []
    live_count, replay_count = Counter(live), Counter(replay)
    for key in sorted(set(live_count) | set(replay_count)):
        n_live, n_replay = live_count[key], replay_count[key]
        if n_live != n_replay:
            what = " ".join(str(x) for x in key[2:])
            out.append(Difference(kind, key[1], key[0],
                                  f"{what} x{n_live}" if n_live else "none",
                                  f"{what} x{n_replay}" if n_replay else "none"))
    return out


def _compare_decisions(live: Sequence[LiveDecision],
                       in_force: Sequence[tuple[str, float, DecisionKey]],
                       bar_seconds: int) -> list[Difference]:
    """The live decision in force at a bar's end: the last one whose instant is not after it
    (the bot evaluates at data instants that never go back, so journal order breaks ties)."""
    ordered = sorted(live, key=lambda d: d.at)     # stable: journal order among equal instants
    instants = [d.at for d in ordered]
    out: list[Difference] = []
    for symbol, start, key in in_force:
        i = bisect.bisect_right(instants, start + bar_seconds)
        if i == 0:
            out.append(Difference("decision", start, symbol, "no decision yet", _show(key)))
            continue
        got = ordered[i - 1]
        if got.key != key:
            out.append(Difference("decision", start, symbol, f"{_show(got.key)} ({got.line})",
                                  _show(key)))
    return out


def _show(key: DecisionKey) -> str:
    strategy, rule, pivots, locked, gate = key
    return f"{strategy}/{rule} pivots={pivots}{' locked' if locked else ''} gate={gate}"


def _et_day(epoch: float) -> str:
    return dt.datetime.fromtimestamp(epoch, ET).date().isoformat()


def _iso(epoch: float) -> str:
    return dt.datetime.fromtimestamp(epoch, dt.UTC).isoformat().replace("+00:00", "Z")


# -- the command ----------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m tools.consistency", description=(
        "Replay a run's journaled bars through the backtest engine and compare its entry "
        "signals and strategy decisions with the ones the live bot journaled."))
    ap.add_argument("logdir", type=Path, help="the run's log directory (events.jsonl*)")
    ap.add_argument("--gameplan", type=Path, default=None,
                    help="plan to replay with (default: the first plan the bot accepted)")
    ap.add_argument("--out", type=Path, default=None, help="write the result as JSON here")
    ap.add_argument("--vix-symbol", default=VIX_SYMBOL, help="symbol of the VIX bars")
    return ap


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        plan = None
        if args.gameplan is not None:
            try:
                plan = read_gameplan(args.gameplan)
            except GameplanError as exc:
                raise UnusableInput(str(exc)) from None
        run = read_journal(args.logdir, vix_symbol=args.vix_symbol)
        result = compare_run(run, plan)
    except (UnusableInput, OSError) as exc:
        print(f"consistency: {exc}", file=sys.stderr)
        return 2
    for line in result.summary_lines():
        print(line)
    if args.out is not None:
        try:
            args.out.write_text(json.dumps(result.to_dict(), indent=1) + "\n", encoding="utf-8")
        except OSError as exc:
            print(f"consistency: {args.out}: cannot write: {exc}", file=sys.stderr)
            return 2
    return 0 if result.match else 1


if __name__ == "__main__":
    sys.exit(main())
