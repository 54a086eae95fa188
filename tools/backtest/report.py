"""The backtest report: one self-contained HTML page, the equity PNG, trades.csv and stats.json.

The page needs no network to be read: CSS inline, the chart embedded as a data URI (and also
written beside it as `equity.png`). `trades.csv` is the per-trade table as data, `stats.json`
the statistics as shown; the tests recompute the statistics from `trades.csv` independently.
"""

from __future__ import annotations

import base64
import bisect
import csv
import datetime as dt
import html
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from config.market_calendar import ET
from doctrine.bars import BarColumns, RawBar
from doctrine.dry_run import Trade
from doctrine.replay import ReplayEngine
from doctrine.sessions import et_date_of, et_epoch
from tools.backtest.stats import (
    BuyAndHold,
    equity_after_trades,
    group_stats,
    grouped,
)

REPORT_PAGE = "index.html"
EXIT_RULES = ("take_profit", "stop_loss", "emergency_stop", "time_stop", "session_end",
              "dte_force_close")
TRADE_COLUMNS = ("entry_time", "exit_time", "symbol", "contract", "side", "contracts",
                 "entry_premium", "exit_premium", "exit_rule", "commissions", "pnl",
                 "strategy")


@dataclass(frozen=True, slots=True)
class DayBar:
    """The underlying over one session: first open, last close (buy-and-hold)."""

    day: dt.date
    open: float
    close: float
    close_s: float


def session_days(bars: Sequence[RawBar], bar_seconds: int) -> list[DayBar]:
    """One DayBar per ET date of `bars` (ascending): a binary search per day, not a loop
    over every bar (this is on the end-to-end path)."""
    out: list[DayBar] = []
    i, n = 0, len(bars)
    starts = bars.ts if isinstance(bars, BarColumns) else None
    while i < n:
        day = et_date_of(bars[i][0])
        day_end = et_epoch(day + dt.timedelta(days=1), dt.time(0, 0))
        j = (bisect.bisect_left(starts, day_end, lo=i) if starts is not None
             else bisect.bisect_left(bars, day_end, lo=i, key=_start))
        out.append(DayBar(day, bars[i][1], bars[j - 1][4], bars[j - 1][0] + bar_seconds))
        i = j
    return out


def _start(bar: RawBar) -> float:
    return bar[0]


@dataclass
class ReportInputs:
    """What the page says about how the numbers were made."""

    title: str
    bars_files: Sequence[str]
    vix: str
    plan: str
    starting_equity: float
    price_model: str
    fill_model: str
    notes: Sequence[str] = ()
    sweep_rows: Sequence[Mapping[str, Any]] = ()
    sweep_spec: str | None = None
    sweep_folds: Sequence[Mapping[str, Any]] = ()
    extra: dict[str, Any] = field(default_factory=dict)


def _side(t: Trade) -> str:
    return "long call" if t.option_key.endswith("C") else "long put"


def _et(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, ET).strftime("%Y-%m-%d %H:%M")


def trade_rows(trades: Sequence[Trade]) -> list[dict[str, Any]]:
    return [{"entry_time": _et(t.entry_s), "exit_time": _et(t.exit_s), "symbol": t.symbol,
             "contract": t.option_key, "side": _side(t), "contracts": t.contracts,
             "entry_premium": round(t.entry_price, 4), "exit_premium": round(t.exit_price, 4),
             "exit_rule": t.reason, "commissions": round(t.commissions, 2),
             "pnl": round(t.pnl, 2), "strategy": t.strategy} for t in trades]


def build_stats(engine: ReplayEngine, days: Mapping[str, Sequence[DayBar]]) -> dict[str, Any]:
    """Every number of the report, as JSON-able data."""
    trades = sorted(engine.book.trades, key=lambda t: t.exit_s)
    start = engine.book.starting_equity
    sessions = sorted(engine.sessions)
    market_s = sum(c.close.timestamp() - c.open.timestamp()
                   for c in (engine.calendar.session(d) for d in sessions) if c is not None)
    kw: dict[str, Any] = {"start": start, "sessions": sessions, "market_seconds": market_s}
    overall = group_stats("all", trades, **kw)
    holds = []
    for symbol, series in sorted(days.items()):
        if series:
            hold = BuyAndHold(symbol, series[0].day, series[-1].day, series[0].open,
                              series[-1].close)
            holds.append({"symbol": symbol, "first_day": hold.first_day.isoformat(),
                          "last_day": hold.last_day.isoformat(), "entry": hold.entry,
                          "exit": hold.exit, "return_pct": hold.return_pct,
                          "pnl_on_equity": start * hold.return_pct})
    summary = engine.summary()
    return {
        "starting_equity": start,
        "final_equity": summary["final_equity"],
        "open_positions": summary["open_positions"],
        "sessions": len(sessions),
        "first_day": sessions[0].isoformat() if sessions else None,
        "last_day": sessions[-1].isoformat() if sessions else None,
        "bars": summary["bars"],
        "strategy_bars": summary["strategy_bars"],
        "signals": summary["signals"],
        "overall": _jsonable(asdict(overall)),
        "by_strategy": [_jsonable(asdict(g)) for g in grouped(
            trades, lambda t: t.strategy, **kw)],
        "by_symbol": [_jsonable(asdict(g)) for g in grouped(trades, lambda t: t.symbol, **kw)],
        "exits": {rule: engine.exits.get(rule, 0) for rule in EXIT_RULES},
        "rejections": [{"stage": stage, "count": count,
                        "example": engine.rejection_examples.get(stage, "")}
                       for stage, count in engine.rejected.most_common()],
        "buy_and_hold": holds,
    }


def _finite(value: Any) -> Any:
    """Strict JSON: an infinite or NaN float becomes "inf", "-inf" or None."""
    if isinstance(value, float) and not math.isfinite(value):
        return None if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def _jsonable(d: dict[str, Any]) -> dict[str, Any]:
    return {k: (None if isinstance(v, float) and not math.isfinite(v) and v != math.inf
                else "inf" if v == math.inf else v) for k, v in d.items()}


def write_report(out_dir: Path, engine: ReplayEngine, days: Mapping[str, Sequence[DayBar]],
                 inputs: ReportInputs, *, charts: bool = True) -> tuple[Path, dict[str, Any]]:
    """Write index.html, equity.png, trades.csv, stats.json into `out_dir`; return the page."""
    out_dir.mkdir(parents=True, exist_ok=True)
    stats = build_stats(engine, days)
    trades = sorted(engine.book.trades, key=lambda t: t.exit_s)
    rows = trade_rows(trades)
    with (out_dir / "trades.csv").open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=TRADE_COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    (out_dir / "stats.json").write_text(json.dumps(
        _finite({**stats, "sweep": list(inputs.sweep_rows),
                 "sweep_folds": list(inputs.sweep_folds)}),
        indent=1, default=str, allow_nan=False) + "\n", encoding="utf-8")
    png: bytes | None = None
    if charts:
        png = _chart(out_dir / "equity.png", trades, stats, days, inputs)
    page = out_dir / REPORT_PAGE
    page.write_text(render_html(stats, rows, inputs, png), encoding="utf-8")
    return page, stats


def _chart(path: Path, trades: Sequence[Trade], stats: Mapping[str, Any],
           days: Mapping[str, Sequence[DayBar]], inputs: ReportInputs) -> bytes:
    from tools.backtest.charts import equity_chart

    start = stats["starting_equity"]
    curve = equity_after_trades(trades, start)
    first = next((s[0] for s in days.values() if s), None)
    t0 = (dt.datetime.fromtimestamp(et_epoch(first.day, dt.time(9, 30)), ET) if first
          else dt.datetime.now(ET))
    times = [t0] + [dt.datetime.fromtimestamp(t.exit_s, ET) for t in trades]
    last = next((s[-1] for s in days.values() if s), None)
    if last is not None:
        times.append(dt.datetime.fromtimestamp(last.close_s, ET))
        curve.append(curve[-1])
    symbol, series = next(iter(sorted(days.items())), ("", []))
    hold_times = [dt.datetime.fromtimestamp(d.close_s, ET) for d in series]
    hold = [start * d.close / series[0].open for d in series] if series else []
    equity_chart(path, times=times, equity=curve, hold_times=hold_times, hold=hold,
                 hold_label=f"buy and hold {symbol} (same equity)", title=inputs.title)
    return path.read_bytes()


# -- HTML ----------------------------------------------------------------------------------------

_CSS = """
body{font:14px/1.45 -apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:24px;color:#222}
h1{font-size:20px;margin:0 0 4px} h2{font-size:16px;margin:26px 0 8px;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:6px 0} td,th{padding:3px 9px;border-bottom:1px solid #eee;
text-align:right;white-space:nowrap} th{background:#f5f5f5} td.l,th.l{text-align:left}
.neg{color:#b03a2e} .pos{color:#1e7b3a} .meta td{text-align:left;white-space:normal}
.cards{display:flex;gap:12px;flex-wrap:wrap} .card{border:1px solid #ddd;border-radius:6px;
padding:8px 14px;min-width:120px} .card b{display:block;font-size:18px}
small{color:#666} img{max-width:100%;border:1px solid #eee}
.scroll{max-height:520px;overflow:auto;border:1px solid #eee}
"""


def _money(v: float | None) -> str:
    if v is None:
        return "—"
    cls = "neg" if v < 0 else "pos" if v > 0 else ""
    return f'<span class="{cls}">{"-" if v < 0 else ""}${abs(v):,.2f}</span>'


def _pct(v: float | None, digits: int = 1) -> str:
    return "—" if v is None else f"{v * 100:.{digits}f} %"


def _num(v: Any, digits: int = 2) -> str:
    if v is None:
        return "—"
    if v == "inf" or v == math.inf:
        return "∞"
    if v == -math.inf:
        return "−∞"
    return f"{v:.{digits}f}" if isinstance(v, float) else str(v)


def _e(text: Any) -> str:
    return html.escape(str(text))


def _stats_table(groups: Sequence[Mapping[str, Any]], first: str) -> str:
    head = (f'<tr><th class="l">{first}</th><th>trades</th><th>win rate</th><th>net P&amp;L</th>'
            "<th>avg win</th><th>avg loss</th><th>profit factor</th><th>max drawdown</th>"
            "<th>Sharpe (daily)</th><th>exposure</th><th>commissions</th></tr>")
    body = "".join(
        f'<tr><td class="l">{_e(g["label"])}</td><td>{g["trades"]}</td>'
        f'<td>{_pct(g["win_rate"])}</td><td>{_money(g["net_pnl"])}</td>'
        f'<td>{_money(g["avg_win"])}</td><td>{_money(g["avg_loss"])}</td>'
        f'<td>{_num(g["profit_factor"])}</td>'
        f'<td>{_money(-g["max_drawdown"])} ({_pct(g["max_drawdown_pct"])})</td>'
        f'<td>{_num(g["sharpe"])}</td><td>{_pct(g["exposure"])}</td>'
        f'<td>${g["commissions"]:,.2f}</td></tr>' for g in groups)
    return f"<table>{head}{body}</table>"


def render_html(stats: Mapping[str, Any], rows: Sequence[Mapping[str, Any]],
                inputs: ReportInputs, png: bytes | None) -> str:
    o = stats["overall"]
    start = stats["starting_equity"]
    net = o["net_pnl"]
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{_e(inputs.title)}"
             f"</title><style>{_CSS}</style></head><body>",
             f"<h1>{_e(inputs.title)}</h1>",
             f"<small>{stats['first_day']} to {stats['last_day']}, {stats['sessions']} sessions, "
             f"{stats['bars']:,} bars</small>"]
    meta = [("bars", ", ".join(inputs.bars_files)), ("VIX", inputs.vix),
            ("gameplan", inputs.plan), ("starting equity", f"${start:,.2f}"),
            ("option prices", inputs.price_model), ("fills", inputs.fill_model),
            *(("note", n) for n in inputs.notes)]
    parts.append('<table class="meta">' + "".join(
        f'<tr><th class="l">{_e(k)}</th><td>{_e(v)}</td></tr>' for k, v in meta) + "</table>")
    cards = [("net P&L", _money(net)), ("return", _pct(net / start if start else None)),
             ("trades", str(o["trades"])), ("win rate", _pct(o["win_rate"])),
             ("profit factor", _num(o["profit_factor"])),
             ("max drawdown", f'{_money(-o["max_drawdown"])}'),
             ("Sharpe (daily)", _num(o["sharpe"])), ("exposure", _pct(o["exposure"]))]
    for hold in stats["buy_and_hold"]:
        cards.append((f"buy &amp; hold {_e(hold['symbol'])}", _pct(hold["return_pct"])))
    parts.append('<h2>Summary</h2><div class="cards">' + "".join(
        f'<div class="card"><small>{k}</small><b>{v}</b></div>' for k, v in cards) + "</div>")
    if png is not None:
        data = base64.b64encode(png).decode("ascii")
        parts.append('<h2>Equity and drawdown</h2><img alt="equity curve with drawdown" '
                     f'src="data:image/png;base64,{data}">')
    parts.append("<h2>Statistics</h2>" + _stats_table([o], "overall"))
    parts.append("<h3>By strategy</h3>" + _stats_table(stats["by_strategy"], "strategy"))
    parts.append("<h3>By symbol</h3>" + _stats_table(stats["by_symbol"], "symbol"))
    parts.append("<small>P&amp;L net of commissions. Max drawdown: the largest fall of the "
                 "closed-trade equity from its running peak. Sharpe: mean/std of daily returns "
                 "of end-of-day equity over every session, x sqrt(252). Exposure: time holding "
                 "a position / market hours replayed.</small>")
    parts.append("<h2>Exits by rule</h2><table><tr><th class='l'>rule</th><th>exits</th></tr>"
                 + "".join(f"<tr><td class='l'>{_e(k)}</td><td>{v}</td></tr>"
                           for k, v in stats["exits"].items()) + "</table>")
    rej = stats["rejections"]
    parts.append("<h2>Rejections by reason</h2><table><tr><th class='l'>stage</th><th>count"
                 "</th><th class='l'>example</th></tr>" + "".join(
                     f"<tr><td class='l'>{_e(r['stage'])}</td><td>{r['count']}</td>"
                     f"<td class='l'>{_e(r['example'])}</td></tr>" for r in rej) + "</table>"
                 if rej else "<h2>Rejections by reason</h2><p>none</p>")
    parts.append("<h2>Buy and hold</h2><table><tr><th class='l'>symbol</th><th>from</th>"
                 "<th>to</th><th>first open</th><th>last close</th><th>return</th>"
                 "<th>P&amp;L on the same equity</th></tr>" + "".join(
                     f"<tr><td class='l'>{_e(h['symbol'])}</td><td>{h['first_day']}</td>"
                     f"<td>{h['last_day']}</td><td>{h['entry']:.2f}</td><td>{h['exit']:.2f}</td>"
                     f"<td>{_pct(h['return_pct'], 2)}</td><td>{_money(h['pnl_on_equity'])}</td>"
                     "</tr>" for h in stats["buy_and_hold"]) + "</table>")
    if inputs.sweep_rows:
        parts.append(_sweep_table(inputs))
    parts.append(f"<h2>Trades ({len(rows)})</h2>" + _trades_table(rows))
    parts.append("</body></html>\n")
    return "".join(parts)


def _trades_table(rows: Sequence[Mapping[str, Any]]) -> str:
    head = "".join(f"<th{' class=l' if c in ('contract', 'side', 'exit_rule') else ''}>"
                   f"{_e(c.replace('_', ' '))}</th>" for c in TRADE_COLUMNS)
    body = []
    for r in rows:
        cells = []
        for c in TRADE_COLUMNS:
            v = r[c]
            if c == "pnl":
                cells.append(f"<td>{_money(v)}</td>")
            elif c in ("contract", "side", "exit_rule"):
                cells.append(f"<td class=l>{_e(v)}</td>")
            else:
                cells.append(f"<td>{_e(v)}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f'<div class="scroll"><table id="trades"><tr>{head}</tr>{"".join(body)}</table></div>'


def _sweep_table(inputs: ReportInputs) -> str:
    rows = inputs.sweep_rows
    params = list(rows[0]["params"])
    head = ("<tr><th>rank</th>" + "".join(f"<th>{_e(p)}</th>" for p in params)
            + "<th>out-of-sample score</th><th>OOS net P&amp;L</th><th>OOS trades</th>"
            "<th>OOS win rate</th><th>in-sample score</th><th>folds</th></tr>")
    body = "".join(
        f"<tr><td>{i}</td>" + "".join(f"<td>{_e(r['params'][p])}</td>" for p in params)
        + f"<td>{_num(r['oos_score'])}</td><td>{_money(r['oos_pnl'])}</td>"
        f"<td>{r['oos_trades']}</td><td>{_pct(r['oos_win_rate'])}</td>"
        f"<td>{_num(r['is_score'])}</td><td>{r['folds']}</td></tr>"
        for i, r in enumerate(rows, start=1))
    fold_rows = "".join(
        f"<tr><td>{_e(f['train'][0])}..{_e(f['train'][1])}</td>"
        f"<td>{_e(f['test'][0])}..{_e(f['test'][1])}</td><td class=l>{_e(f['params'])}</td>"
        f"<td>{_num(f['is_score'])}</td><td>{_num(f['oos_score'])}</td></tr>"
        for f in inputs.sweep_folds)
    folds = ("<h3>Walk-forward: the in-sample winner of each fold, out of sample</h3><table>"
             "<tr><th>fit on</th><th>scored on</th><th class=l>chosen</th><th>in-sample score"
             f"</th><th>out-of-sample score</th></tr>{fold_rows}</table>" if fold_rows else "")
    return (f"<h2>Parameter sweep (walk-forward, ranked out of sample)</h2>"
            f"<small>{_e(inputs.sweep_spec or '')}. The report above is the base plan's "
            "(no sweep parameters); a combination much better in sample than out of sample "
            f"has fitted noise.</small>{folds}<h3>Every combination</h3>"
            f"<table>{head}{body}</table>")
