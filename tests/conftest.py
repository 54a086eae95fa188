"""Fixtures every folder may use: market data (real when present, generated otherwise) and an
isolated environment for a bot subprocess. The helpers behind them are in tests/harness/."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.harness import REPO, closed_port
from tests.harness.data import shared_data_dir, uses_real_data


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The slow tests first (each keeps its place among them): on two processes
    (pytest-xdist, handing out two tests at a time: `--maxschedchunk 2` in pyproject.toml) a
    long test handed out last would run alone at the end of the suite."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)


def pytest_report_header() -> str:
    where = shared_data_dir()
    return ("market data: real files in " if uses_real_data() else
            "market data: generated stand-ins (tools.synthetic) in ") + str(where)


@pytest.fixture
def shared_data() -> Path:
    """../shared/data (real SPY/VIX bars, never copied into the repo) or its stand-ins."""
    return shared_data_dir()


@pytest.fixture
def plan_path(tmp_path: Path) -> Path:
    """Where tests.harness.brain's settings point the selector's daily gameplan."""
    return tmp_path / "plans" / "daily_gameplan.json"


@pytest.fixture
def bot_env(tmp_path: Path) -> Iterator[dict[str, str]]:
    """An environment for a bot subprocess: its own logs/state dirs, no stray settings."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("IBKR_", "DRY_", "PAPER_", "LIVE_", "DISCORD_", "LOG_",
                                "GAMEPLAN_", "STATE_", "HEALTH_", "OPERATOR_", "MAX_"))}
    env.update({
        "IBKR_PORT": str(closed_port()),     # never a real Gateway's default port
        "LOG_FILE": str(tmp_path / "logs" / "crucible_bot.log"),
        "STATE_DIR": str(tmp_path / "state"),
        "HEALTH_PORT": "0",
        "PYTHONPATH": str(REPO),
    })
    yield env
