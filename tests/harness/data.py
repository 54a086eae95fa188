"""Market data and the example plan, as every test folder reads them.

Market data: the real files of ../shared/data when they are there; otherwise (a plain clone,
or CRUCIBLE_SHARED_DATA pointing at a directory without them) seeded stand-ins with the same
names, ranges and quirks, written once per test session by `tools.synthetic`. A test that
needs market data therefore always runs: nothing is skipped for missing data.
"""

from __future__ import annotations

import atexit
import copy
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from config.gameplan import Gameplan
from doctrine.replay import RawBar
from tests.harness import REPO
from tools.replay import read_bars_csv

SHARED_DATA_ENV = "CRUCIBLE_SHARED_DATA"
SHARED_DATA = Path(os.environ.get(SHARED_DATA_ENV) or (REPO / ".." / "shared" / "data")
                   ).resolve()

SPY_1M = SPY_63 = "spy_1m_src-leoxu2023_2024-02-20_2024-05-17_rth.csv"
SPY_2019 = "spy_1m_src-masonblier_2019-02-11_2019-02-15_rth.csv"
VIX_2019 = "vix_1m_src-masonblier_2019-02-11_2019-02-15_rth.csv"
SPY_15M = "spy_15m_src-masonblier_2019-01-04_2019-02-15_rth.csv"
EXAMPLE_A = REPO / "gameplans" / "example_strategy_a.json"
EXAMPLE_C = REPO / "gameplans" / "example_strategy_c.json"

_data_dir: Path | None = None
_cache: dict[str, list[RawBar]] = {}


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


def data_file(name: str) -> Path:
    return shared_data_dir() / name               # real, or the seeded stand-in


def bars_of(name: str) -> list[RawBar]:
    """Bars of a shared data file, parsed once per test session."""
    if name not in _cache:
        _cache[name] = read_bars_csv(data_file(name))
    return _cache[name]


def example_plan_dict() -> dict[str, Any]:
    """The Strategy A example of gameplans/ as a dict, dated 2024-02-20."""
    data: dict[str, Any] = json.loads(EXAMPLE_A.read_text(encoding="utf-8"))
    data["date"] = "2024-02-20"
    data["session_id"] = "gauntlet_20240220_0905"
    return data


def varied_plan_dict(**changes: Any) -> dict[str, Any]:
    """The example with top-level fields replaced; a value of `...` deletes the field."""
    data = copy.deepcopy(example_plan_dict())
    for key, value in changes.items():
        if value is ...:
            data.pop(key, None)
        else:
            data[key] = value
    return data


PlanFactory = Callable[..., Gameplan]
