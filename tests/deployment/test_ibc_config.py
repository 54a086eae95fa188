"""IBC's config.ini template: only real IBC keys, the values the deployment depends on, no secrets.

The list of real keys comes from the project's operations reference (gathered from IbcAlpha/IBC's
resources/config.ini and user guide). IBC ignores a key it does not know, so a misspelt or
retired key (ForceTwsApiPort, IbControllerPort, ...) would silently leave a setting at its
default: this test is the only thing that notices.
"""

from __future__ import annotations

import re

import pytest

from tests.harness import REPO

IBC_INI = REPO / "deployment" / "windows" / "ibc_config.ini"

REAL_IBC_KEYS = frozenset({
    "IbLoginId", "IbPassword", "TradingMode", "IbDir", "ExistingSessionDetectedAction",
    "ReadOnlyApi", "ReadOnlyLogin", "AcceptIncomingConnectionAction", "OverrideTwsApiPort",
    "TrustedTwsApiClientIPs", "SecondFactorAuthenticationTimeout",
    "ReloginAfterSecondFactorAuthenticationTimeout",
    "ExitAfterSecondFactorAuthenticationTimeout", "DismissPasswordExpiryWarning",
    "DismissNSEComplianceNotice", "AcceptNonBrokerageAccountWarning", "CommandServerPort",
    "ControlFrom", "BindAddress", "CommandPrompt", "LoginDialogDisplayTimeout",
    "StoreSettingsOnServer", "MinimizeMainWindow", "AutoLogoffTime", "ClosedownAt",
    "AutoRestartTime", "ColdRestartTime",
})
RETIRED_OR_FAKE_KEYS = frozenset({
    "ForceTwsApiPort", "IbControllerPort", "IbControlFrom", "IbBindAddress", "PasswordEncrypted",
    "TWS_MAJOR_VRSN", "TRADING_MODE",
})


@pytest.fixture(scope="module")
def settings() -> dict[str, str]:
    values: dict[str, str] = {}
    for number, line in enumerate(IBC_INI.read_text(encoding="ascii").splitlines(), 1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        assert not stripped.startswith("["), f"line {number}: IBC's config.ini has no sections"
        assert "=" in stripped, f"line {number} is neither a comment nor key=value: {line!r}"
        key, value = stripped.split("=", 1)
        assert key == key.strip(), f"line {number}: space around the key {key!r}"
        assert key not in values, f"line {number}: {key} set twice"
        values[key] = value
    return values


def test_every_key_is_a_real_ibc_key(settings: dict[str, str]) -> None:
    unknown = set(settings) - REAL_IBC_KEYS
    assert not unknown, f"not IBC keys (IBC would ignore them): {sorted(unknown)}"
    assert not set(settings) & RETIRED_OR_FAKE_KEYS


def test_credentials_are_never_in_the_repository(settings: dict[str, str]) -> None:
    assert settings.get("IbLoginId", "") == ""
    assert settings.get("IbPassword", "") == ""


def test_the_daily_restart_is_auto_restart_at_16_30_eastern(settings: dict[str, str]) -> None:
    # hh:mm AM/PM with one space, or IBC rejects it; 04:30 PM = 16:30 on an Eastern machine
    assert re.fullmatch(r"(0[1-9]|1[0-2]):[0-5]\d (AM|PM)", settings["AutoRestartTime"])
    assert settings["AutoRestartTime"] == "04:30 PM"
    # ClosedownAt / AutoLogoffTime shut the Gateway down without a restart (and clear it)
    assert "ClosedownAt" not in settings and "AutoLogoffTime" not in settings
    assert re.fullmatch(r"([01]\d|2[0-3]):[0-5]\d", settings["ColdRestartTime"])


def test_paper_gateway_read_only_for_dry_run(settings: dict[str, str]) -> None:
    assert settings["TradingMode"] == "paper"
    assert settings["ReadOnlyApi"] == "yes"  # the bot ships in DRY_RUN; paper sets it to no
    assert settings["AcceptNonBrokerageAccountWarning"] == "yes"  # else paper refuses the API
    assert settings["OverrideTwsApiPort"] == "4002"


def test_sessions_and_second_factor(settings: dict[str, str]) -> None:
    assert settings["ExistingSessionDetectedAction"] in (
        "manual", "primary", "primaryoverride", "secondary")
    assert settings["ExistingSessionDetectedAction"] == "primary"
    assert settings["ReloginAfterSecondFactorAuthenticationTimeout"] == "yes"
    assert int(settings["SecondFactorAuthenticationTimeout"]) == 180


def test_command_server_listens_on_loopback_only(settings: dict[str, str]) -> None:
    if settings.get("CommandServerPort", "0") not in ("", "0"):
        assert settings["BindAddress"] == "127.0.0.1"
        assert settings["ControlFrom"] == "127.0.0.1"


def test_the_bot_expects_the_same_restart_instant() -> None:
    env = (REPO / ".env.example").read_text(encoding="utf-8")
    assert re.search(r"^GATEWAY_RESTART_TIME=16:30$", env, re.M)
