"""`python -m runtime`: settings errors, --check, single instance, clean shutdown."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from config.settings import LIVE_TRADING_ACK_PHRASE
from runtime.app.cli import main
from tests.harness import wait_until_sync

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
    assert code == 2        # no gameplan file for today
    assert "gameplan" in captured.err


def test_check_exits_0_with_valid_settings_and_todays_gameplan(
        clean_env: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    import datetime as dt
    import json

    from config.market_calendar import ET
    from runtime.app.demo import demo_gameplan

    plan = clean_env / "plan.json"
    plan.write_text(json.dumps(demo_gameplan(dt.datetime.now(ET).date())), encoding="utf-8")
    monkeypatch.setenv("GAMEPLAN_PATH", str(plan))
    monkeypatch.setenv("OPERATOR_ID", "demo")
    assert main(["--check"]) == 0
    out = capsys.readouterr().out
    assert "Mode: DRY-RUN" in out and "valid for" in out


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


def _wait_for_line(path: Path, needle: str, proc: subprocess.Popen[str],
                   timeout: float = 60.0) -> str:
    def seen() -> bool:
        if path.exists() and needle in path.read_text(encoding="utf-8"):
            return True
        if proc.poll() is not None:
            raise AssertionError(f"process exited early ({proc.returncode}): "
                                 f"{proc.stderr.read() if proc.stderr else ''}")
        return False

    wait_until_sync(seen, timeout=timeout, poll=0.05)
    return path.read_text(encoding="utf-8")


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
        text = _wait_for_line(log, "Actor tree (start):", first)
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
