"""`python -m runtime`: settings errors, --check, single instance, clean shutdown."""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from config.settings import LIVE_TRADING_ACK_PHRASE, Settings, SettingsError, load_settings
from runtime.app.check import run_check
from runtime.app.cli import main
from tests.harness import wait_for_text

BAD_SETTINGS = [
    ({"IBKR_PORT": "abc"}, "IBKR_PORT"),
    ({"IBKR_PORT": "70000"}, "IBKR_PORT"),
    ({"IBKR_CLIENT_ID": "-1"}, "IBKR_CLIENT_ID"),
    ({"DRY_RUN": "maybe"}, "DRY_RUN"),
    ({"PAPER_TRADING": "yes please"}, "PAPER_TRADING"),
    ({"MAX_DAILY_LOSS_PCT": "1.5"}, "MAX_DAILY_LOSS_PCT"),
    ({"MAX_DAILY_LOSS_PCT": "0"}, "MAX_DAILY_LOSS_PCT"),
    ({"MAX_POSITION_PCT": "-0.2"}, "MAX_POSITION_PCT"),
    ({"LOG_LEVEL": "LOUD"}, "LOG_LEVEL"),
    ({"LOG_MAX_BYTES": "10"}, "LOG_MAX_BYTES"),
    ({"LOG_BACKUP_COUNT": "0"}, "LOG_BACKUP_COUNT"),
    ({"HEALTH_PORT": "99999"}, "HEALTH_PORT"),
    ({"PDT_ENABLED": "sometimes"}, "PDT_ENABLED"),
    ({"IBKR_HOST": "local host"}, "IBKR_HOST"),
    ({"DISCORD_WEBHOOK_URL": "not-a-url"}, "DISCORD_WEBHOOK_URL"),
    ({"GATEWAY_RESTART_TIME": "4:30 PM"}, "GATEWAY_RESTART_TIME"),
    ({"DRY_RUN": "false", "PAPER_TRADING": "false"}, "LIVE_TRADING_ACK"),
    ({"DRY_RUN": "false", "PAPER_TRADING": "false", "LIVE_TRADING_ACK": "yes",
      "OPERATOR_ID": "op"}, "LIVE_TRADING_ACK"),
    ({"DRY_RUN": "false", "PAPER_TRADING": "true"}, "OPERATOR_ID"),
]


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, bot_env: dict[str, str]) -> Path:
    for key in list(os.environ):
        monkeypatch.delenv(key, raising=False)
    for key, value in bot_env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.mark.parametrize(("env", "setting"), BAD_SETTINGS)
def test_each_bad_setting_exits_2_with_one_line_naming_it(
        clean_env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        env: dict[str, str], setting: str) -> None:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    assert main([]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert err[0].startswith(f"error: settings: {setting}: ")
    assert "yes" not in err[0] or setting != "LIVE_TRADING_ACK"   # a secret is never echoed


def test_typo_in_env_file_is_refused_with_a_hint(
        clean_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (clean_env / ".env").write_text("IBKR_PROT=4001\n", encoding="utf-8")
    assert main([]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "error: settings: IBKR_PROT: unknown setting in .env (did you mean IBKR_PORT?)"


def test_env_file_values_apply_and_the_environment_wins(
        clean_env: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    (clean_env / ".env").write_text(
        "\ufeffLOG_BACKUP_COUNT=7\nLOG_LEVEL=debug\nUNRELATED_TOOL_SETTING=1\n",
        encoding="utf-8")
    monkeypatch.setenv("LOG_LEVEL", "WARNING")
    main(["--check"])
    out = capsys.readouterr().out
    assert "LOG_BACKUP_COUNT=7" in out
    assert "LOG_LEVEL=WARNING" in out


def test_explicit_env_file_that_does_not_exist_is_an_error(
        clean_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--env-file", "missing.env"]) == 2
    assert "missing.env: settings file not found" in capsys.readouterr().err


def test_check_prints_settings_with_secrets_redacted(
        clean_env: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    url = "https://discord.com/api/webhooks/123/very-secret-token"
    monkeypatch.setenv("DISCORD_WEBHOOK_URL", url)
    monkeypatch.setenv("DRY_RUN", "false")
    monkeypatch.setenv("PAPER_TRADING", "false")
    monkeypatch.setenv("LIVE_TRADING_ACK", LIVE_TRADING_ACK_PHRASE)
    monkeypatch.setenv("OPERATOR_ID", "op-1")
    code = main(["--check"])
    captured = capsys.readouterr()
    assert "Mode: LIVE TRADING" in captured.out
    assert "DISCORD_WEBHOOK_URL=***(set)" in captured.out
    assert "very-secret-token" not in captured.out + captured.err
    assert LIVE_TRADING_ACK_PHRASE not in captured.out + captured.err
    assert code in (3, 4)   # no gameplan file: 3 on a session day, 4 on a day without one


SESSION_DAY = dt.date(2026, 11, 20)      # a Friday session
HOLIDAY = dt.date(2026, 11, 26)          # Thanksgiving: no session


def _plan_file(tmp_path: Path, day: dt.date, **changes: object) -> Path:
    from runtime.app.demo import demo_gameplan

    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps({**demo_gameplan(day), **changes}), encoding="utf-8")
    return plan


def _settings(tmp_path: Path, plan: Path, **env: str) -> Settings:
    return load_settings(None, {"GAMEPLAN_PATH": str(plan), "OPERATOR_ID": "demo",
                                "STATE_DIR": str(tmp_path / "state"), **env})


def test_check_exit_0_when_the_session_day_has_a_valid_plan(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    plan = _plan_file(tmp_path, SESSION_DAY)
    assert run_check(_settings(tmp_path, plan, STARTING_EQUITY_USD="5000",
                                       BOT_CAPITAL_USD="5000"), SESSION_DAY) == 0
    out = capsys.readouterr().out
    assert "valid for 2026-11-20" in out and "warning" not in out


def test_check_exit_3_when_the_plan_is_missing_or_invalid_on_a_session_day(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = _settings(tmp_path, tmp_path / "nope.json")
    assert run_check(missing, SESSION_DAY) == 3
    assert "does not exist" in capsys.readouterr().err
    stale = _plan_file(tmp_path, SESSION_DAY - dt.timedelta(days=1))
    assert run_check(_settings(tmp_path, stale), SESSION_DAY) == 3
    bad = _plan_file(tmp_path, SESSION_DAY, strategy="Z")
    assert run_check(_settings(tmp_path, bad), SESSION_DAY) == 3
    assert "strategy" in capsys.readouterr().err


def test_check_exit_2_when_the_plan_file_is_unreadable(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    plan = tmp_path / "plan.json"
    plan.write_text("{not json", encoding="utf-8")
    assert run_check(_settings(tmp_path, plan), SESSION_DAY) == 2
    assert "not valid JSON" in capsys.readouterr().err


def test_check_exit_4_on_a_day_without_a_session_even_without_a_plan(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_check(_settings(tmp_path, tmp_path / "nope.json"), HOLIDAY) == 4
    captured = capsys.readouterr()
    assert "Nothing to do today: no market session on 2026-11-26" in captured.out
    assert captured.err == ""


def test_check_warns_once_with_numbers_when_no_contract_fits_the_budget(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    plan = _plan_file(tmp_path, SESSION_DAY)
    assert run_check(_settings(tmp_path, plan), SESSION_DAY) == 0     # $600: nothing fits
    warnings = [x for x in capsys.readouterr().out.splitlines() if x.startswith("warning")]
    assert len(warnings) == 1
    assert "no QQQ/SPY" in warnings[0] and "risk budget $18.00" in warnings[0]


@pytest.mark.parametrize("text", ["dry_run=false\n", "Ibkr_Port=4001\n"])
def test_a_setting_in_the_wrong_case_is_refused_not_ignored(
        clean_env: Path, capsys: pytest.CaptureFixture[str], text: str) -> None:
    (clean_env / ".env").write_text(text, encoding="utf-8")
    assert main(["--check"]) == 2
    err = capsys.readouterr().err.strip()
    key = text.split("=")[0]
    assert err == (f"error: settings: {key}: setting names are upper case in .env: "
                   f"write {key.upper()}")


def test_a_setting_in_the_wrong_case_in_the_environment_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="dry_run: setting names are upper case"):
        load_settings(None, {"dry_run": "false"})


def test_a_duplicate_key_is_refused_naming_both_lines(
        clean_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (clean_env / ".env").write_text("DRY_RUN=true\n# paper\nLOG_LEVEL=INFO\nDRY_RUN=false\n",
                                    encoding="utf-8")
    assert main(["--check"]) == 2
    assert capsys.readouterr().err.strip() == (
        "error: settings: DRY_RUN: set twice in .env, on lines 1 and 4: keep one")


def test_check_exits_0_with_valid_settings_and_todays_gameplan(
        clean_env: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    from config.market_calendar import ET, get_calendar
    from runtime.app.demo import demo_gameplan

    today = dt.datetime.now(ET).date()
    plan = clean_env / "plan.json"
    plan.write_text(json.dumps(demo_gameplan(today)), encoding="utf-8")
    monkeypatch.setenv("GAMEPLAN_PATH", str(plan))
    monkeypatch.setenv("OPERATOR_ID", "demo")
    session_today = get_calendar().session(today) is not None
    assert main(["--check"]) == (0 if session_today else 4)
    out = capsys.readouterr().out
    assert "Mode: DRY-RUN" in out
    assert ("valid for" if session_today else "Nothing to do today") in out


def test_sim_start_is_refused_in_live_mode(
        clean_env: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("DRY_RUN", "false")
    monkeypatch.setenv("PAPER_TRADING", "false")
    monkeypatch.setenv("LIVE_TRADING_ACK", LIVE_TRADING_ACK_PHRASE)
    monkeypatch.setenv("OPERATOR_ID", "op-1")
    assert main(["--sim-start", "2026-11-20T09:30", "--sim-speed", "10"]) == 2
    assert "refused in LIVE mode" in capsys.readouterr().err


# -- the real process -----------------------------------------------------------------------

def _spawn(args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "runtime", *args], cwd=cwd, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_bad_setting_in_a_real_process_gives_one_line_and_no_traceback(
        tmp_path: Path, bot_env: dict[str, str]) -> None:
    env = {**bot_env, "MAX_POSITION_PCT": "2"}
    proc = subprocess.run([sys.executable, "-m", "runtime"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "error: settings: MAX_POSITION_PCT: Input should be less than or equal to 1 (got '2')"]


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals; Windows uses CTRL_BREAK")
def test_runtime_logs_mode_and_tree_then_stops_in_order_on_sigint_and_second_start_exits_0(
        tmp_path: Path, bot_env: dict[str, str]) -> None:
    log = tmp_path / "logs" / "crucible_bot.log"
    first = _spawn([], tmp_path, bot_env)
    try:
        text = wait_for_text(log, "Actor tree (start):", [first])
        assert "Configuration loaded: DRY_RUN=true, PAPER_TRADING=false" in text
        assert "DRY-RUN mode active" in text
        for name in ("notifier", "resource_probe", "mode_guard", "order_router", "indicators",
                     "strategy_selector", "gateway_link", "bar_feed"):
            assert f"  {name} [running]" in text

        second = subprocess.run([sys.executable, "-m", "runtime"], cwd=tmp_path, env=bot_env,
                                capture_output=True, text=True, timeout=120)
        assert second.returncode == 0
        assert "already running" in second.stderr
        assert "already running" in log.read_text(encoding="utf-8")

        first.send_signal(signal.SIGINT)
        assert first.wait(timeout=60) == 0
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
    text = log.read_text(encoding="utf-8")
    assert "SIGINT received: shutting down in order" in text
    events = (tmp_path / "logs" / "events.jsonl").read_text(encoding="utf-8")
    assert '"event":"startup"' in events
    assert '"event":"shutdown"' in events and '"clean":true' in events
