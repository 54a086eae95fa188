"""Fixtures of the brain's tests: real bars, the calendar, and a valid gameplan to vary."""

from __future__ import annotations

import copy
import datetime as dt
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from config.gameplan import Gameplan, parse_gameplan
from config.market_calendar import MarketCalendar, get_calendar
from doctrine.replay import RawBar
from tests.conftest import shared_data_dir
from tools.replay import read_bars_csv

REPO = Path(__file__).resolve().parents[2]
SPY_63 = "spy_1m_src-leoxu2023_2024-02-20_2024-05-17_rth.csv"
SPY_2019 = "spy_1m_src-masonblier_2019-02-11_2019-02-15_rth.csv"
VIX_2019 = "vix_1m_src-masonblier_2019-02-11_2019-02-15_rth.csv"
SPY_15M = "spy_15m_src-masonblier_2019-01-04_2019-02-15_rth.csv"
EXAMPLE_A = REPO / "gameplans" / "example_strategy_a.json"
EXAMPLE_C = REPO / "gameplans" / "example_strategy_c.json"

_cache: dict[str, list[RawBar]] = {}


def data_file(name: str) -> Path:
    return shared_data_dir() / name               # real, or the seeded stand-in


def bars_of(name: str) -> list[RawBar]:
    """Bars of a shared data file, parsed once per test session."""
    if name not in _cache:
        _cache[name] = read_bars_csv(data_file(name))
    return _cache[name]


@pytest.fixture(scope="session")
def calendar() -> MarketCalendar:
    return get_calendar()


@pytest.fixture
def spy_63() -> list[RawBar]:
    return bars_of(SPY_63)


def example_plan_dict() -> dict[str, Any]:
    """The Strategy A example of gameplans/ as a dict, dated 2024-02-20."""
    data: dict[str, Any] = json.loads(EXAMPLE_A.read_text(encoding="utf-8"))
    data["date"] = "2024-02-20"
    data["session_id"] = "gauntlet_20240220_0905"
    return data


PlanFactory = Callable[..., Gameplan]


@pytest.fixture
def make_plan() -> PlanFactory:
    """Build a valid plan from the example with top-level fields replaced; a value of
    `...` deletes the field. Nested dicts are replaced whole."""
    def build(**changes: Any) -> Gameplan:
        data = copy.deepcopy(example_plan_dict())
        for key, value in changes.items():
            if value is ...:
                data.pop(key, None)
            else:
                data[key] = value
        return parse_gameplan(json.dumps(data, default=_json_default))
    return build


def _json_default(value: object) -> str:
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    raise TypeError(f"not JSON serialisable: {value!r}")
