"""`python -m tools.bench_idle [--minutes M] [--warmup S] [--at session|night]`: idle cost.

Starts the simulator (`tools.fake_gateway`, its own process) and the bot (`python -m runtime`,
DRY_RUN, its own process) at 1x on a simulated clock that starts inside a regular session
(`session`: live bars every 5 s, the steady state of a trading day) or at night (`night`:
nothing to do but wait), lets the bot settle for `--warmup` seconds, then samples both
processes with psutil once a second for `--minutes` and prints:

  bot CPU   % of one core over the window (user + system time of all its threads / wall time)
  bot RSS   MB, mean and max of the samples (resident set, what the OS must keep in memory)
  simulator CPU, for reference (it is not the bot's cost)

Goals (issue 17): bot CPU ≤ 0.3 % of a core, RSS ≤ 100 MB. Other jobs on the machine do not
change a process's own CPU time much, but they do stretch it; run on a quiet machine.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import psutil

from config.market_calendar import ET, get_calendar
from tools.soak import bot_env, gameplan

REPO = Path(__file__).resolve().parents[1]


def _start_instant(at: str) -> dt.datetime:
    """10:30 ET of a recent session (`session`), or 20:00 ET the evening before it (`night`)."""
    session = get_calendar().previous_session(dt.date(2026, 11, 20))
    if at == "session":
        return dt.datetime.combine(session.date, dt.time(10, 30), tzinfo=ET)
    return dt.datetime.combine(session.date - dt.timedelta(days=1), dt.time(20, 0), tzinfo=ET)


def _start_gateway(start: dt.datetime, out: Path) -> tuple[subprocess.Popen[str], int]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "tools.fake_gateway", "--port", "0", "--control-port", "0",
         "--speed", "1", "--seed", "7", "--start", start.isoformat()],
        cwd=REPO, stdout=subprocess.PIPE, stderr=(out / "fake_gateway.log").open("ab"),
        text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()      # fake_gateway listening on 127.0.0.1:P control ...
    if not line:
        raise RuntimeError("the simulator exited before it listened")
    return proc, int(line.split()[3].rsplit(":", 1)[1])


def _cpu_seconds(proc: psutil.Process) -> float:
    times = proc.cpu_times()
    return float(times.user + times.system)


def _thread_seconds(proc: psutil.Process) -> dict[int, float]:
    """CPU seconds per OS thread (the main thread's id is the pid: trio runs there)."""
    return {t.id: t.user_time + t.system_time for t in proc.threads()}


def _thread_name(pid: int, tid: int) -> str:
    if tid == pid:
        return "main (trio)"
    try:
        return Path(f"/proc/{pid}/task/{tid}/comm").read_text().strip()
    except OSError:
        return f"thread {tid}"


def measure(minutes: float, warmup: float, at: str,
            profile: Path | None = None) -> dict[str, float]:
    start = _start_instant(at)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        plan = out / "gameplans" / "daily_gameplan.json"
        plan.parent.mkdir(parents=True)
        plan.write_text(json.dumps(gameplan(start.date())), encoding="utf-8")
        gw, port = _start_gateway(start, out)
        env = bot_env(out, port)
        env["DAILY_STOP_TIME"] = ""       # stay up for the whole window
        env["PYTHONPATH"] = str(REPO)
        prof = ["-m", "cProfile", "-o", str(profile.resolve())] if profile else []
        bot = subprocess.Popen(
            [sys.executable, *prof, "-m", "runtime", "--sim-start",
             (start + dt.timedelta(seconds=1)).isoformat(), "--sim-speed", "1"],
            cwd=REPO, env=env, stdout=subprocess.DEVNULL,
            stderr=(out / "bot_stderr.log").open("ab"))
        try:
            time.sleep(warmup)
            if bot.poll() is not None:
                raise RuntimeError(f"the bot exited ({bot.returncode}): see its stderr")
            p_bot, p_gw = psutil.Process(bot.pid), psutil.Process(gw.pid)
            cpu0, gw0, t0 = _cpu_seconds(p_bot), _cpu_seconds(p_gw), time.monotonic()
            threads0 = _thread_seconds(p_bot)
            rss: list[float] = []
            end = t0 + minutes * 60
            while time.monotonic() < end:
                rss.append(p_bot.memory_info().rss / 1e6)
                time.sleep(1.0)
            wall = time.monotonic() - t0
            threads = {tid: sec - threads0.get(tid, 0.0)
                       for tid, sec in _thread_seconds(p_bot).items()}
            result = {f"thread {_thread_name(bot.pid, tid)} [{tid}] cpu_pct": 100 * sec / wall
                      for tid, sec in sorted(threads.items(), key=lambda kv: -kv[1])[:5]}
            result |= {"bot_cpu_pct": 100 * (_cpu_seconds(p_bot) - cpu0) / wall,
                      "bot_rss_mb_mean": statistics.fmean(rss), "bot_rss_mb_max": max(rss),
                      "gateway_cpu_pct": 100 * (_cpu_seconds(p_gw) - gw0) / wall,
                      "window_s": wall}
        finally:
            _stop(bot, 30)
            _stop(gw, 10)
    return result


def _stop(proc: subprocess.Popen[str] | subprocess.Popen[bytes], grace: float) -> None:
    """SIGTERM (the bot shuts down in order), SIGKILL after `grace` seconds."""
    proc.terminate()
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.bench_idle", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=3.0)
    parser.add_argument("--warmup", type=float, default=30.0)
    parser.add_argument("--at", choices=("session", "night"), default="session")
    parser.add_argument("--profile", type=Path, default=None,
                        help="run the bot under cProfile (its trio thread) and save the stats "
                             "here, to see what wakes it (the CPU figure then includes the "
                             "profiler's overhead)")
    args = parser.parse_args(argv)
    r = measure(args.minutes, args.warmup, args.at, args.profile)
    print(f"at={args.at} window {r['window_s']:.0f}s")
    print(f"bot CPU {r['bot_cpu_pct']:.2f} % of a core   RSS mean {r['bot_rss_mb_mean']:.1f} MB "
          f"max {r['bot_rss_mb_max']:.1f} MB")
    print(f"simulator CPU {r['gateway_cpu_pct']:.2f} % of a core")
    for key, value in r.items():
        if key.startswith("thread "):
            print(f"  bot {key.removesuffix(' cpu_pct')}: {value:.2f} %")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
