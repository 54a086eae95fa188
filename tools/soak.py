"""`python -m tools.soak --days N [--speed X] [--seed S]`: days of operation in minutes.

The REAL bot (`python -m runtime`, its own process) against the REAL simulator
(`python -m tools.fake_gateway`, another process) on accelerated time, the way production
runs it: the scheduler starts the bot at 06:00 ET on each trading day, IBC restarts the Gateway
at 16:30 ET, the bot stops itself at 17:00 (DAILY_STOP_TIME). During each session seeded
random faults hit the Gateway: drops, hangs, a 326 on reconnect, farm blips, 1101, and a
kill -9 of the Gateway process. At the end the stability report judges the logs, and two drills
are added to it:

  * guardrail drill: a simulated loss past MAX_DAILY_LOSS_PCT is booked through the health
    endpoint (`POST /drill/loss`, accepted only on a simulated clock) and the bot must flatten,
    halt and raise a critical alert within one bar;
  * consistency: the signals the live path produced must equal what `tools.replay` produces
    on the same bars (tools.consistency).

Nights, weekends and holidays are skipped rather than simulated minute by minute: each trading
day gets a fresh simulator process started at 05:50 ET (a real Gateway is restarted daily too),
so a five-day soak takes about five times one day's 11 simulated hours.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import signal
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import trio

from config.market_calendar import ET, Session, get_calendar
from runtime.infra.clock import Clock

DEFAULT_SPEED = 1000.0         # a trading day (06:00-17:00 ET) in about 40 s of wall time
DEFAULT_DAYS = 5
FAULTS_PER_DAY = 3
OPERATOR = "soak"
GATEWAY_WARMUP = dt.timedelta(minutes=10)      # simulator starts at 05:50, the bot at 06:00
BOT_START = dt.time(6, 0)
GATEWAY_RESTART = dt.time(16, 30)
DAILY_STOP = dt.time(17, 0)
RESTART_SIM_SECONDS = 120.0    # the scheduled Gateway restart lasts 2 simulated minutes
HANG_WALL_SECONDS = 8.0        # liveness runs in real time: a hang must outlast its deadline
KILL_PAUSE_WALL_SECONDS = 2.0
BOT_EXIT_GRACE = 120.0         # wall seconds after 17:00 for the bot to stop by itself
DRILL_AT = dt.time(14, 0)      # the drill's latest time, if no position was opened earlier
REPO = Path(__file__).resolve().parents[1]


@dataclass
class SoakResult:
    logdir: Path
    days: list[dt.date]
    faults: list[str] = field(default_factory=list)
    bot_exits: list[tuple[dt.date, int]] = field(default_factory=list)
    drill: dict[str, Any] = field(default_factory=dict)
    consistency: str = "not run"
    consistency_ok: bool = False
    wall_seconds: float = 0.0


# -- the simulator process ---------------------------------------------------------------------


class GatewayProcess:
    """`python -m tools.fake_gateway` in its own process, driven through its control port."""

    def __init__(self, out: Path, speed: float, seed: int, bars: Path | None) -> None:
        self.out, self.speed, self.seed, self.bars = out, speed, seed, bars
        self.proc: trio.Process | None = None
        self.port = 0
        self.control_port = 0
        self.clock: Clock | None = None

    async def start(self, nursery: trio.Nursery, sim_start: dt.datetime) -> None:
        # a restart (after kill -9) listens on the SAME port: the bot's IBKR_PORT does not
        # change when IBC brings a crashed Gateway back (a new port stranded the bot all day)
        args = [sys.executable, "-m", "tools.fake_gateway", "--port", str(self.port),
                "--control-port",
                "0", "--speed", f"{self.speed:g}", "--seed", str(self.seed),
                "--start", sim_start.isoformat()]
        if self.bars is not None:
            args += ["--bars", str(self.bars)]
        log = (self.out / "fake_gateway.log").open("ab")
        self.proc = await trio.lowlevel.open_process(args, stdout=-1, stderr=log, cwd=REPO)
        assert self.proc.stdout is not None
        line = b""
        with trio.fail_after(60):
            while b"\n" not in line:
                chunk = await self.proc.stdout.receive_some(4096)
                if not chunk:
                    raise RuntimeError("the simulator exited before it listened")
                line += chunk
        text = line.decode().split("\n", 1)[0]
        parts = text.split()        # fake_gateway listening on 127.0.0.1:P control 127.0.0.1:C
        self.port = int(parts[3].rsplit(":", 1)[1])
        self.control_port = int(parts[5].rsplit(":", 1)[1])
        status = json.loads(await self.command("status"))
        self.clock = Clock(dt.datetime.fromisoformat(status["sim_time"]), speed=self.speed)
        nursery.start_soon(self._drain_stdout)

    async def _drain_stdout(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        while await self.proc.stdout.receive_some(4096):
            pass

    async def command(self, line: str) -> str:
        with trio.fail_after(10):
            stream = await trio.open_tcp_stream("127.0.0.1", self.control_port)
            async with stream:
                await stream.send_all((line + "\n").encode())
                reply = b""
                while not reply.endswith(b"\n"):
                    chunk = await stream.receive_some(65536)
                    if not chunk:
                        break
                    reply += chunk
        return reply.decode().strip()

    async def kill9(self) -> None:
        if self.proc is not None:
            self.proc.send_signal(signal.SIGKILL if hasattr(signal, "SIGKILL")
                                  else signal.SIGTERM)
            with trio.move_on_after(10):
                await self.proc.wait()

    async def stop(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.terminate()
            with trio.move_on_after(10):
                await self.proc.wait()
            if self.proc.returncode is None:
                self.proc.kill()
                await self.proc.wait()


# -- the day ------------------------------------------------------------------------------------


def gameplan(day: dt.date) -> dict[str, Any]:
    return {
        "date": day.isoformat(), "session_id": f"gauntlet_{day:%Y%m%d}_0900",
        "regime": "normal", "strategy": "A", "symbols": ["SPY", "QQQ"],
        "operator_id": OPERATOR, "position_size_multiplier": 1.0,
        "entry_window_start": "09:50", "entry_window_end": "15:30",
        "hard_limits": {"max_daily_loss_pct": 0.10, "pdt_trades_remaining": 3,
                        "weekly_drawdown_governor_active": False, "max_intraday_pivots": 2},
        "data_quality": {"quarantine_active": False, "last_verified": None},
    }


def bot_env(out: Path, port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(
        ("IBKR_", "DRY_", "PAPER_", "LIVE_", "DISCORD_", "LOG_", "GAMEPLAN_", "STATE_",
         "HEALTH_", "OPERATOR_", "MAX_", "DAILY_", "GATEWAY_", "OUTAGE_", "STARTING_"))}
    env.update({"IBKR_PORT": str(port), "DRY_RUN": "true", "OPERATOR_ID": OPERATOR,
                "LOG_FILE": str(out / "logs" / "crucible_bot.log"),
                "STATE_DIR": str(out / "state"), "HEALTH_PORT": "0",
                "GAMEPLAN_PATH": str(out / "gameplans" / "daily_gameplan.json"),
                "DAILY_STOP_TIME": DAILY_STOP.strftime("%H:%M"),
                # an account big enough that the doctrine's sizing buys contracts, so the
                # money path (and the drill's flatten) has positions to work on
                "STARTING_EQUITY_USD": "25000",
                "GATEWAY_RESTART_TIME": GATEWAY_RESTART.strftime("%H:%M")})
    return env


async def _sleep_until_sim(gw: GatewayProcess, when: dt.datetime) -> None:
    assert gw.clock is not None
    await gw.clock.sleep_until(when)


async def run_day(result: SoakResult, out: Path, session: Session, gw: GatewayProcess,
                  rng: random.Random, drill: bool) -> None:
    day = session.date
    plan_path = out / "gameplans" / "daily_gameplan.json"
    plan_path.parent.mkdir(parents=True, exist_ok=True)
    plan_path.write_text(json.dumps(gameplan(day), indent=1), encoding="utf-8")
    async with trio.open_nursery() as nursery:
        await gw.start(nursery, dt.datetime.combine(day, BOT_START, tzinfo=ET) - GATEWAY_WARMUP)
        await _sleep_until_sim(gw, dt.datetime.combine(day, BOT_START, tzinfo=ET))
        assert gw.clock is not None
        bot = await trio.lowlevel.open_process(
            [sys.executable, "-m", "runtime", "--sim-start", gw.clock.now_utc().isoformat(),
             "--sim-speed", f"{gw.speed:g}"], env=bot_env(out, gw.port), cwd=REPO,
            stdout=subprocess.DEVNULL, stderr=(out / "bot_stderr.log").open("ab"))
        try:
            await _faults(result, session, gw, rng, nursery, drill, out)
            stop = dt.datetime.combine(day, DAILY_STOP, tzinfo=ET)
            await _sleep_until_sim(gw, stop)
            with trio.move_on_after(BOT_EXIT_GRACE):
                await bot.wait()
            if bot.returncode is None:
                result.faults.append(f"{day} bot did not stop at {DAILY_STOP:%H:%M}: killed")
                bot.kill()
                await bot.wait()
            result.bot_exits.append((day, bot.returncode if bot.returncode is not None else -1))
        finally:
            if bot.returncode is None:
                bot.kill()
                await bot.wait()
            await gw.stop()
            nursery.cancel_scope.cancel()


async def _faults(result: SoakResult, session: Session, gw: GatewayProcess, rng: random.Random,
                  nursery: trio.Nursery, drill: bool, out: Path) -> None:
    day = session.date
    moments = sorted(session.open + dt.timedelta(minutes=rng.randint(15, 360))
                     for _ in range(FAULTS_PER_DAY))
    kinds = ["drop", "hang", "farm_blip", "error_1101", "clientid_326", "kill9"]
    plan = [(when, rng.choice(kinds)) for when in moments]
    if drill:
        async def drill_when_holding() -> None:
            # the drill is worth most with a position open: then "flatten" has work to do
            latest = dt.datetime.combine(day, DRILL_AT, tzinfo=ET)
            assert gw.clock is not None
            with trio.move_on_at(gw.clock.trio_time_at(latest)):
                await wait_for_open_position(out / "logs")
            result.faults.append(f"{gw.clock.now_et():%Y-%m-%d %H:%M} ET guardrail drill")
            result.drill = await guardrail_drill(out)

        nursery.start_soon(drill_when_holding)
    for when, kind in plan:
        await _sleep_until_sim(gw, when)
        result.faults.append(f"{when.astimezone(ET):%Y-%m-%d %H:%M} ET {kind}")
        if kind == "drop":
            await gw.command("drop")
        elif kind == "hang":
            await gw.command("hang")
            await trio.sleep(HANG_WALL_SECONDS)
            await gw.command("unhang")
        elif kind == "farm_blip":
            await gw.command("error 2103")
            await trio.sleep(0.5)
            await gw.command("error 2104")
        elif kind == "error_1101":
            await gw.command("error 1101")
        elif kind == "clientid_326":
            await gw.command("clientid-in-use on")
            await gw.command("drop")
            await trio.sleep(1.0)
            await gw.command("clientid-in-use off")
        elif kind == "kill9":
            assert gw.clock is not None
            await gw.kill9()
            await trio.sleep(KILL_PAUSE_WALL_SECONDS)
            await gw.start(nursery, gw.clock.now_utc())
    await _sleep_until_sim(gw, dt.datetime.combine(day, GATEWAY_RESTART, tzinfo=ET))
    result.faults.append(f"{day} 16:30 ET scheduled Gateway restart")
    await gw.command(f"restart {max(0.05, RESTART_SIM_SECONDS / gw.speed):.3f}")


async def guardrail_drill(out: Path) -> dict[str, Any]:
    """Book a loss past MAX_DAILY_LOSS_PCT through the health endpoint; judge the reaction."""
    from tools.soak_drill import run_guardrail_drill

    return await run_guardrail_drill(out)


async def wait_for_open_position(logdir: Path) -> None:
    from tools.soak_drill import open_positions

    # another process writes the journal: there is no event to wait on, only the file
    while not await trio.to_thread.run_sync(open_positions, logdir):  # noqa: ASYNC110
        await trio.sleep(0.2)


# -- the whole soak -----------------------------------------------------------------------------


def trading_days(first: dt.date, count: int) -> list[Session]:
    cal = get_calendar()
    sessions = cal.sessions(first, first + dt.timedelta(days=count * 2 + 10))
    return sessions[:count]


async def soak(days: int, speed: float, seed: int, out: Path, bars: Path | None,
               first: dt.date, drill: bool = True) -> SoakResult:
    sessions = trading_days(first, days)
    result = SoakResult(logdir=out / "logs", days=[s.date for s in sessions])
    rng = random.Random(seed)
    started = trio.current_time()
    gw = GatewayProcess(out, speed, seed, bars)
    for i, session in enumerate(sessions):
        print(f"soak: day {i + 1}/{len(sessions)} {session.date}", file=sys.stderr, flush=True)
        await run_day(result, out, session, gw, rng, drill=drill and i == 0)
    result.wall_seconds = trio.current_time() - started
    return result


def write_report(result: SoakResult, speed: float, seed: int) -> tuple[Path, bool]:
    """The stability report of the soak's logs, with the soak's own sections appended."""
    from tools.consistency import compare_logdir
    from tools.stability.analysis import build_report
    from tools.stability.chart import write_chart
    from tools.stability.markdown import render

    report = build_report(result.logdir)
    try:
        consistency = compare_logdir(result.logdir)
        result.consistency_ok = consistency.match
        result.consistency = "; ".join(consistency.summary_lines())
    except Exception as exc:     # unusable input is a failed check, not a crash of the soak
        result.consistency = f"could not run: {type(exc).__name__}: {exc}"
    out = result.logdir.parent / "stability_report.md"
    chart = out.with_suffix(".png")
    write_chart(report, chart)
    drill_ok = bool(result.drill.get("ok"))
    exits_ok = all(code == 0 for _, code in result.bot_exits)
    ok = report.go and drill_ok and result.consistency_ok and exits_ok
    lines = [render(report, chart.name), "", "## Soak", "",
             f"- days: {', '.join(d.isoformat() for d in result.days)} at {speed:g}x, seed "
             f"{seed}; wall time {result.wall_seconds / 60:.1f} min",
             "- daily bot exits: " + ", ".join(f"{d} {code}" for d, code in result.bot_exits),
             "", "### Faults injected", ""]
    lines += [f"- {f}" for f in result.faults]
    lines += ["", "### Drill: guardrail (daily loss limit)", ""]
    if result.drill:
        lines += [f"- {k}: {v}" for k, v in result.drill.items()]
    else:
        lines.append("- not run")
    lines += ["", "### Drill: live signals equal the replay", "", f"- {result.consistency}",
              "", f"**Soak verdict: {'PASS' if ok else 'FAIL'}** (stability "
              f"{'GO' if report.go else 'NO-GO'}, guardrail drill "
              f"{'passed' if drill_ok else 'FAILED'}, consistency "
              f"{'MATCH' if result.consistency_ok else 'MISMATCH'}, daily exits "
              f"{'clean' if exits_ok else 'NOT clean'})", ""]
    out.write_text("\n".join(lines), encoding="utf-8")
    return out, ok


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tools.soak", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--days", type=int, default=DEFAULT_DAYS)
    p.add_argument("--speed", type=float, default=DEFAULT_SPEED)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--out", type=Path, default=None,
                   help="directory for logs, state and the report (default logs/soak-<seed>)")
    p.add_argument("--bars", type=Path, default=None, help="replay these 1-minute bars")
    p.add_argument("--first-day", type=dt.date.fromisoformat, default=None,
                   help="first trading day (default: the Monday two weeks ago)")
    p.add_argument("--no-drill", action="store_true", help="skip the guardrail drill")
    args = p.parse_args(argv)
    if args.days < 1 or not args.speed > 0:
        print("error: --days must be >= 1 and --speed > 0", file=sys.stderr)
        return 2
    today = dt.datetime.now(ET).date()
    first = args.first_day or today - dt.timedelta(days=today.weekday() + 14)
    out = (args.out or Path("logs") / f"soak-{args.seed}").resolve()
    out.mkdir(parents=True, exist_ok=True)
    result = trio.run(soak, args.days, args.speed, args.seed, out, args.bars, first,
                      not args.no_drill)
    report, ok = write_report(result, args.speed, args.seed)
    print(f"soak: {'PASS' if ok else 'FAIL'} in {result.wall_seconds / 60:.1f} min; "
          f"report {report}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
