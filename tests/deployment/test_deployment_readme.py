"""README_DEPLOYMENT.md and the platform notes say what the operator must see and do.

Documentation cannot be executed, but the exact strings an operator compares against (the log
lines, the Discord messages, the settings to change) must be the ones the runtime writes
(CONTRACT.md, LOG_FORMATS.md) and must be there at all.
"""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
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
