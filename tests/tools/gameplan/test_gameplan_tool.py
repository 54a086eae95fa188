"""`python -m tools.gameplan`: what `new` writes the bot accepts (its `--check` and the
StrategySelector actor), `check` says what the bot says, and docs/gameplan.schema.json is the
model's current schema."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import trio
import trio.testing

from config.gameplan import load_gameplan
from config.market_calendar import ET, get_calendar
from messages.market import VixReading
from tests.harness import REPO
from tests.harness.brain import OPERATOR, brain_settings, et, open_brain
from tools.gameplan import SCHEMA_PATH, main, schema_text

EXAMPLES = sorted((REPO / "gameplans").glob("example_*.json"))
DAY = dt.date(2024, 3, 5)          # a Tuesday session


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("IBKR_", "DRY_", "PAPER_", "LIVE_", "DISCORD_", "LOG_",
                                "GAMEPLAN_", "STATE_", "HEALTH_", "OPERATOR_", "MAX_"))}
    env["PYTHONPATH"] = str(REPO)
    return env


def _python(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", *args], cwd=cwd, env=_env(),
                          capture_output=True, text=True, timeout=120, check=False)


@pytest.fixture
def bot_dir(tmp_path: Path) -> Path:
    """A bot's working directory with a .env naming the operator."""
    (tmp_path / ".env").write_text(
        f"OPERATOR_ID={OPERATOR}\nSTATE_DIR=state\nLOG_FILE=logs/crucible_bot.log\n"
        "HEALTH_PORT=0\n", encoding="utf-8")
    return tmp_path


# --- new: the bot accepts what it writes ------------------------------------------------------

def test_new_writes_todays_plan_that_runtime_check_accepts(bot_dir: Path) -> None:
    wrote = _python(bot_dir, "tools.gameplan", "new", "--strategy", "A", "--symbols", "QQQ",
                    "--vix", "17.9", "--vix-gate", "09:45", "18.5", "--max-pivots", "2",
                    "--catalyst", "retail_sales=medium")
    assert wrote.returncode == 0, wrote.stderr
    today = dt.datetime.now(ET).date()
    path = bot_dir / "gameplans" / "daily_gameplan.json"     # GAMEPLAN_PATH's default
    assert f"Wrote gameplans{os.sep}daily_gameplan.json: new gameplan gauntlet_{today:%Y%m%d}_" \
        in wrote.stdout
    data = json.loads(path.read_text(encoding="utf-8"))
    assert data["operator_id"] == OPERATOR and data["date"] == today.isoformat()
    assert data["strategy"] == "A" and data["symbols"] == ["QQQ"]
    assert data["vix_gate"] == {"check_time": "09:45", "threshold": 18.5}
    assert data["regime"] == "normal" and data["vix_at_analysis"] == 17.9
    assert data["catalysts"] == [{"type": "retail_sales", "impact": "medium"}]

    check = _python(bot_dir, "runtime", "--check")
    session_today = get_calendar().session(today) is not None
    # 0 ready; on a weekend or holiday 4, "nothing to do today", after validating the plan
    assert check.returncode == (0 if session_today else 4), check.stderr
    assert f"Gameplan gameplans{os.sep}daily_gameplan.json: valid for {today.isoformat()}" \
        in check.stdout


def test_new_refuses_an_invalid_plan_with_the_bots_message_and_writes_nothing(
        bot_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(bot_dir)
    code = main(["new", "--strategy", "B", "--symbols", "SPY", "--pdt-trades-remaining", "5"])
    assert code == 2
    err = capsys.readouterr().err
    assert err.splitlines()[0] == ("error: gameplan: gameplan field "
                                   "'hard_limits.pdt_trades_remaining': must be between 0 and "
                                   "3, got 5")
    assert not (bot_dir / "gameplans").exists()
    assert main(["new", "--strategy", "A"]) == 2        # A without a symbol: the bot's rule
    assert "error: gameplan: gameplan field 'symbols': strategy A needs at least one symbol" \
        in capsys.readouterr().err


def test_new_needs_an_operator_id_and_keeps_a_plan_already_written_for_the_day(
        tmp_path: Path, bot_dir: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    empty = tmp_path / "empty.env"
    empty.write_text("", encoding="utf-8")
    monkeypatch.chdir(bot_dir)
    monkeypatch.delenv("OPERATOR_ID", raising=False)
    assert main(["new", "--strategy", "C", "--env-file", str(empty)]) == 2
    assert "error: OPERATOR_ID is not configured" in capsys.readouterr().err

    assert main(["new", "--strategy", "C"]) == 0
    path = bot_dir / "gameplans" / "daily_gameplan.json"
    capsys.readouterr()
    assert main(["check"]) == 0                         # PATH defaults to GAMEPLAN_PATH
    assert "valid for" in capsys.readouterr().out
    first = path.read_bytes()
    assert json.loads(first)["position_size_multiplier"] == 0.0      # C: nothing to size
    assert main(["new", "--strategy", "A", "--symbols", "SPY"]) == 2
    assert "already holds a plan for" in capsys.readouterr().err
    assert path.read_bytes() == first
    assert main(["new", "--strategy", "A", "--symbols", "SPY", "--force"]) == 0
    assert json.loads(path.read_text(encoding="utf-8"))["strategy"] == "A"
    # yesterday's plan is what is normally there in the morning: replaced without --force
    yesterday = dt.datetime.now(ET).date() - dt.timedelta(days=1)
    assert main(["new", "--strategy", "C", "--date", yesterday.isoformat(), "--force"]) == 0
    assert main(["new", "--strategy", "A", "--symbols", "QQQ"]) == 0


async def test_the_strategy_selector_accepts_the_plan_and_trades_by_it(
        tmp_path: Path, autojump_clock: trio.testing.MockClock) -> None:
    settings = brain_settings(tmp_path)
    (tmp_path / "empty.env").write_text("", encoding="utf-8")
    code = main(["new", "--strategy", "A", "--symbols", "SPY", "--vix", "15",
                 "--date", DAY.isoformat(), "--operator-id", OPERATOR,
                 "--out", str(settings.gameplan_path), "--env-file", str(tmp_path / "empty.env")])
    assert code == 0
    async with open_brain(tmp_path, et(DAY, 8, 0), settings=settings) as brain:
        await brain.settle()
        accepted = brain.of("gameplan")
        assert [e["status"] for e in accepted] == ["accepted"]
        assert accepted[0]["plan"]["symbols"] == ["SPY"]
        plan = brain.plan()
        assert plan is not None and plan.strategy == "A"
        brain.wiring.vix.set(VixReading(value=15.0, ts=brain.clock.now_utc()))
        await brain.until(lambda: brain.decision.strategy == "A")
        assert brain.alerts("critical") == []


# --- check: the bot's messages ----------------------------------------------------------------

@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.name)
def test_the_documented_examples_pass_check_on_their_day(
        example: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    data = json.loads(example.read_text(encoding="utf-8"))
    env = tmp_path / "example.env"
    env.write_text(f"OPERATOR_ID={data['operator_id']}\n", encoding="utf-8")
    monkeypatch.delenv("OPERATOR_ID", raising=False)
    assert main(["check", str(example), "--date", data["date"], "--env-file", str(env)]) == 0
    assert f"valid for {data['date']}" in capsys.readouterr().out
    load_gameplan(example, today_et=dt.date.fromisoformat(data["date"]),
                  operator_id=data["operator_id"])


def test_check_prints_the_same_line_as_runtime_check(bot_dir: Path) -> None:
    path = bot_dir / "gameplans" / "daily_gameplan.json"
    path.parent.mkdir()
    example = json.loads((REPO / "gameplans" / "example_strategy_a.json").read_text())
    example.update(operator_id=OPERATOR, date=dt.datetime.now(ET).date().isoformat())
    example["hard_limits"]["max_intraday_pivots"] = "2"         # a string: refused
    path.write_text(json.dumps(example), encoding="utf-8")
    tool = _python(bot_dir, "tools.gameplan", "check", str(path.relative_to(bot_dir)))
    bot = _python(bot_dir, "runtime", "--check")
    assert tool.returncode == 2
    # the bot's --check: 3 an invalid plan on a session day, 4 on a day without one
    session_today = get_calendar().session(dt.datetime.now(ET).date()) is not None
    assert bot.returncode == (3 if session_today else 4)
    line = ("error: gameplan: gameplan field 'hard_limits.max_intraday_pivots': must be an "
            'integer, got "2"')
    assert tool.stderr.splitlines()[0] == line
    assert line in bot.stderr.splitlines()


def test_check_refuses_another_operators_plan_and_a_stale_one(
        bot_dir: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    example = REPO / "gameplans" / "example_strategy_c.json"
    monkeypatch.chdir(bot_dir)
    assert main(["check", str(example), "--date", "2026-03-02"]) == 2
    assert ("gameplan field 'operator_id': 'CSATSPRIM' does not match the configured "
            f"OPERATOR_ID '{OPERATOR}'") in capsys.readouterr().err
    env = bot_dir / "c.env"
    env.write_text("OPERATOR_ID=CSATSPRIM\n", encoding="utf-8")
    assert main(["check", str(example), "--env-file", str(env), "--date", "2026-03-03"]) == 2
    assert "plan is for 2026-03-02, today (ET) is 2026-03-03" in capsys.readouterr().err


# --- the JSON Schema for editors ----------------------------------------------------------------

def test_the_schema_in_docs_is_generated_from_the_current_model() -> None:
    assert SCHEMA_PATH == REPO / "docs" / "gameplan.schema.json"
    assert SCHEMA_PATH.read_text(encoding="utf-8") == schema_text(), (
        "docs/gameplan.schema.json is out of date: run python -m tools.gameplan schema")


def _properties(schema: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    if "$ref" in node:
        node = schema["$defs"][node["$ref"].rsplit("/", 1)[1]]
    for option in node.get("anyOf", ()):
        if "$ref" in option or "properties" in option:
            return _properties(schema, option)
    return node


def _assert_fits(schema: dict[str, Any], node: dict[str, Any], value: Any, where: str) -> None:
    """The parts of JSON Schema this schema uses that an editor flags first: unknown and
    missing fields, HH:MM patterns (no jsonschema package here: a walk is enough)."""
    node = _properties(schema, node)
    if "properties" in node and isinstance(value, dict):
        assert node.get("additionalProperties") is False, where
        unknown = set(value) - set(node["properties"])
        assert not unknown, f"{where}: {unknown}"
        missing = set(node.get("required", ())) - set(value)
        assert not missing, f"{where}: {missing}"
        for key, item in value.items():
            _assert_fits(schema, node["properties"][key], item, f"{where}.{key}")
    if "pattern" in node and isinstance(value, str):
        assert re.search(node["pattern"], value), f"{where}: {value!r}"


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.name)
def test_the_examples_fit_the_schema(example: Path) -> None:
    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    _assert_fits(schema, schema, json.loads(example.read_text(encoding="utf-8")), "plan")


def test_times_are_hh_mm_in_the_schema_as_in_the_bot() -> None:
    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    pattern = _properties(schema, schema["$defs"]["VixGate"]["properties"]["check_time"])
    assert re.search(pattern["pattern"], "09:45") and not re.search(pattern["pattern"], "9:45")
    assert "format" not in json.dumps(schema["$defs"]["VixGate"])   # pydantic's HH:MM:SS
