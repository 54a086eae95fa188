"""Several accounts: one bot process per account, each with its own directory, .env, STATE_DIR,
logs, client id and health port; a second bot that names another's STATE_DIR or HEALTH_PORT is
refused with one line naming the setting (exit 2), while a second start of the same bot still
exits 0 ("already running").

The side-by-side test is the deployment itself in miniature: two real `python -m runtime`
processes (per-account directories as `install.ps1 -Name` and `crucible-bot@NAME` lay them
out), on --sim-start clocks, against two simulator processes (`python -m tools.fake_gateway`)
with different paper accounts, at once.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack, closing
from dataclasses import dataclass
from pathlib import Path

import pytest

from runtime.app.instance import (
    AlreadyRunning,
    InstanceConflict,
    InstanceOwner,
    acquire_instance_lock,
    check_health_port_free,
    read_owner,
)
from tests.harness import REPO

SIM_START = "2026-03-10T10:00:00-04:00"   # a Tuesday in the session (ET)
SIM_SPEED = "30"
TIMEOUT_S = 120.0
pytestmark = pytest.mark.skipif(sys.platform == "win32",
                                reason="stops the bots with SIGINT (Windows: CTRL_BREAK)")


def _owner(settings_file: str, pid: int = 4242) -> InstanceOwner:
    return InstanceOwner(settings_file=settings_file, pid=pid, ibkr_client_id=7,
                         health_port=8799, started_utc="2026-03-10T14:00:00+00:00")


# --- the rules, in one process ---------------------------------------------------------------

def test_the_same_bot_started_twice_is_already_running(tmp_path: Path) -> None:
    lock = acquire_instance_lock(tmp_path, _owner("/bots/a/.env"))
    try:
        with pytest.raises(AlreadyRunning, match="pid 4242"):
            acquire_instance_lock(tmp_path, _owner("/bots/a/.env", pid=1))
    finally:
        lock.release()


def test_another_bot_on_the_same_state_dir_is_refused_naming_the_holder(tmp_path: Path) -> None:
    lock = acquire_instance_lock(tmp_path, _owner("/bots/a/.env"))
    try:
        with pytest.raises(InstanceConflict) as caught:
            acquire_instance_lock(tmp_path, _owner("/bots/b/.env", pid=1))
        assert caught.value.setting == "STATE_DIR"
        text = str(caught.value)
        assert text.startswith(f"STATE_DIR: {tmp_path} is in use by another bot instance")
        assert "pid 4242" in text and "/bots/a/.env" in text
        assert "every account needs its own STATE_DIR" in text
    finally:
        lock.release()
    # released: the other bot may have it now, and the file names the new holder
    again = acquire_instance_lock(tmp_path, _owner("/bots/b/.env", pid=1))
    again.release()
    owner = read_owner(tmp_path)
    assert owner is not None and owner.settings_file == "/bots/b/.env"


def test_a_taken_health_port_is_refused_and_a_free_one_is_not() -> None:
    with closing(socket.socket()) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        with pytest.raises(InstanceConflict, match=f"HEALTH_PORT: 127.0.0.1:{port} is already "
                                                   "in use"):
            check_health_port_free(port)
    check_health_port_free(port)      # closed: free again
    check_health_port_free(0)         # 0 = pick any: nothing to check


# --- two real bots against two real simulators ------------------------------------------------

def _free_port() -> int:
    with closing(socket.socket()) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("IBKR_", "DRY_", "PAPER_", "LIVE_", "DISCORD_", "LOG_",
                                "GAMEPLAN_", "STATE_", "HEALTH_", "OPERATOR_", "MAX_"))}
    env["PYTHONPATH"] = str(REPO)
    return env


@dataclass
class Simulator:
    proc: subprocess.Popen[str]
    port: int
    account: str


@dataclass
class Bot:
    name: str
    directory: Path
    health_port: int
    proc: subprocess.Popen[str] | None = None

    @property
    def events(self) -> Path:
        return self.directory / "logs" / "events.jsonl"

    @property
    def log(self) -> Path:
        return self.directory / "logs" / "crucible_bot.log"

    def journal(self) -> list[dict[str, object]]:
        if not self.events.exists():
            return []
        return [json.loads(line) for line in self.events.read_text(encoding="utf-8").splitlines()
                if line.strip()]


def _start_simulator(account: str) -> Simulator:
    proc = subprocess.Popen(
        [sys.executable, "-m", "tools.fake_gateway", "--port", "0", "--control-port", "0",
         "--start", SIM_START, "--speed", SIM_SPEED, "--account", account, "--seed", "3"],
        cwd=REPO, env=_clean_env(), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
        text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()      # "fake_gateway listening on 127.0.0.1:PORT control ..."
    assert line.startswith("fake_gateway listening on 127.0.0.1:"), line
    port = int(line.split("127.0.0.1:")[1].split()[0])
    return Simulator(proc, port, account)


def _write_instance(root: Path, name: str, **settings: object) -> Bot:
    """An account's directory as install.ps1 -Name / the systemd template lay it out."""
    directory = root / "instances" / name
    directory.mkdir(parents=True)
    lines = [f"{key}={value}" for key, value in settings.items()]
    (directory / ".env").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return Bot(name, directory, int(str(settings.get("HEALTH_PORT", 0))))


def _run_bot(bot: Bot) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "runtime", "--sim-start", SIM_START, "--sim-speed", SIM_SPEED],
        cwd=bot.directory, env=_clean_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        text=True)


def _start_once(bot: Bot) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "runtime", "--sim-start", SIM_START, "--sim-speed", SIM_SPEED],
        cwd=bot.directory, env=_clean_env(), capture_output=True, text=True, timeout=TIMEOUT_S)


def _wait_for_event(bot: Bot, event: str) -> dict[str, object]:
    assert bot.proc is not None
    deadline = time.monotonic() + TIMEOUT_S
    while time.monotonic() < deadline:
        for record in bot.journal():
            if record.get("event") == event:
                return record
        if bot.proc.poll() is not None:
            raise AssertionError(f"bot {bot.name} exited ({bot.proc.returncode}) before "
                                 f"{event}: {bot.proc.stderr.read() if bot.proc.stderr else ''}")
        time.sleep(0.1)
    raise AssertionError(f"no {event} event from bot {bot.name} within {TIMEOUT_S}s")


def _health(port: int) -> dict[str, object]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=10) as answer:
            body = answer.read()
    except urllib.error.HTTPError as exc:     # 503 while the link is not up yet: still JSON
        body = exc.read()
    result = json.loads(body)
    assert isinstance(result, dict)
    return result


@pytest.fixture
def two_simulators() -> Iterator[tuple[Simulator, Simulator]]:
    with ExitStack() as stack:
        sims = []
        for account in ("DU1111111", "DU2222222"):
            sim = _start_simulator(account)
            stack.callback(_stop, sim.proc)
            sims.append(sim)
        yield sims[0], sims[1]


def _stop(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_two_bots_run_side_by_side_each_with_its_own_gateway_state_and_port(
        tmp_path: Path, two_simulators: tuple[Simulator, Simulator]) -> None:
    sim_a, sim_b = two_simulators
    a = _write_instance(tmp_path, "acct1", IBKR_PORT=sim_a.port, IBKR_CLIENT_ID=1,
                        HEALTH_PORT=_free_port(), OPERATOR_ID="op1")
    b = _write_instance(tmp_path, "acct2", IBKR_PORT=sim_b.port, IBKR_CLIENT_ID=2,
                        HEALTH_PORT=_free_port(), OPERATOR_ID="op2")
    with ExitStack() as stack:
        for bot in (a, b):
            bot.proc = _run_bot(bot)
            stack.callback(_stop, bot.proc)
        ups = {bot.name: _wait_for_event(bot, "link_up") for bot in (a, b)}
        listening = {bot.name: _wait_for_event(bot, "health_listening") for bot in (a, b)}

        # each bot talks to its own Gateway, and only to it
        assert ups["acct1"]["accounts"] == [sim_a.account]
        assert ups["acct2"]["accounts"] == [sim_b.account]
        # each serves its own health port, and it is that bot that answers
        assert listening["acct1"]["port"] == a.health_port
        assert listening["acct2"]["port"] == b.health_port
        for bot in (a, b):
            assert _health(bot.health_port)["mode"] == "DRY_RUN"
        # each has its own state directory, naming its own process
        for bot in (a, b):
            owner = read_owner(bot.directory / "state")
            assert bot.proc is not None
            assert owner is not None and owner.pid == bot.proc.pid
            assert owner.settings_file == str((bot.directory / ".env").resolve())
            assert (bot.directory / "state" / "health_port").read_text().strip() \
                == str(bot.health_port)

        # a third account copied acct1's .env and forgot to change STATE_DIR: refused, exit 2
        c = _write_instance(tmp_path, "acct3", IBKR_PORT=sim_b.port, IBKR_CLIENT_ID=3,
                            HEALTH_PORT=_free_port(), STATE_DIR=a.directory / "state")
        refused = _start_once(c)
        assert refused.returncode == 2, refused.stderr
        assert "Refusing to start: STATE_DIR:" in refused.stderr
        assert a.proc is not None and f"pid {a.proc.pid}" in refused.stderr
        assert "every account needs its own STATE_DIR" in refused.stderr
        assert "Refusing to start: STATE_DIR:" in c.log.read_text(encoding="utf-8")
        # ... or HEALTH_PORT: refused too, and it leaves its own state dir unlocked
        d = _write_instance(tmp_path, "acct4", IBKR_PORT=sim_b.port, IBKR_CLIENT_ID=4,
                            HEALTH_PORT=b.health_port)
        refused = _start_once(d)
        assert refused.returncode == 2, refused.stderr
        assert f"Refusing to start: HEALTH_PORT: 127.0.0.1:{b.health_port} is already in use" \
            in refused.stderr
        acquire_instance_lock(d.directory / "state").release()

        # the same bot started again (the scheduler's repetition): already running, exit 0
        again = _start_once(a)
        assert again.returncode == 0, again.stderr
        assert "Bot already running" in again.stderr

        # neither refusal disturbed the running bots: both stop cleanly
        for bot in (a, b):
            assert bot.proc is not None
            bot.proc.send_signal(signal.SIGINT)
        for bot in (a, b):
            assert bot.proc is not None
            assert bot.proc.wait(timeout=TIMEOUT_S) == 0
            shutdown = [r for r in bot.journal() if r.get("event") == "shutdown"]
            assert shutdown and shutdown[-1]["clean"] is True
    # each journal holds only its own bot's session
    assert all(r.get("pid") in (None, a.proc.pid) for r in a.journal()
               if r.get("event") == "startup")
    assert not (tmp_path / "instances" / "acct3" / "state").exists()
