"""The install scripts, checked statically (there is no PowerShell here), plus what can run.

install.ps1 must: read the task XML, compute 06:00 America/New_York in local time with .NET's
TimeZoneInfo, register the task with Register-ScheduledTask -Xml (or schtasks /Create /XML),
create the venv with py -3 / python -m venv (any Python >= 3.11), pip install -e ., register
the IBC + Gateway task with -IbcPath, give each account (-Name) its own directory, task, client
id and health port, test the Gateway port with Test-NetConnection, and never handle a
credential. When pwsh exists, its parser checks the
syntax; bash -n checks install.sh.
"""

from __future__ import annotations

import datetime as dt
import re
import shutil
import subprocess
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from tests.harness import REPO

PS1 = REPO / "deployment" / "windows" / "install.ps1"
SH = REPO / "deployment" / "linux" / "install.sh"


@pytest.fixture(scope="module")
def ps1() -> str:
    return PS1.read_text(encoding="ascii")  # Windows PowerShell 5.1 reads BOM-less files as ANSI


def test_install_ps1_registers_the_task_from_the_xml(ps1: str) -> None:
    assert "task_scheduler.xml" in ps1
    assert re.search(r"Register-ScheduledTask\s+-TaskName\s+\$TaskName\s+-Xml\s", ps1) or \
        re.search(r"schtasks(\.exe)?\s+/Create\b.*?/XML", ps1, re.I | re.S)
    assert "-Force" in ps1  # idempotent: a second run replaces the task
    for node in ("StartBoundary", "UserId", "Command", "WorkingDirectory", "DaysOfWeek"):
        assert f"t:{node}" in ps1, f"install.ps1 does not set {node}"
    assert "'-m runtime'" in ps1


def test_install_ps1_computes_06_00_eastern_in_local_time(ps1: str) -> None:
    assert "[System.TimeZoneInfo]::FindSystemTimeZoneById($EasternId)" in ps1
    assert "$EasternId = 'Eastern Standard Time'" in ps1
    assert "ConvertTimeToUtc" in ps1 and "ConvertTimeFromUtc" in ps1
    assert "[TimeSpan]::new(6, 0, 0)" in ps1
    assert "DayShift" in ps1  # Mon-Fri follow the local date when 06:00 ET is another day
    assert "[TimeSpan]::new(16, 30, 0)" in ps1 and "'hh:mm tt'" in ps1  # IBC AutoRestartTime


def test_install_ps1_creates_the_venv_and_installs_the_project(ps1: str) -> None:
    assert re.search(r"&\s*py\s+-3\s+-m\s+venv", ps1)   # any 3.x; >= 3.11 is checked next
    assert "-3.11" not in ps1
    assert "sys.version_info >= (3, 11)" in ps1
    assert "Activate.ps1" not in ps1.replace("blocks Activate.ps1", "")
    assert re.search(r"&\s*python\s+-m\s+venv", ps1)
    assert re.search(r"-m\s+pip\s+install\s+-e\s+\$ProjectDir", ps1)
    assert "Test-Path -LiteralPath $VenvPython" in ps1  # an existing venv is kept
    assert "runtime --check" in ps1
    assert "Set-StrictMode -Version Latest" in ps1 and "$ErrorActionPreference = 'Stop'" in ps1


def test_install_ps1_registers_ibc_and_the_gateway_at_logon(ps1: str) -> None:
    assert "gateway_task.xml" in ps1
    assert re.search(r"Register-ScheduledTask\s+-TaskName\s+\$GatewayTaskName\s+-Xml\s", ps1)
    assert "{ 'CrucibleGateway' } else { \"CrucibleGateway-$Name\" }" in ps1
    assert "'StartGateway.bat'" in ps1 and "'/INLINE'" in ps1
    for node in ("t:LogonTrigger/t:UserId", "t:Exec/t:Command", "t:Exec/t:WorkingDirectory"):
        assert node in ps1, node
    assert "TWS_MAJOR_VRSN" in ps1   # reports which Gateway version IBC will start


def test_install_ps1_gives_each_account_its_own_directory_task_and_ports(ps1: str) -> None:
    assert "[string]$Name = ''" in ps1
    assert "\"CrucibleBot-$Name\"" in ps1
    assert "Join-Path (Join-Path $ProjectDir 'instances') $Name" in ps1
    assert "Get-NextFree 'IBKR_CLIENT_ID' 1 10" in ps1   # a bot's 326 rotation stays its own
    assert "Get-NextFree 'HEALTH_PORT' 8787 1" in ps1
    assert "t:Exec/t:WorkingDirectory' $BotDir" in ps1   # the instance's .env, state, logs
    assert "Push-Location $BotDir" in ps1                 # --check reads that .env


def test_install_ps1_checks_the_gateway_port(ps1: str) -> None:
    assert re.search(r"Test-NetConnection\s+-ComputerName\s+\$GatewayHost\s+-Port\s+\$GatewayPort",
                     ps1)


def test_install_ps1_never_handles_credentials(ps1: str) -> None:
    lowered = ps1.lower()
    for forbidden in ("-password", "convertto-securestring", "get-credential", "ibpassword=",
                      "ibloginid=", "discord.com/api/webhooks"):
        assert forbidden not in lowered, forbidden
    assert "t:LogonType" not in ps1  # the XML's InteractiveToken stands: no password needed


def test_install_ps1_has_no_variable_followed_by_a_colon(ps1: str) -> None:
    """"$Dir: text" is a parse error in PowerShell (a drive-qualified name); write "${Dir}:"."""
    assert not re.findall(r"\$[A-Za-z_]\w*:(?![A-Za-z_])", ps1)


def test_install_ps1_parses_in_powershell_when_available() -> None:
    pwsh = shutil.which("pwsh") or shutil.which("powershell")
    if pwsh is None:
        pytest.skip("no PowerShell on this machine: install.ps1 is only checked statically")
    command = ("$errors = $null; [System.Management.Automation.Language.Parser]::ParseFile("
               f"'{PS1}', [ref]$null, [ref]$errors) | Out-Null; "
               "if ($errors.Count) { $errors | ForEach-Object { $_.ToString() }; exit 1 }")
    done = subprocess.run([pwsh, "-NoProfile", "-Command", command], capture_output=True,
                          text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


def test_install_sh_is_valid_bash_and_verifies_the_units() -> None:
    text = SH.read_text(encoding="utf-8")
    assert text.startswith("#!/usr/bin/env bash\n") and "set -euo pipefail" in text
    assert "systemd-analyze verify" in text and "systemctl enable" in text
    assert re.search(r"-m venv", text) and re.search(r"pip install -e", text)
    assert "chmod 600" in text  # .env holds the webhook secret
    bash = shutil.which("bash")
    if bash is None:
        pytest.skip("no bash to check the syntax")
    done = subprocess.run([bash, "-n", str(SH)], capture_output=True, text=True, timeout=60,
                          check=False)
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize(("zone", "local_start"), [
    ("America/New_York", dt.time(6)), ("America/Chicago", dt.time(5)),
    ("America/Denver", dt.time(4)), ("America/Los_Angeles", dt.time(3)),
])
def test_us_zones_see_06_00_eastern_at_one_local_time_all_year(zone: str,
                                                                local_start: dt.time) -> None:
    """Why the notes say a US machine needs no re-install at DST: the zones switch together."""
    eastern, there = ZoneInfo("America/New_York"), ZoneInfo(zone)
    day = dt.date(2026, 1, 1)
    while day.year == 2026:
        start = dt.datetime.combine(day, dt.time(6), tzinfo=eastern).astimezone(there)
        assert start.time() == local_start, day
        day += dt.timedelta(days=1)


def test_outside_the_us_the_local_start_drifts_by_an_hour_for_a_few_weeks() -> None:
    eastern, london = ZoneInfo("America/New_York"), ZoneInfo("Europe/London")
    local_hours = set()
    drifted = 0
    day = dt.date(2026, 1, 1)
    while day.year == 2026:
        hour = dt.datetime.combine(day, dt.time(6), tzinfo=eastern).astimezone(london).hour
        local_hours.add(hour)
        drifted += hour == 10
        day += dt.timedelta(days=1)
    assert local_hours == {10, 11} and 14 <= drifted <= 35  # ~3 weeks in March, 1 in Oct/Nov


def _powershell_code_only(source: str) -> str:
    """The script without comments and string contents (a small PowerShell lexer: <# #> blocks,
    # to end of line, '…' with '' as the escape, "…" with ` as the escape)."""
    out: list[str] = []
    i, n = 0, len(source)
    while i < n:
        c = source[i]
        if source.startswith("<#", i):
            i = source.index("#>", i) + 2
        elif c == "#":
            i = source.find("\n", i) if "\n" in source[i:] else n
        elif c == "'":
            i += 1
            while True:
                j = source.index("'", i)
                if source.startswith("''", j):
                    i = j + 2
                    continue
                i = j + 1
                break
            out.append("''")
        elif c == '"':
            i += 1
            while source[i] != '"':
                i += 2 if source[i] == "`" else 1
            i += 1
            out.append('""')
        else:
            out.append(c)
            i += 1
    return "".join(out)


def test_install_ps1_brackets_and_quotes_balance(ps1: str) -> None:
    """Without pwsh: an unclosed string, block or call shows up as an unbalanced bracket."""
    code = _powershell_code_only(ps1)
    stack: list[str] = []
    pairs = {")": "(", "}": "{", "]": "["}
    for line_no, line in enumerate(code.splitlines(), 1):
        for ch in line:
            if ch in "({[":
                stack.append(ch)
            elif ch in pairs:
                assert stack and stack[-1] == pairs[ch], f"unbalanced {ch!r} near line {line_no}"
                stack.pop()
    assert not stack, f"unclosed {stack}"


def test_the_bracket_check_catches_a_missing_brace() -> None:
    broken = "if ($a) {\n    Write-Host 'x'\n"
    with pytest.raises(AssertionError, match="unclosed"):
        test_install_ps1_brackets_and_quotes_balance(broken)
    assert _powershell_code_only("Write-Host 'it''s {' # }\n") == "Write-Host '' \n"


def test_install_sh_installs_one_bot_per_account_and_the_gateway_unit() -> None:
    text = SH.read_text(encoding="utf-8")
    assert 'INSTANCE="${INSTANCE:-}"' in text and 'IBC_PATH="${IBC_PATH:-}"' in text
    assert 'BOT_DIR="$PROJECT_DIR${INSTANCE:+/instances/$INSTANCE}"' in text
    assert 'UNIT="crucible-bot${INSTANCE:+@$INSTANCE}"' in text
    assert "install_unit crucible-bot@.service" in text
    assert "install_unit crucible-bot@.timer" in text
    assert "install_unit ib-gateway.service" in text
    assert 'PYTHON="${PYTHON:-python3}"' in text       # any 3.11+, checked after the venv


def _next_free_in_bash(project: Path, key: str, default: int, step: int) -> int:
    """Runs install.sh's own next_free function (cut out of the script) on `project`."""
    text = SH.read_text(encoding="utf-8")
    start = text.index("next_free() {")
    end = text.index("\n}\n", start) + 3
    script = (f'set -euo pipefail\nPROJECT_DIR="{project}"\n{text[start:end]}\n'
              f"next_free {key} {default} {step}\n")
    done = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=60,
                          check=False)
    assert done.returncode == 0, done.stderr
    return int(done.stdout.strip())


@pytest.mark.skipif(shutil.which("bash") is None, reason="no bash")
def test_a_new_account_gets_the_next_free_client_id_and_health_port(tmp_path: Path) -> None:
    assert _next_free_in_bash(tmp_path, "HEALTH_PORT", 8787, 1) == 8787     # nothing yet
    (tmp_path / ".env").write_text("IBKR_CLIENT_ID=1\nHEALTH_PORT=8787\n", encoding="utf-8")
    assert _next_free_in_bash(tmp_path, "IBKR_CLIENT_ID", 1, 10) == 11
    other = tmp_path / "instances" / "acct2"
    other.mkdir(parents=True)
    (other / ".env").write_text("IBKR_CLIENT_ID=11\n", encoding="utf-8")  # port left default
    assert _next_free_in_bash(tmp_path, "IBKR_CLIENT_ID", 1, 10) == 21
    assert _next_free_in_bash(tmp_path, "HEALTH_PORT", 8787, 1) == 8788
