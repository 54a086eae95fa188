"""`python -m runtime --demo`: the whole bot against the embedded Gateway simulator.

What a new user sees within a minute, with no account and no network: the mode in words, the
actor tree, the Gateway session coming up, bars and indicators warming up from history, the
strategy decision and signals, and a scheduled Gateway restart in the middle (link down, back
up, bars backfilled) — then a clean stop and a short summary.

The demo can never touch real state or money: it always runs DRY_RUN, keeps its state in a
throwaway directory, writes its logs to `logs/demo/`, never posts to Discord, and writes its
own gameplan for the simulated day (operator `demo`).
"""

from __future__ import annotations

import datetime as dt
import json
import sys
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

import trio

from config.market_calendar import ET, get_calendar
from config.settings import Settings
from doctrine.params import DOCTRINE
from runtime.app.bot import BotHandle, BotOptions, run_bot
from runtime.app.instance import AlreadyRunning, acquire_instance_lock

DEFAULT_SPEED = 120.0          # two simulated hours per wall minute
DEFAULT_DURATION = 60.0        # wall seconds
RESTART_AT = 0.4               # the simulated Gateway restart, as a fraction of the run
RESTART_SECONDS = 3.0          # how long the simulated Gateway stays down (wall seconds)
DEMO_OPERATOR = "demo"
DEMO_EQUITY_USD = 5000.0       # the demo account: 3 % risk = $150 a trade, so a ~$60-risk
                               # ATM weekly SPY/QQQ option fits (the defaults' $600 does not)
DEMO_TIME_STOP_MIN = 30        # the plan's time stop: an exit by a rule inside the minute


def demo_start(today: dt.date) -> dt.datetime:
    """09:45 ET on the last full session before today: history exists, the day is young."""
    session = get_calendar().previous_session(today)
    return dt.datetime.combine(session.date, dt.time(9, 45), tzinfo=ET)


def demo_gameplan(day: dt.date) -> dict[str, Any]:
    """A valid Strategy A plan for the simulated day (the VIX rules may still choose B or C)."""
    return {
        "date": day.isoformat(),
        "session_id": f"gauntlet_{day:%Y%m%d}_0900",
        "regime": "normal",
        "strategy": "A",
        "symbols": ["SPY", "QQQ"],
        "operator_id": DEMO_OPERATOR,
        "position_size_multiplier": 1.0,
        "entry_window_start": "09:50",
        "entry_window_end": "15:30",
        "hard_limits": {"max_daily_loss_pct": 0.10, "pdt_trades_remaining": 3,
                        "weekly_drawdown_governor_active": False, "max_intraday_pivots": 2},
        "data_quality": {"quarantine_active": False, "last_verified": None},
        "alert_message": "demo run on the embedded Gateway simulator",
        "strategy_parameters": {"time_stop_minutes": DEMO_TIME_STOP_MIN},
    }


def demo_account(settings: Settings) -> dict[str, Any]:
    """The demo account's money settings: enough equity for one contract to fit the budget."""
    # sizing and the limits use min(BOT_CAPITAL_USD, equity): both are the demo account's
    update: dict[str, Any] = {"starting_equity_usd": DEMO_EQUITY_USD,
                              "bot_capital_usd": DEMO_EQUITY_USD}
    return update


def run_demo(settings: Settings, *, bars: Path | None, speed: float | None,
             duration: float | None) -> int:
    """The CLI entry: returns the process exit code."""
    if bars is not None and not bars.is_file():
        print(f"error: --bars {bars}: file not found", file=sys.stderr)
        return 2
    return trio.run(_demo, settings, bars, speed or DEFAULT_SPEED,
                    duration or DEFAULT_DURATION)


async def _demo(settings: Settings, bars: Path | None, speed: float, duration: float) -> int:
    from tools.fake_gateway import FakeGatewayConfig, open_fake_gateway

    today = dt.datetime.now(ET).date()
    start: dt.datetime | None = demo_start(today)
    if bars is not None:
        start = None              # the simulator picks a day inside the CSV
    log_dir = Path("logs") / "demo"
    with tempfile.TemporaryDirectory(prefix="crucible-demo-") as tmp:
        state_dir = Path(tmp) / "state"
        try:
            lock = acquire_instance_lock(state_dir)
        except AlreadyRunning as exc:    # cannot happen in a fresh temp dir; say so if it does
            print(f"error: {exc}", file=sys.stderr)
            return 2
        try:
            config = FakeGatewayConfig(port=0, control_port=0, bars=bars, speed=speed,
                                       start=start, seed=7)
            async with open_fake_gateway(config) as gw:
                sim_now = gw.clock.now_utc()
                day = sim_now.astimezone(ET).date()
                plan = Path(tmp) / "demo_gameplan.json"
                plan.write_text(json.dumps(demo_gameplan(day), indent=1), encoding="utf-8")
                restart_at = sim_now + dt.timedelta(seconds=duration * RESTART_AT * speed)
                demo_settings = settings.model_copy(update={
                    "dry_run": True, "paper_trading": False, "live_trading_ack": None,
                    "discord_webhook_url": None, "ibkr_host": "127.0.0.1",
                    "ibkr_port": gw.port, "state_dir": state_dir, "health_port": 0,
                    "log_file": log_dir / "crucible_bot.log", "gameplan_path": plan,
                    "operator_id": DEMO_OPERATOR, "daily_stop_time": None,
                    "gateway_restart_time": restart_at.astimezone(ET).time().replace(
                        second=0, microsecond=0),
                    **demo_account(settings),
                })
                _banner(gw.port, sim_now, speed, duration, bars)
                trades_file = log_dir / "trades.jsonl"
                trades_from = trades_file.stat().st_size if trades_file.exists() else 0
                events: list[dict[str, Any]] = []
                async with trio.open_nursery() as nursery:
                    bot: BotHandle = await nursery.start(run_bot, demo_settings, BotOptions(
                        sim_start=sim_now, sim_speed=speed, console=True, handle_signals=True))
                    bot.journal.add_tap(events.append)
                    nursery.start_soon(_script, bot, gw, duration)
        finally:
            lock.release()
    print(demo_summary(events, _read_trades(log_dir / "trades.jsonl", trades_from), log_dir),
          file=sys.stderr, flush=True)
    return 0


def _read_trades(path: Path, offset: int) -> list[dict[str, Any]]:
    """This run's trade-journal records (the file is appended to across demo runs)."""
    if not path.exists():
        return []
    with path.open("rb") as f:
        f.seek(offset)
        lines = f.read().decode("utf-8", errors="replace").splitlines()
    out: list[dict[str, Any]] = []
    for line in lines:
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict):
            out.append(record)
    return out


async def _script(bot: BotHandle, gateway: Any, duration: float) -> None:
    """The demo's one event: the scheduled Gateway restart, then a clean stop."""
    with trio.move_on_after(duration):
        await trio.sleep(duration * RESTART_AT)
        print("\n*** demo: the Gateway restarts now (its scheduled daily restart) ***\n",
              file=sys.stderr, flush=True)
        await gateway.restart(RESTART_SECONDS)
        await trio.sleep_forever()
    bot.request_stop("demo over")


def _banner(port: int, sim_now: dt.datetime, speed: float, duration: float,
            bars: Path | None) -> None:
    source = f"replaying {bars}" if bars else "a seeded synthetic market"
    risk = DOCTRINE["A"].max_risk_pct
    print(f"Crucible demo: embedded Gateway simulator on 127.0.0.1:{port} ({source}), "
          f"simulated clock from {sim_now.astimezone(ET):%Y-%m-%d %H:%M} ET at {speed:g}x "
          f"for {duration:g} s; DRY-RUN, no account, no network. Ctrl-C stops it early.\n"
          f"Demo account: ${DEMO_EQUITY_USD:,.0f} equity and a Strategy A plan for SPY/QQQ "
          f"(risk {risk:.0%} = ${DEMO_EQUITY_USD * risk:,.0f} a trade, time stop "
          f"{DEMO_TIME_STOP_MIN} min), chosen so that one ATM weekly option fits the budget: "
          "you see an entry, its order and fill, an exit by a rule and the P&L. (The default "
          "$600 account fits none: the bot says so at start.)\n",
          file=sys.stderr, flush=True)


def demo_summary(events: list[dict[str, Any]], trades: list[dict[str, Any]],
                 log_dir: Path) -> str:
    """What happened, in words that say exactly that (a setup is not a trade)."""
    kinds = Counter(e["event"] for e in events)
    sources = Counter(e.get("source") for e in events if e["event"] == "bar")
    signals = Counter((e.get("kind"), e.get("strategy")) for e in events
                      if e["event"] == "signal")
    decisions = ", ".join(f"{n}x {s}" for (k, s), n in sorted(signals.items(), key=str)
                          if k == "decision") or "none"
    setups = sum(n for (k, _), n in signals.items() if k == "entry")
    refused = sum(n for (k, _), n in signals.items() if k == "rejected")
    ups = [e for e in events if e["event"] == "link_up"]
    outage = [e["outage_s"] for e in ups if e.get("outage_s") is not None]
    orders = [e for e in events if e["event"] == "order_submitted"]
    fills = [e for e in events if e["event"] == "fill"]
    rejected = [e for e in events if e["event"] == "order_rejected"]
    exits = [t for t in trades if t.get("kind") == "exit"]
    pnl = sum(float(f.get("realized_pnl") or 0.0) for f in fills)
    commissions = sum(float(f.get("commission") or 0.0) for f in fills)
    still_open = sum((1 if f.get("side") == "BUY" else -1) * int(f.get("quantity") or 0)
                     for f in fills)
    lines = [
        "", "Demo summary",
        f"  Gateway sessions: {len(ups)}"
        + (f" (back up {outage[-1]:.0f} simulated s after the restart)" if outage else ""),
        f"  bars delivered: {kinds['bar']} ({sources['history']} history, "
        f"{sources['backfill']} backfill, {sources['live']} live); gaps: {kinds['bar_gap']}",
        f"  strategy decisions: {decisions}",
        f"  entry setups: {setups} signalled, {refused} refused before the money path; "
        f"{len(rejected)} refused by the money path (risk checks or sizing)",
    ]
    lines += [f"  order: {o.get('action')} {o.get('quantity')} {o.get('contract')} "
              f"{o.get('order_type')} {o.get('limit')} ({o.get('role')}, {o.get('mode')})"
              for o in orders]
    lines += [f"  fill: {f.get('side')} {f.get('quantity')} {f.get('contract')} @ "
              f"{float(f.get('price') or 0):.2f} (commission {float(f.get('commission') or 0):.2f}"
              f", realised {float(f.get('realized_pnl') or 0):+.2f} USD)" for f in fills]
    lines += [f"  exit: {t.get('contract')} by rule {t.get('reason')} ({t.get('detail')})"
              for t in exits]
    lines += [
        f"  P&L today: {pnl:+,.2f} USD realised over {len(fills)} fill(s) "
        f"(after {commissions:,.2f} in commissions); "
        + (f"{still_open} contract(s) still open" if still_open else "no position open")
        if fills else "  P&L today: no trade, so no P&L (see the entries refused above)",
        f"  actor restarts: {kinds['actor_restart']} (the link subtree; the brain kept its "
        "state)",
        f"  logs: {log_dir / 'crucible_bot.log'}, {log_dir / 'events.jsonl'} and "
        f"{log_dir / 'trades.jsonl'}",
    ]
    return "\n".join(lines)
