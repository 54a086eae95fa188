"""The one shared test harness: every helper the tests use, written once, in this package.

Test folders mirror the source and hold only tests (test_*.py, bench_*.py) and the pytest
fixtures of their folder (conftest.py); every helper a test imports is here, so there is one
obvious place to look and no second copy to drift. This module holds the small ones:

  REPO, closed_port              the repository root; a loopback port nothing listens on
  wait_until / wait_until_sync   a bounded wait for a condition (trio task / plain thread)
  wait_for_text                  a bounded wait for a line a subprocess writes to a file
  settings_for                   Settings rooted in a test's tmp_path (no stray environment)
  memory_journal                 a Journal whose events land in a list, no file
  open_tmp_logging               open_logging into tmp_path/logs (bot.log, events.jsonl)
  busy_for, BURST_S              keep the trio loop running without ever sleeping
  read_jsonl                     a JSON-lines file as dicts (missing file = no lines)
  events_named / first_event     journal events picked by name and fields
  emitted_event_names            every journal event name the code can write

and the rigs have a module each:

  data            market data (real ../shared/data or seeded stand-ins) and the example plan
  seeded_bars     small seeded bar files for the backtest's and doctrine's tests
  brain           open_brain: the app's brain subtree (Indicators, StrategySelector) in process
  actor_rig       open_actor_env: one money actor (ModeGuard, OrderRouter) on hand-fed channels
  bot             open_bot_and_gateway: the whole bot against tools.fake_gateway in process
  money           the money path's helpers on top of `bot` (signals, fills, the ledger)
  bot_process     `python -m tests.harness.bot_process`: the bot as a process, one signal
  ops             open_health: the HTTP server (health, console API) over a hand-built view
  notifier        open_notifier: the Notifier actor; fake_discord: the webhook's stand-in
  resource_probe  open_probe and a scripted sampler
  ib_thread       ib_async on its own asyncio thread; simulator: gw_config for tools.fake_gateway
  browser         headless Chromium (selenium) for the console's page tests
  logset_factory  multi-day log directories for the stability report's tests
"""

from __future__ import annotations

import json
import logging
import re
import socket
import subprocess
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import trio

from config.settings import Settings, load_settings
from runtime.infra.logs import Journal, open_logging

Event = dict[str, Any]
REPO = Path(__file__).resolve().parents[2]


def closed_port() -> int:
    """A loopback port nothing listens on (bound once to pick it, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


async def wait_until(predicate: Callable[[], bool], timeout: float = 5.0,
                     poll: float = 0.01) -> None:
    """Poll `predicate` every `poll` seconds of trio time until true; fail after `timeout`.

    On a MockClock with autojump both are virtual, so the wait costs no wall time; on the real
    clock `timeout` is a bound, not an expectation.
    """
    with trio.fail_after(timeout):
        while not predicate():
            await trio.sleep(poll)


def wait_until_sync(predicate: Callable[[], bool], timeout: float = 10.0,
                    poll: float = 0.005) -> None:
    """The same for code outside trio (a writer thread, a subprocess's file)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"condition not met within {timeout:g}s")
        time.sleep(poll)


def wait_for_text(path: Path, needle: str, procs: Sequence[subprocess.Popen[str]],
                  timeout: float = 60.0) -> str:
    """The text of `path` once it contains `needle`, written by `procs` (processes under test);
    fails at once if one of them exits first, with its stderr."""
    def seen() -> bool:
        if path.exists() and needle in path.read_text(encoding="utf-8"):
            return True
        for proc in procs:
            if proc.poll() is not None:
                raise AssertionError(f"{proc.args} exited early ({proc.returncode}): "
                                     f"{proc.stderr.read() if proc.stderr else ''}")
        return False

    wait_until_sync(seen, timeout=timeout, poll=0.05)
    return path.read_text(encoding="utf-8")


def settings_for(tmp_path: Path, **env: str) -> Settings:
    """Settings whose logs, state, gameplan and health port are the test's own."""
    base = {"LOG_FILE": str(tmp_path / "logs" / "bot.log"), "STATE_DIR": str(tmp_path / "state"),
            "GAMEPLAN_PATH": str(tmp_path / "gameplan.json"), "HEALTH_PORT": "0"}
    base.update(env)
    return load_settings(None, base)


def memory_journal(name: str) -> tuple[Journal, list[Event]]:
    """A Journal written to a private, non-propagating logger; its events in a list, as the
    file would have them (the tap sees the decoded line)."""
    logger = logging.getLogger(f"tests.journal.{name}")
    logger.propagate = False
    journal = Journal(logger)
    events: list[Event] = []
    journal.add_tap(events.append)
    return journal, events


def open_tmp_logging(tmp_path: Path) -> AbstractContextManager[Journal]:
    """open_logging as the bot sets it up, writing tmp_path/logs/bot.log and events.jsonl."""
    return open_logging(log_file=tmp_path / "logs" / "bot.log", max_bytes=1 << 20,
                        backup_count=2, console=False)


BURST_S = 0.005
"""How long a test keeps the loop busy with `busy_for` while it checks that nothing waiting for
the idle loop happened: well under idle_handoff's hold limit (20 ms), so the check cannot race
the limit."""


async def busy_for(seconds: float = BURST_S) -> int:
    """Keep the trio loop running without ever sleeping (checkpoints only), as a burst does:
    what waits for the loop to go idle must not happen meanwhile. Returns the passes made."""
    end = time.monotonic() + seconds
    passes = 0
    while time.monotonic() < end:
        await trio.lowlevel.checkpoint()
        passes += 1
    return passes


def events_named(events: list[Event], name: str, *, after: int = 0,
                 **match: Any) -> list[Event]:
    """The journal events called `name` from index `after` on whose fields equal `match`."""
    return [e for e in events[after:] if e["event"] == name
            and all(e.get(k) == v for k, v in match.items())]


def first_event(events: list[Event], name: str, *, after: int = 0,
                where: Callable[[Event], bool] = lambda e: True) -> Event | None:
    """The first `name` event at index >= `after` satisfying `where`, if one was written."""
    return next((e for e in events[after:] if e["event"] == name and where(e)), None)


def read_jsonl(path: Path) -> list[Event]:
    """Every whole line of a JSON-lines file (a missing file has none)."""
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()
            if line.strip()]


# -- the journal events the code can write (the report's and the reference's checks) ----------

EMITTING = ("actors", "runtime", "config", "doctrine", "messages", "tools")
LITERAL_EMIT = re.compile(r"\bemit\(\s*\"([a-z_]+)\"")
LITERAL_RECORD = re.compile(r"\"event\":\s*\"([a-z_]+)\"")
"""A journal line built by hand (the journal's own `journal_dropped` record)."""
ANY_EMIT = re.compile(r"\bemit\(\s*([^\s)])")
DYNAMIC_EMITTERS = {"runtime/supervision/actor.py"}
"""The one forwarding `emit(event, …)` (ActorContext → Journal); its callers pass literals."""


def emitted_event_names() -> dict[str, set[str]]:
    """Every event name a literal `emit("…")` call in the code can write, with its files."""
    found: dict[str, set[str]] = {}
    for top in EMITTING:
        for path in (REPO / top).rglob("*.py"):
            rel = path.relative_to(REPO).as_posix()
            text = path.read_text(encoding="utf-8")
            for name in LITERAL_EMIT.findall(text) + LITERAL_RECORD.findall(text):
                found.setdefault(name, set()).add(rel)
            for first in ANY_EMIT.findall(text):
                assert first == '"' or rel in DYNAMIC_EMITTERS or "def emit" in text, (
                    f"{rel}: emit() with a computed event name: the report cannot know it")
    return found
