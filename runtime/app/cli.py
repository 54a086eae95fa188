"""`python -m runtime`: argument parsing, settings errors as one line, exit codes.

Exit codes: 0 clean stop (and "already running"); 1 the supervision tree gave up; 2 bad
settings, a bad command line, or another bot instance with other settings on the same STATE_DIR
or HEALTH_PORT. `--check` adds its own (runtime/app/check.py): 2 also for an unreadable
gameplan file, 3 a missing or invalid gameplan on a session day, 4 no session today.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from collections.abc import Sequence
from pathlib import Path

import trio

from config.market_calendar import ET
from config.settings import Mode, Settings, SettingsError, load_settings
from runtime.app.bot import EXIT_BAD_SETTINGS, EXIT_OK, BotOptions, run_bot
from runtime.app.instance import (
    AlreadyRunning,
    InstanceConflict,
    InstanceOwner,
    acquire_instance_lock,
    check_health_port_free,
)


def _parse_instant(text: str) -> dt.datetime:
    try:
        value = dt.datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 date-time: {text!r}") from None
    return value if value.tzinfo else value.replace(tzinfo=ET)   # naive means US/Eastern


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0: {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m runtime",
                                description="The Crucible trading bot (see README.md).")
    p.add_argument("--env-file", type=Path, default=None,
                   help="settings file (default: .env in the working directory)")
    p.add_argument("--check", action="store_true",
                   help="validate settings and today's gameplan, print them; exit 0 ready, "
                        "2 bad setting or unreadable plan, 3 no valid plan, 4 no session today")
    p.add_argument("--demo", action="store_true",
                   help="run against the embedded Gateway simulator in DRY_RUN on fast time")
    p.add_argument("--bars", type=Path, help="--demo: replay these 1-minute bars (CSV)")
    p.add_argument("--speed", type=_positive, default=None, help="--demo: simulated speed")
    p.add_argument("--duration", type=_positive, default=None,
                   help="--demo: stop after this many wall-clock seconds")
    p.add_argument("--sim-start", type=_parse_instant, default=None,
                   help="run on a simulated clock starting at this instant (naive = US/Eastern)")
    p.add_argument("--sim-speed", type=_positive, default=1.0,
                   help="simulated seconds per real second (with --sim-start)")
    return p


def _fail(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return EXIT_BAD_SETTINGS


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    env_file: Path = args.env_file if args.env_file else Path(".env")
    try:
        settings = load_settings(env_file)
    except SettingsError as exc:
        return _fail(f"settings: {exc}")
    if args.check:
        from runtime.app.check import run_check
        return run_check(settings)
    if args.demo:
        from runtime.app.demo import run_demo
        return run_demo(settings, bars=args.bars, speed=args.speed, duration=args.duration)
    if args.sim_start is not None and settings.mode is Mode.LIVE:
        return _fail("--sim-start is refused in LIVE mode")
    return run(settings, BotOptions(sim_start=args.sim_start, sim_speed=args.sim_speed),
               env_file=env_file)


def run(settings: Settings, options: BotOptions, *, env_file: Path | None = None) -> int:
    """Run the bot in this process, guarded by the instance lock and the health port check.

    `env_file` identifies this bot among several (one per account): a start with the same
    settings file finds it "already running" (exit 0), one with another is refused (exit 2).
    """
    try:
        lock = acquire_instance_lock(settings.state_dir, InstanceOwner.of(settings, env_file))
    except AlreadyRunning as exc:
        _note(settings, "WARNING",
              f"Bot already running: {exc}; this start exits (code {EXIT_OK})")
        return EXIT_OK
    except InstanceConflict as exc:
        _note(settings, "ERROR", f"Refusing to start: {exc} (exit code {EXIT_BAD_SETTINGS})")
        return EXIT_BAD_SETTINGS
    try:
        check_health_port_free(settings.health_port)
    except InstanceConflict as exc:
        lock.release()
        _note(settings, "ERROR", f"Refusing to start: {exc} (exit code {EXIT_BAD_SETTINGS})")
        return EXIT_BAD_SETTINGS
    try:
        return trio.run(run_bot, settings, options)
    finally:
        lock.release()


def _note(settings: Settings, level: str, text: str) -> None:
    """One line in the console and the human log, for a start that ends before logging is
    set up; no rotation (another instance may own the file)."""
    stamp = dt.datetime.now(ET).isoformat(timespec="milliseconds")
    line = f"{stamp} {level:<8} [runtime] {text}"
    print(line, file=sys.stderr)
    try:
        settings.log_file.parent.mkdir(parents=True, exist_ok=True)
        with settings.log_file.open("a", encoding="utf-8") as f:
            f.write(line + "\n")
    except OSError:
        pass
