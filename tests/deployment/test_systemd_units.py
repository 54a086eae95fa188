"""The systemd service and timer: the required values, and systemd's own verdict on them.

`systemd-analyze verify` loads the units the way systemd would and complains about unknown keys,
bad values and a missing ExecStart binary; it exits 0 even when it only warns, so any output on
stderr counts as a failure here. It needs no running systemd. The units name
/opt/crucible-bot (install.sh substitutes the real directory), so the test verifies a copy with
the paths pointed at this repository and this interpreter.
"""

from __future__ import annotations

import configparser
import datetime as dt
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.harness import REPO

LINUX = REPO / "deployment" / "linux"
SERVICE = LINUX / "crucible-bot.service"
TIMER = LINUX / "crucible-bot.timer"
ON_CALENDAR = "Mon..Fri *-*-* 06:00:00 America/New_York"

SYSTEMD_ANALYZE = shutil.which("systemd-analyze")
needs_systemd_analyze = pytest.mark.skipif(
    SYSTEMD_ANALYZE is None, reason="systemd-analyze is not installed on this machine")


def unit(path: Path) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None, strict=True)
    parser.optionxform = str  # type: ignore[assignment,method-assign]  # keys are case-sensitive
    parser.read_string(path.read_text(encoding="utf-8"))
    return parser


def test_service_restarts_on_failure_and_runs_python_m_runtime() -> None:
    s = unit(SERVICE)
    assert s["Service"]["Restart"] == "on-failure"
    assert s["Service"]["ExecStart"] == "/opt/crucible-bot/.venv/bin/python -m runtime"
    assert s["Service"]["WorkingDirectory"] == "/opt/crucible-bot"
    assert s["Service"]["RestartPreventExitStatus"] == "2"  # bad settings: no restart loop
    assert s["Service"]["KillSignal"] == "SIGTERM"
    # start-limit keys belong in [Unit]; in [Service] systemd ignores them
    assert "StartLimitIntervalSec" in s["Unit"] and "StartLimitBurst" in s["Unit"]
    assert "StartLimitIntervalSec" not in s["Service"]
    assert "User" in s["Service"] and s["Service"]["User"] != "root"


def test_timer_starts_weekdays_at_06_00_new_york_and_catches_up() -> None:
    t = unit(TIMER)
    assert t["Timer"]["OnCalendar"] == ON_CALENDAR
    assert t["Timer"]["Persistent"] == "true"
    assert t["Timer"]["Unit"] == SERVICE.name
    assert t["Install"]["WantedBy"] == "timers.target"


def _verify(*units: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [SYSTEMD_ANALYZE or "systemd-analyze", "verify", "--man=no", *map(str, units)],
        capture_output=True, text=True, timeout=60, check=False)


@needs_systemd_analyze
def test_systemd_analyze_verify_accepts_both_units(tmp_path: Path) -> None:
    # First a trivially good unit: if even that fails, this sandbox cannot run the verifier
    # (no /run, seccomp, ...), which says nothing about our units.
    probe = tmp_path / "probe.service"
    probe.write_text(f"[Service]\nType=oneshot\nExecStart={sys.executable} -V\n",
                     encoding="utf-8")
    try:
        baseline = _verify(probe)
    except (OSError, subprocess.TimeoutExpired) as exc:
        pytest.skip(f"systemd-analyze cannot run here: {exc}")
    if baseline.returncode != 0 or baseline.stderr.strip():
        pytest.skip("systemd-analyze cannot verify even a trivial unit in this sandbox: "
                    + baseline.stderr.strip())
    service = SERVICE.read_text(encoding="utf-8")
    service = service.replace("/opt/crucible-bot/.venv/bin/python", sys.executable)
    service = service.replace("/opt/crucible-bot", str(REPO))
    (tmp_path / SERVICE.name).write_text(service, encoding="utf-8")
    shutil.copy(TIMER, tmp_path / TIMER.name)
    done = _verify(tmp_path / SERVICE.name, tmp_path / TIMER.name)
    assert done.returncode == 0, done.stderr
    assert done.stderr.strip() == "", f"systemd-analyze warned:\n{done.stderr}"


def test_verify_would_catch_a_misspelt_key(tmp_path: Path) -> None:
    """The check above is only worth something if a bad unit makes it fail."""
    if SYSTEMD_ANALYZE is None:
        pytest.skip("systemd-analyze is not installed on this machine")
    bad = tmp_path / "bad.service"
    bad.write_text(f"[Service]\nExecStart={sys.executable} -V\nRestart=on-failur\n",
                   encoding="utf-8")
    done = _verify(bad)
    assert done.stderr.strip() != ""


@needs_systemd_analyze
def test_systemd_agrees_the_timer_fires_at_06_00_new_york_on_weekdays() -> None:
    done = subprocess.run(
        [SYSTEMD_ANALYZE or "systemd-analyze", "calendar", "--iterations=7", ON_CALENDAR],
        capture_output=True, text=True, timeout=60, check=False, env={"TZ": "UTC", "LANG": "C"})
    assert done.returncode == 0, done.stderr
    assert f"Normalized form: {ON_CALENDAR}" in done.stdout
    from zoneinfo import ZoneInfo

    new_york = ZoneInfo("America/New_York")
    elapses = []
    for line in done.stdout.splitlines():
        # "    Next elapse: Mon 2026-11-23 11:00:00 UTC" / "       Iter. #2: Tue 2026-11-24 ..."
        if ("elapse:" in line or "Iter." in line) and line.rstrip().endswith("UTC"):
            stamp = " ".join(line.split()[-3:-1])
            elapses.append(dt.datetime.fromisoformat(stamp).replace(tzinfo=dt.UTC))
    assert len(elapses) == 7
    for when in elapses:
        local = when.astimezone(new_york)
        assert local.time() == dt.time(6, 0) and local.weekday() < 5
    assert len({e.astimezone(new_york).date() for e in elapses}) == 7


# --- several accounts: the template units; the Gateway unit ------------------------------------

TEMPLATE = LINUX / "crucible-bot@.service"
TEMPLATE_TIMER = LINUX / "crucible-bot@.timer"
GATEWAY = LINUX / "ib-gateway.service"


def test_template_runs_one_bot_per_account_in_its_own_directory() -> None:
    single, template = unit(SERVICE), unit(TEMPLATE)
    assert template["Service"]["WorkingDirectory"] == "/opt/crucible-bot/instances/%i"
    assert template["Service"]["ExecStart"] == single["Service"]["ExecStart"]
    # the same restart behaviour as the single-account unit, key for key
    for key in ("Restart", "RestartSec", "RestartPreventExitStatus", "KillSignal", "KillMode",
                "TimeoutStopSec", "User", "Type"):
        assert template["Service"][key] == single["Service"][key], key
    assert "%i" in template["Unit"]["Description"]
    t = unit(TEMPLATE_TIMER)
    assert t["Timer"]["OnCalendar"] == ON_CALENDAR
    assert t["Timer"]["Unit"] == "crucible-bot@%i.service"
    assert t["Timer"]["Persistent"] == "true"


def test_gateway_unit_runs_ibc_inline_and_always_comes_back() -> None:
    g = unit(GATEWAY)
    assert g["Service"]["Restart"] == "always"
    exec_start = g["Service"]["ExecStart"]
    assert exec_start.startswith("/usr/bin/xvfb-run ")        # a display for the Java UI
    assert exec_start.endswith("/opt/ibc/gatewaystart.sh -inline")   # IBC in the foreground
    assert g["Install"]["WantedBy"] == "multi-user.target"    # back after a reboot
    for bot in (unit(SERVICE), unit(TEMPLATE)):
        assert "ib-gateway.service" in bot["Unit"]["After"].split()
        # an ordering, not a dependency: the bot runs (and waits) without a local Gateway
        assert "ib-gateway.service" not in bot["Unit"].get("Requires", "")


@needs_systemd_analyze
def test_systemd_analyze_verify_accepts_the_template_and_gateway_units(tmp_path: Path) -> None:
    probe = tmp_path / "probe.service"
    probe.write_text(f"[Service]\nType=oneshot\nExecStart={sys.executable} -V\n",
                     encoding="utf-8")
    try:
        baseline = _verify(probe)
    except (OSError, subprocess.TimeoutExpired) as exc:
        pytest.skip(f"systemd-analyze cannot run here: {exc}")
    if baseline.returncode != 0 or baseline.stderr.strip():
        pytest.skip("systemd-analyze cannot verify a trivial unit here: " + baseline.stderr)
    instance_dir = tmp_path / "project" / "instances" / "acct1"
    instance_dir.mkdir(parents=True)
    template = TEMPLATE.read_text(encoding="utf-8")
    template = template.replace("/opt/crucible-bot/.venv/bin/python", sys.executable)
    template = template.replace("/opt/crucible-bot", str(tmp_path / "project"))
    (tmp_path / TEMPLATE.name).write_text(template, encoding="utf-8")
    shutil.copy(TEMPLATE_TIMER, tmp_path / TEMPLATE_TIMER.name)
    gateway = GATEWAY.read_text(encoding="utf-8").replace("/usr/bin/xvfb-run", sys.executable)
    gateway = gateway.replace("WorkingDirectory=/opt/ibc", f"WorkingDirectory={tmp_path}")
    (tmp_path / GATEWAY.name).write_text(gateway, encoding="utf-8")
    done = subprocess.run(
        [SYSTEMD_ANALYZE or "systemd-analyze", "verify", "--man=no", "crucible-bot@acct1.service",
         "crucible-bot@acct1.timer", f"./{GATEWAY.name}"],
        cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stderr.strip() == "", f"systemd-analyze warned:\n{done.stderr}"
