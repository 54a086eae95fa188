"""Shared fixtures: the real market data in ../shared/data, isolated working directories."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = (REPO / ".." / "shared" / "data").resolve()


def closed_port() -> int:
    """A loopback port nothing listens on (bound once to pick it, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


@pytest.fixture
def shared_data() -> Path:
    """../shared/data (real SPY/VIX bars). Never copied into the repo."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared market data not found at {SHARED_DATA}")
    return SHARED_DATA


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
