"""Fixtures of the brain's tests: real bars, the calendar, and a valid gameplan to vary."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest

from config.gameplan import Gameplan, parse_gameplan
from config.market_calendar import MarketCalendar, get_calendar
from doctrine.replay import RawBar
from tests.harness.data import SPY_63, PlanFactory, bars_of, varied_plan_dict


@pytest.fixture(scope="session")
def calendar() -> MarketCalendar:
    return get_calendar()


@pytest.fixture
def spy_63() -> list[RawBar]:
    return bars_of(SPY_63)


@pytest.fixture
def make_plan() -> PlanFactory:
    """Build a valid plan from the example with top-level fields replaced; a value of
    `...` deletes the field. Nested dicts are replaced whole."""
    def build(**changes: Any) -> Gameplan:
        return parse_gameplan(json.dumps(varied_plan_dict(**changes), default=_json_default))
    return build


def _json_default(value: object) -> str:
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    raise TypeError(f"not JSON serialisable: {value!r}")
