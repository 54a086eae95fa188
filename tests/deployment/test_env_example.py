""".env.example: every setting of the operator contract (and the runtime's additions), each
explained, with the contract's defaults, and nothing secret or dangerous switched on.

The bot refuses unknown settings in .env, so an extra or misspelt name here would break the
first start of everyone who copies the file; a missing one leaves the operator guessing.
"""

from __future__ import annotations

import re

import pytest

from tests.harness import REPO

ENV_EXAMPLE = REPO / ".env.example"

# CONTRACT.md "Settings": name -> default (None: no default, must stay commented out)
CONTRACT_DEFAULTS: dict[str, str | None] = {
    "IBKR_HOST": "127.0.0.1", "IBKR_PORT": "4002", "IBKR_CLIENT_ID": "1",
    "DRY_RUN": "true", "PAPER_TRADING": "false", "LIVE_TRADING_ACK": None,
    "DISCORD_WEBHOOK_URL": None, "LOG_LEVEL": "INFO", "LOG_FILE": "logs/crucible_bot.log",
    "LOG_MAX_BYTES": "10485760", "LOG_BACKUP_COUNT": "10",
    "GAMEPLAN_PATH": "gameplans/daily_gameplan.json", "STRATEGY_LIBRARY_PATH": None,
    "MAX_DAILY_LOSS_PCT": "0.10", "MAX_POSITION_PCT": "0.20", "PDT_ENABLED": "true",
    "OPERATOR_ID": None, "STATE_DIR": "state", "HEALTH_PORT": "8787", "BOT_CAPITAL_USD": "600",
}
# settings the runtime adds to the contract
RUNTIME_DEFAULTS: dict[str, str | None] = {
    "STARTING_EQUITY_USD": "600", "GATEWAY_RESTART_TIME": "16:30",
    "GATEWAY_RESTART_WINDOW_MIN": "10", "OUTAGE_ALERT_MIN": "10", "DAILY_STOP_TIME": "17:00",
}
ALL_SETTINGS = CONTRACT_DEFAULTS | RUNTIME_DEFAULTS

_ACTIVE = re.compile(r"^([A-Z][A-Z0-9_]*)=(.*)$")
_COMMENTED = re.compile(r"^#\s?([A-Z][A-Z0-9_]*)=(.*)$")


@pytest.fixture(scope="module")
def lines() -> list[str]:
    return ENV_EXAMPLE.read_text(encoding="utf-8").splitlines()


def parse(lines: list[str]) -> tuple[dict[str, str], dict[str, str]]:
    active: dict[str, str] = {}
    commented: dict[str, str] = {}
    for line in lines:
        if m := _ACTIVE.match(line):
            assert m[1] not in active, f"{m[1]} set twice"
            active[m[1]] = m[2]
        elif m := _COMMENTED.match(line):
            commented[m[1]] = m[2]
    return active, commented


def test_every_setting_is_listed_and_nothing_else(lines: list[str]) -> None:
    active, commented = parse(lines)
    listed = set(active) | set(commented)
    missing, unknown = set(ALL_SETTINGS) - listed, listed - set(ALL_SETTINGS)
    assert not missing and not unknown, f"missing: {sorted(missing)}; unknown: {sorted(unknown)}"
    assert not set(active) & set(commented)


def test_defaults_are_the_contract_defaults(lines: list[str]) -> None:
    active, commented = parse(lines)
    for name, default in ALL_SETTINGS.items():
        if default is None:
            assert name in commented, f"{name} has no default: it must stay commented out"
        else:
            assert active.get(name) == default, f"{name}={active.get(name)!r}, contract {default}"


def test_every_setting_is_explained_by_a_comment_just_above(lines: list[str]) -> None:
    for i, line in enumerate(lines):
        m = _ACTIVE.match(line) or _COMMENTED.match(line)
        if not m:
            continue
        above = lines[i - 1] if i else ""
        assert above.startswith("#") and len(above.strip("# ")) > 0 and not _ACTIVE.match(above),\
            f"{m[1]} has no explanation above it"


def test_nothing_secret_or_dangerous_is_switched_on(lines: list[str]) -> None:
    active, commented = parse(lines)
    assert active["DRY_RUN"] == "true"
    assert "LIVE_TRADING_ACK" not in active
    assert commented["LIVE_TRADING_ACK"] == ""  # the phrase is in a comment, not a value
    text = "\n".join(lines)
    assert "I-UNDERSTAND-THIS-TRADES-REAL-MONEY" in text
    # a webhook URL with a real id and token would be a leaked secret
    assert not re.search(r"discord(app)?\.com/api/webhooks/\d+/[\w-]{20,}", text)
    assert active["IBKR_HOST"] == "127.0.0.1"


def test_the_move_to_paper_is_described_where_the_mode_is_set(lines: list[str]) -> None:
    text = "\n".join(lines)
    assert "DRY_RUN=false and PAPER_TRADING=true" in text


def test_the_runtime_knows_exactly_these_settings(lines: list[str]) -> None:
    from config.settings import Settings

    active, commented = parse(lines)
    real = {f.alias for f in Settings.model_fields.values() if f.alias}
    assert set(active) | set(commented) == real


def test_the_runtime_loads_the_example_as_is_and_after_the_move_to_paper() -> None:
    from config.settings import Mode, load_settings

    as_is = load_settings(ENV_EXAMPLE, environ={})
    assert as_is.mode is Mode.DRY_RUN
    assert as_is.gateway_restart_time.strftime("%H:%M") == "16:30"
    paper = load_settings(ENV_EXAMPLE, environ={"DRY_RUN": "false", "PAPER_TRADING": "true",
                                                "OPERATOR_ID": "op-1"})
    assert paper.mode is Mode.PAPER
    assert paper.mode.words == "PAPER TRADING"  # "Bot started in PAPER TRADING mode at ..."
