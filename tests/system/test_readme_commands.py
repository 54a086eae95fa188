"""The README's simulator example and kill-switch commands, run as written.

Only the port numbers are substituted (tests use free loopback ports: 4002 and 8787 may be in
use on a developer's machine); every other word is the README's.
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.harness import REPO, closed_port, wait_for_text

README = (REPO / "README.md").read_text(encoding="utf-8")


def _block(heading: str, lang: str) -> list[str]:
    """The command lines of the `lang` code blocks under `heading` (up to the next heading)."""
    section = README.split(heading, 1)[1].split("\n#", 1)[0]
    blocks = re.findall(rf"```{lang}\n(.*?)```", section, re.S)
    return [line for b in blocks for line in b.splitlines() if line.strip()]


def _argv(line: str, **ports: int) -> list[str]:
    for old, new in ports.items():
        line = line.replace(old.removeprefix("p"), str(new))
    argv = shlex.split(line)
    assert argv[:2] == ["python", "-m"] or argv[0] == "curl", line
    return [sys.executable, *argv[1:]] if argv[0] == "python" else argv


def _kill_switch_events(journal: Path, want: int = 2, timeout: float = 30.0) -> list[bool]:
    """The journal's kill_switch `engaged` values, once `want` of them are written (the
    journal is written by a logging handler: under load a line can trail the HTTP answer)."""
    deadline = time.monotonic() + timeout
    while True:
        lines = journal.read_text(encoding="utf-8").splitlines()
        found = [bool(e["engaged"]) for e in map(json.loads, filter(str.strip, lines))
                 if e["event"] == "kill_switch"]
        if len(found) >= want or time.monotonic() > deadline:
            return found
        time.sleep(0.1)


def _stop(proc: subprocess.Popen[str]) -> int:
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            return proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
    return proc.wait()


@pytest.mark.slow
@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals stop the processes")
def test_the_simulator_example_and_the_kill_switch_commands_work_as_written(
        tmp_path: Path, bot_env: dict[str, str]) -> None:
    sim_line, bot_line = _block("### Try it against the simulator", "bash")
    assert "--start 2026-11-20T09:25" in sim_line and "--sim-start 2026-11-20T09:25" in bot_line
    gw_port = closed_port()
    env = {**bot_env, "IBKR_PORT": str(gw_port)}     # the README relies on the default 4002
    sim = subprocess.Popen(_argv(sim_line, p4002=gw_port), cwd=tmp_path, env=env,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    bot: subprocess.Popen[str] | None = None
    log = tmp_path / "logs" / "crucible_bot.log"
    try:
        time.sleep(1.0)
        bot = subprocess.Popen(_argv(bot_line), cwd=tmp_path, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        text = wait_for_text(log, "Gateway session 1 up", [sim, bot], timeout=90.0)
        assert "not followed" not in text                 # no refused (or silent) day jump
        heads = [x for x in text.splitlines() if x[:4].isdigit()]
        assert heads and all(x.startswith("2026-11-20T") for x in heads), heads[-3:]

        health_port = int((tmp_path / "state" / "health_port").read_text().strip())
        curl_lines = _block("### The kill switch", "bash")
        assert len(curl_lines) == 2
        answers = []
        for line in curl_lines:
            done = subprocess.run([*_argv(line, p8787=health_port), "-s", "-w", " %{http_code}"],
                                  capture_output=True, text=True, timeout=30)
            assert done.returncode == 0, done.stderr
            answers.append(done.stdout)
        assert [a.rsplit(" ", 1)[1] for a in answers] == ["202", "202"], answers   # accepted
        assert ['"engaged": true' in answers[0], '"engaged": false' in answers[1]] == [True, True]
        assert _kill_switch_events(tmp_path / "logs" / "events.jsonl") == [True, False]
    finally:
        codes = (_stop(bot) if bot is not None else None, _stop(sim))
    assert codes[0] == 0


def test_the_powershell_kill_switch_commands_match_the_curl_ones() -> None:
    ps = _block("### The kill switch", "powershell")
    curl = _block("### The kill switch", "bash")
    assert len(ps) == len(curl) == 2
    for p, c in zip(ps, curl, strict=True):
        assert p.startswith("Invoke-RestMethod -Method Post ")
        assert "-ContentType 'application/json'" in p     # else 415: PowerShell sends a form
        body = re.search(r"-d '(.*?)'", c)
        assert body is not None and f"-Body '{body[1]}'" in p
        assert "http://127.0.0.1:8787/kill-switch" in p and "http://127.0.0.1:8787/kill-switch" in c
    if shutil.which("pwsh") is None:
        return                                        # checked statically on this machine
