"""Shared fixtures: market data (real when present, generated otherwise), isolated dirs.

Market data: the real files of ../shared/data when they are there; otherwise (a plain clone,
or CRUCIBLE_SHARED_DATA pointing at a directory without them) seeded stand-ins with the same
names, ranges and quirks, written once per test session by `tools.synthetic`. A test that
needs market data therefore always runs: nothing is skipped for missing data.
"""

from __future__ import annotations

import atexit
import os
import shutil
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA_ENV = "CRUCIBLE_SHARED_DATA"
SHARED_DATA = Path(os.environ.get(SHARED_DATA_ENV) or (REPO / ".." / "shared" / "data")
                   ).resolve()
_data_dir: Path | None = None


def _has_every_file(directory: Path) -> bool:
    from tools.synthetic import SHARED_FILES, VIX_DAILY

    return all((directory / name).is_file()
               for name in [*(f.name for f in SHARED_FILES), VIX_DAILY])


def shared_data_dir() -> Path:
    """The directory every market-data test reads: real data, or the generated stand-ins."""
    global _data_dir
    if _data_dir is None:
        if SHARED_DATA.is_dir() and _has_every_file(SHARED_DATA):
            _data_dir = SHARED_DATA
        else:
            from tools.synthetic import write_shared_data

            tmp = Path(tempfile.mkdtemp(prefix="crucible-synthetic-data-"))
            atexit.register(shutil.rmtree, tmp, True)
            _data_dir = write_shared_data(tmp)
    return _data_dir


def uses_real_data() -> bool:
    return shared_data_dir() == SHARED_DATA


def pytest_report_header() -> str:
    where = shared_data_dir()
    return ("market data: real files in " if uses_real_data() else
            "market data: generated stand-ins (tools.synthetic) in ") + str(where)


def closed_port() -> int:
    """A loopback port nothing listens on (bound once to pick it, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


@pytest.fixture
def shared_data() -> Path:
    """../shared/data (real SPY/VIX bars, never copied into the repo) or its stand-ins."""
    return shared_data_dir()


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
