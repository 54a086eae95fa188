"""Fixtures of the StrategySelector's tests (the brain rig itself is tests/harness/brain.py)."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def plan_path(tmp_path: Path) -> Path:
    """Where tests.harness.brain's settings point the selector's daily gameplan."""
    return tmp_path / "plans" / "daily_gameplan.json"
