"""README_DEPLOYMENT.md and the platform notes say what the operator must see and do.

Documentation cannot be executed, but the exact strings an operator compares against (the log
lines, the Discord messages, the settings to change) must be the ones the runtime writes
(docs/REFERENCE.md, docs/LOGGING.md) and must be there at all.
"""

from __future__ import annotations

import pytest

from tests.harness import REPO

README = REPO / "README_DEPLOYMENT.md"
WIN_NOTES = REPO / "deployment" / "windows" / "deployment_notes.md"
LINUX_NOTES = REPO / "deployment" / "linux" / "deployment_notes.md"


@pytest.fixture(scope="module")
def readme() -> str:
    return README.read_text(encoding="utf-8")


def test_move_to_paper_names_the_two_settings_and_what_logs_and_discord_say(readme: str) -> None:
    section = readme[readme.index("## 7. From dry-run to paper"):]
    section = section[:section.index("\n## 8.")]
    assert "DRY_RUN=false" in section and "PAPER_TRADING=true" in section
    assert "Configuration loaded: DRY_RUN=false, PAPER_TRADING=true" in section
    assert "Paper trading mode ACTIVE" in section
    assert "Bot started in PAPER TRADING mode at" in section
    assert "ReadOnlyApi=no" in section


def test_dry_run_start_names_what_logs_and_discord_say(readme: str) -> None:
    assert "Configuration loaded: DRY_RUN=true, PAPER_TRADING=false" in readme
    assert "DRY-RUN mode active" in readme
    assert "Bot started in DRY-RUN mode at" in readme


def test_restart_on_failure_versus_the_bots_own_supervision_is_explained(readme: str) -> None:
    for text in (readme, WIN_NOTES.read_text(encoding="utf-8")):
        assert "RestartOnFailure" in text
        assert "failed to start" in text.lower() or "failed to start" in text
        assert "supervis" in text


def test_the_procedure_covers_both_platforms_and_the_report(readme: str) -> None:
    for needle in ("install.ps1", "install.sh", "python -m runtime --check",
                   "python -m tools.stability_report", "GO", "NO-GO",
                   "I-UNDERSTAND-THIS-TRADES-REAL-MONEY", "http://127.0.0.1:8787/health"):
        assert needle in readme, needle


def test_windows_notes_explain_local_time_and_linux_notes_the_container() -> None:
    win = WIN_NOTES.read_text(encoding="utf-8")
    assert "Eastern Standard Time" in win and "local" in win and "Central" in win
    linux = LINUX_NOTES.read_text(encoding="utf-8")
    assert "TIME_ZONE=America/New_York" in linux and "127.0.0.1:4002:4004" in linux
    assert "Restart=on-failure" in linux


def _section(readme: str, head: str) -> str:
    start = readme.index(head)
    end = readme.find("\n## ", start + len(head))
    return readme[start:] if end < 0 else readme[start:end]


def test_no_document_tells_the_operator_to_run_activate_ps1() -> None:
    quick_start = (REPO / "README.md").read_text(encoding="utf-8")
    windows = quick_start[quick_start.index("Windows (PowerShell)"):]
    windows = windows[:windows.index("```", windows.index("```") + 3)]
    assert "Activate.ps1" not in windows and "py -3.11" not in windows
    assert ".venv\\Scripts\\python.exe -m runtime --demo" in windows
    for doc in (README, WIN_NOTES):
        text = doc.read_text(encoding="utf-8")
        for line in text.splitlines():
            if "Activate.ps1" in line:    # only ever named as what is NOT needed
                assert "not needed" in line or "fails" in line or "blocks" in line, line


def test_the_morning_routine_names_the_tool_the_examples_the_schema_and_the_deadline(
        readme: str) -> None:
    routine = readme[readme.index("### The morning routine"):readme.index("## 5.")]
    for needle in ("python.exe -m tools.gameplan new --strategy", "tools.gameplan check",
                   "gameplans/example_strategy_a.json", "gameplans/example_strategy_c.json",
                   "docs/gameplan.schema.json", "09:15 ET", "locks Strategy C for the day",
                   "OPERATOR_ID", '"$schema"'):
        assert needle in routine, needle
    assert (REPO / "docs" / "gameplan.schema.json").exists()


def test_ibc_install_and_the_weekly_second_factor_login_are_described(readme: str) -> None:
    ibc = _section(readme, "## 2. IB Gateway and IBC")
    for needle in ("StartGateway.bat", "TWS_MAJOR_VRSN=1037", "CONFIG=%USERPROFILE%\\Documents"
                   "\\IBC\\config.ini", "3.19", "/INLINE", "CrucibleGateway",
                   "second-factor", "ColdRestartTime", "install.ps1 -IbcPath",
                   "reboot at any hour", "ib-gateway.service"):
        assert needle in ibc, needle


def test_windows_11_details_are_covered(readme: str) -> None:
    win = _section(readme, "## 10. Windows 11")
    for needle in ("ExecutionPolicy", "-Scope Process", "py -3", "Autologon", "netplwiz",
                   "Win+L", "signing out", "Closing the window", "5 seconds", "Active hours",
                   "sleep"):
        assert needle in win, needle


def test_several_accounts_and_the_refusal_are_described(readme: str) -> None:
    accounts = _section(readme, "## 11. Several accounts")
    for needle in ("install.ps1 -Name acct2", "CrucibleBot-acct2", "crucible-bot@acct2.service",
                   "IBKR_CLIENT_ID", "HEALTH_PORT", "STATE_DIR", "Refusing to start: STATE_DIR:",
                   "Bot already running", "326"):
        assert needle in accounts, needle


def test_the_upgrade_procedure_is_stop_update_reinstall_check_start(readme: str) -> None:
    upgrade = _section(readme, "## 12. Upgrading")
    steps = ["**Stop**", "**Update**", "**Reinstall**", "**Check**", "**Start**"]
    positions = [upgrade.index(step) for step in steps]
    assert positions == sorted(positions)
    assert "Disable-ScheduledTask" in upgrade and "runtime --check" in upgrade
