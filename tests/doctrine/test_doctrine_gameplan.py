"""Gameplan validation: every required field, wrong types, date, operator, BOM, quarantine."""

from __future__ import annotations

import copy
import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest

from config.gameplan import (
    Gameplan,
    GameplanError,
    GameplanInvalid,
    GameplanInvalidJson,
    GameplanMissing,
    GameplanStale,
    GameplanUnreadable,
    GameplanWrongOperator,
    describe_plan_changes,
    gameplan_fingerprint,
    load_gameplan,
    parse_gameplan,
    read_gameplan,
)
from doctrine.selection import select_strategy
from tests.harness.data import EXAMPLE_A, EXAMPLE_C, example_plan_dict

TODAY = dt.date(2024, 2, 20)
OPERATOR = "CSATSPRIM"


def write(tmp_path: Path, data: dict[str, Any] | str | bytes, name: str = "plan.json") -> Path:
    path = tmp_path / name
    if isinstance(data, bytes):
        path.write_bytes(data)
    else:
        path.write_text(data if isinstance(data, str) else json.dumps(data), encoding="utf-8")
    return path


def problems_of(data: dict[str, Any]) -> dict[str, str]:
    with pytest.raises(GameplanInvalid) as info:
        parse_gameplan(json.dumps(data))
    return {p.field: p.reason for p in info.value.problems}


def set_path(data: dict[str, Any], dotted: str, value: Any) -> dict[str, Any]:
    out = copy.deepcopy(data)
    *parents, leaf = dotted.split(".")
    node = out
    for p in parents:
        node = node[p]
    if value is ...:
        del node[leaf]
    else:
        node[leaf] = value
    return out


def test_example_plans_load_for_their_day() -> None:
    a = load_gameplan(EXAMPLE_A, today_et=dt.date(2026, 2, 17), operator_id=OPERATOR)
    c = load_gameplan(EXAMPLE_C, today_et=dt.date(2026, 3, 2), operator_id=OPERATOR)
    assert (a.strategy, a.symbols, a.position_size_multiplier) == ("A", ("QQQ",), 0.6)
    assert a.vix_gate is not None and a.vix_gate.check_time == dt.time(9, 45)
    assert a.entry_window == (dt.time(10, 0), dt.time(15, 30))
    assert (c.strategy, c.symbols) == ("C", ())


REQUIRED = ["date", "session_id", "regime", "strategy", "symbols", "operator_id",
            "hard_limits", "data_quality", "hard_limits.max_daily_loss_pct",
            "hard_limits.pdt_trades_remaining", "hard_limits.weekly_drawdown_governor_active",
            "hard_limits.max_intraday_pivots", "data_quality.quarantine_active",
            "data_quality.last_verified"]


@pytest.mark.parametrize("field", REQUIRED)
def test_each_required_field_missing_is_named(field: str) -> None:
    found = problems_of(set_path(example_plan_dict(), field, ...))
    assert found == {field: "required field is missing"}


WRONG = [
    ("date", 20240220, "must be a date"),
    ("date", "2024/02/20", "must be a date"),
    ("session_id", 5, "must be a string"),
    ("session_id", "gauntlet_2024022_0905", "must look like gauntlet_YYYYMMDD_HHMM"),
    ("session_id", "gauntlet_20241340_0905", "no valid date and time"),
    ("regime", "sideways", "must be one of"),
    ("strategy", "D", "must be one of 'A', 'B' or 'C'"),
    ("strategy", 1, "must be one of"),
    ("symbols", "SPY", "must be a list"),
    ("symbols", ["SPY", "QQQ", "IWM"], "at most 2 items"),
    ("operator_id", 7, "must be a string"),
    ("operator_id", "", "must not be empty"),
    ("hard_limits", [], "must be an object"),
    ("hard_limits.max_daily_loss_pct", 1.5, "must be between 0 and 1"),
    ("hard_limits.max_daily_loss_pct", "0.1", "must be a number"),
    ("hard_limits.pdt_trades_remaining", 5, "must be between 0 and 3, got 5"),
    ("hard_limits.pdt_trades_remaining", 2.5, "must be an integer"),
    ("hard_limits.pdt_trades_remaining", True, "must be an integer"),
    ("hard_limits.weekly_drawdown_governor_active", "false", "must be true or false"),
    ("hard_limits.max_intraday_pivots", "2", "must be an integer"),
    ("hard_limits.max_intraday_pivots", -1, "must be between 0 and 20"),
    ("hard_limits.max_single_position", -5, "must be >= 0"),
    ("hard_limits.force_close_at_dte", "3", "must be an integer"),
    ("data_quality", "ok", "must be an object"),
    ("data_quality.quarantine_active", 0, "must be true or false"),
    ("data_quality.last_verified", "yesterday", "date-time"),
    ("data_quality.last_verified", "2024-02-20T09:00:00", "WITH a UTC offset"),
    ("data_quality.discrepancy_count", -1, "must be >= 0"),
    ("position_size_multiplier", 1.5, "must be between 0 and 1"),
    ("position_size_multiplier", "1", "must be a number"),
    ("vix_at_analysis", -1, "must be >= 0"),
    ("vix_source_verified", "yes", "must be true or false"),
    ("bias", "up", "must be one of"),
    ("key_levels", {"spy_pivot": "500"}, "must be a number"),
    ("catalysts", [1], "must be a string or an object"),
    ("catalysts", [{"type": "cpi", "impact": "huge"}], "must be one of"),
    ("earnings_blackout", [1], "must be a string"),
    ("earnings_blackout", ["aapl"], "must be a ticker symbol"),
    ("geo_risk", "extreme", "must be one of"),
    ("entry_window_start", "9:30", "HH:MM"),
    ("entry_window_end", "24:00", "HH:MM"),
    ("entry_window_end", 1530, "must be a string"),
    ("vix_gate", {"check_time": "09:45"}, "required field is missing"),
    ("vix_gate", {"check_time": "09:45", "threshold": 0}, "must be > 0 and <= 100, got 0"),
    ("max_risk_per_trade", -1, "must be >= 0"),
    ("max_risk_ceiling", "18", "must be a number"),
    ("cro_conditions", "none", "must be a list"),
    ("scorecard", [], "must be an object"),
    ("strategy_parameters", {"stop_los_pct": 0.2}, "unknown field"),
    ("strategy_parameters", {"min_dte": 0}, "must be between 1 and 60, got 0"),
    ("strategy_parameters", {"moneyness": "ITM"}, "must be one of"),
    ("strategy_parameters", {"ema_fast": 30}, "must be shorter than ema_slow"),
    ("strategy_parameters", {"rsi_min": 70, "rsi_max": 60}, "must be below rsi_max"),
    ("strategy_parameters", {"stop_loss_pct": 1.0}, "must be > 0 and < 1, got 1.0"),
]


@pytest.mark.parametrize(("field", "value", "reason"), WRONG,
                         ids=[f"{f}={v!r}" for f, v, _ in WRONG])
def test_each_wrong_type_or_range_names_field_and_reason(field: str, value: Any,
                                                         reason: str) -> None:
    found = problems_of(set_path(example_plan_dict(), field, value))
    assert len(found) >= 1
    assert any(name == field or name.startswith(field + ".") or name.startswith(field + "[")
               for name in found), found
    assert any(reason in text for text in found.values()), found


def test_error_message_says_field_reason_and_value() -> None:
    data = set_path(example_plan_dict(), "hard_limits.pdt_trades_remaining", 5)
    with pytest.raises(GameplanInvalid) as info:
        parse_gameplan(json.dumps(data))
    assert str(info.value) == ("gameplan field 'hard_limits.pdt_trades_remaining': must be "
                               "between 0 and 3, got 5")
    assert info.value.field == "hard_limits.pdt_trades_remaining"
    assert info.value.kind == "invalid"


def test_unknown_fields_are_refused_at_every_level() -> None:
    data = example_plan_dict()
    data["vix_previous_close"] = 19.86
    data["data_quality"]["advisory_notes"] = ["x"]
    found = problems_of(data)
    assert found == {"vix_previous_close": "unknown field (not in the gameplan schema)",
                     "data_quality.advisory_notes": "unknown field (not in the gameplan "
                                                    "schema)"}


@pytest.mark.parametrize(("changes", "field", "reason"), [
    ({"strategy": "A", "symbols": []}, "symbols", "needs at least one symbol"),
    ({"symbols": ["SPY", "SPY"]}, "symbols", "twice"),
    ({"entry_window_start": "15:00", "entry_window_end": "10:00"}, "entry_window_end",
     "must be after"),
    ({"entry_window_start": "16:00", "entry_window_end": ...}, "entry_window_end",
     "must be after"),
])
def test_semantic_rules_across_fields(changes: dict[str, Any], field: str,
                                      reason: str) -> None:
    data = example_plan_dict()
    for key, value in changes.items():
        data = set_path(data, key, value)
    found = problems_of(data)
    assert field in found and reason in found[field], found


def test_strategy_c_may_have_no_symbols() -> None:
    data = example_plan_dict()
    data.update(strategy="C", symbols=[], position_size_multiplier=0)
    assert parse_gameplan(json.dumps(data)).symbols == ()


def test_wrong_date_is_stale_and_names_both_days(tmp_path: Path) -> None:
    path = write(tmp_path, example_plan_dict())
    with pytest.raises(GameplanStale) as info:
        load_gameplan(path, today_et=dt.date(2024, 2, 21), operator_id=OPERATOR)
    assert str(info.value) == ("gameplan field 'date': plan is for 2024-02-20, today (ET) is "
                               "2024-02-21")


def test_wrong_or_unconfigured_operator_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, example_plan_dict())
    with pytest.raises(GameplanWrongOperator, match="'CSATSPRIM' does not match"):
        load_gameplan(path, today_et=TODAY, operator_id="SOMEONE")
    with pytest.raises(GameplanWrongOperator, match="OPERATOR_ID is not configured"):
        load_gameplan(path, today_et=TODAY, operator_id="")
    assert load_gameplan(path, today_et=TODAY, operator_id=OPERATOR).date == TODAY


@pytest.mark.parametrize("encoding", ["utf-8-sig", "utf-16"])
def test_byte_order_mark_is_accepted(tmp_path: Path, encoding: str) -> None:
    raw = json.dumps(example_plan_dict(), indent=2).encode(encoding)
    assert raw[:2] in (b"\xef\xbb", b"\xff\xfe", b"\xfe\xff")
    plan = load_gameplan(write(tmp_path, raw), today_et=TODAY, operator_id=OPERATOR)
    assert plan.strategy == "A"


def test_missing_unreadable_and_broken_files_are_distinct_errors(tmp_path: Path) -> None:
    cases: list[tuple[Path, type[GameplanError], str]] = [
        (tmp_path / "absent.json", GameplanMissing, "does not exist"),
        (tmp_path, GameplanUnreadable, "cannot be read"),
        (write(tmp_path, b"\x80\x81{}", "latin.json"), GameplanUnreadable, "not UTF-8"),
        (write(tmp_path, "", "empty.json"), GameplanInvalidJson, "is empty"),
        (write(tmp_path, "{invalid json: broken,,,}", "bad.json"), GameplanInvalidJson,
         "not valid JSON: Expecting property name"),
        (write(tmp_path, '{"strategy": "A", "strategy": "C"}', "dup.json"),
         GameplanInvalidJson, "duplicate key 'strategy'"),
        (write(tmp_path, '{"vix_at_analysis": NaN}', "nan.json"), GameplanInvalidJson,
         "NaN"),
        (write(tmp_path, "[]", "list.json"), GameplanInvalid, "must be a JSON object"),
    ]
    kinds = set()
    for path, kind, text in cases:
        with pytest.raises(kind, match=text) as info:
            read_gameplan(path)
        kinds.add(info.value.kind)
    assert kinds == {"missing", "unreadable", "invalid_json", "invalid"}


def test_quarantine_plan_loads_but_selects_c() -> None:
    data = example_plan_dict()
    data["data_quality"].update(quarantine_active=True, stale_fields=["vix", "spy_price"])
    plan = parse_gameplan(json.dumps(data))
    sel = select_strategy(plan=plan, plan_problem=None, today=TODAY, now_s=0.0, vix=15.0,
                          vix_ts=0.0, governor_active=False, locked_reason=None, gate="passed")
    assert (sel.strategy, sel.rule) == ("C", "quarantine")
    assert sel.reasons == ("data quarantine active (stale: vix, spy_price)",)


def test_audit_line_lists_what_changed() -> None:
    old = parse_gameplan(json.dumps(example_plan_dict()))
    data = example_plan_dict()
    data.update(strategy="C", symbols=[])
    data["hard_limits"]["max_intraday_pivots"] = 1
    new = parse_gameplan(json.dumps(data))
    assert describe_plan_changes(old, new) == (
        "strategy: A -> C; symbols: [QQQ] -> []; hard_limits.max_intraday_pivots: 2 -> 1")
    assert describe_plan_changes(old, old) == "no change"
    assert describe_plan_changes(None, old).startswith(
        "new gameplan gauntlet_20240220_0905: strategy A, symbols [QQQ]")
    assert describe_plan_changes(old, None) == "gameplan withdrawn (was gauntlet_20240220_0905)"


def test_fingerprint_follows_the_file(tmp_path: Path) -> None:
    path = tmp_path / "plan.json"
    assert gameplan_fingerprint(path) is None
    write(tmp_path, example_plan_dict())
    first = gameplan_fingerprint(path)
    data = example_plan_dict()
    data["strategy"] = "C"
    write(tmp_path, data)
    assert first is not None and gameplan_fingerprint(path) not in (None, first)


def test_plan_rewritten_for_another_day_keeps_the_gauntlet_time() -> None:
    plan = parse_gameplan(json.dumps(example_plan_dict()))
    moved = plan.for_day(dt.date(2019, 2, 11))
    assert (moved.date, moved.session_id) == (dt.date(2019, 2, 11), "gauntlet_20190211_0905")
    assert isinstance(moved, Gameplan) and moved.strategy == plan.strategy


def test_catalyst_impact_and_earnings_are_read_fail_closed() -> None:
    data = example_plan_dict()
    data["catalysts"] = ["Presidents' Day gap risk", {"type": "cpi", "impact": "low"}]
    plan = parse_gameplan(json.dumps(data))
    assert plan.high_impact_catalysts == 1  # the plain string counts as high impact
    assert plan.earnings_catalysts == []
    data["catalysts"] = [{"type": "earnings", "impact": "medium", "description": "NVDA"}]
    assert parse_gameplan(json.dumps(data)).earnings_catalysts == ["earnings: NVDA"]
