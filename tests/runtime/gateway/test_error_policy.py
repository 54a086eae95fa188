"""The error policy table (runtime/gateway/error_policy.py) and the restart-storm ledger."""

from __future__ import annotations

import pytest

from runtime.gateway import error_policy as policy
from runtime.gateway import ib_codes
from runtime.gateway.error_policy import Action, ErrorClass
from runtime.gateway.link_client import RequestFailed
from runtime.gateway.restart_storm import RestartLedger
from tests.harness import REPO


@pytest.mark.parametrize(("code", "cls", "action"), [
    (1100, ErrorClass.CONNECTIVITY, Action.DEGRADE),
    (2110, ErrorClass.CONNECTIVITY, Action.DEGRADE),
    (1101, ErrorClass.CONNECTIVITY, Action.RESUBSCRIBE),
    (1102, ErrorClass.CONNECTIVITY, Action.VERIFY_STREAMS),
    (1300, ErrorClass.CONNECTIVITY, Action.RECONNECT),
    (2103, ErrorClass.DATA_FARM, Action.LOG),
    (2104, ErrorClass.DATA_FARM, Action.VERIFY_STREAMS),
    (2157, ErrorClass.DATA_FARM, Action.LOG),
    (200, ErrorClass.PERMANENT, Action.DISABLE_SYMBOL),
    (203, ErrorClass.PERMANENT, Action.DISABLE_SYMBOL),
    (354, ErrorClass.PERMISSION, Action.DISABLE_SYMBOL),
    (10090, ErrorClass.PERMISSION, Action.DISABLE_SYMBOL),
    (10167, ErrorClass.PERMISSION, Action.DISABLE_SYMBOL),
    (10168, ErrorClass.PERMISSION, Action.DISABLE_SYMBOL),
    (10197, ErrorClass.PERMISSION, Action.ANNOUNCE),
    (165, ErrorClass.INFORMATIONAL, Action.LOG),
    (366, ErrorClass.TRANSIENT, Action.RETRY),
    (420, ErrorClass.PACING, Action.BACK_OFF),
    (201, ErrorClass.ORDER_REJECTED, Action.REJECT_ORDER),
    (202, ErrorClass.ORDER_REJECTED, Action.REJECT_ORDER),
    (10147, ErrorClass.ORDER_REJECTED, Action.REJECT_ORDER),
    (10148, ErrorClass.ORDER_REJECTED, Action.REJECT_ORDER),
    (326, ErrorClass.CLIENT_ID, Action.ROTATE_CLIENT_ID),
    (399, ErrorClass.INFORMATIONAL, Action.LOG),
])
def test_each_code_the_issue_names_has_its_class_and_action(code: int, cls: ErrorClass,
                                                             action: Action) -> None:
    assert policy.classify(code) is cls
    assert policy.action_for(code) is action
    assert policy.policy(code).meaning


def test_162_is_read_by_its_text_pacing_permission_or_no_data() -> None:
    assert policy.classify(162, "Historical data request pacing violation") is ErrorClass.PACING
    assert policy.action_for(162, "No market data permissions for NYSE STK") is \
        Action.DISABLE_SYMBOL
    assert policy.classify(162, "HMDS query returned no data: SPY@ARCA Trades") is \
        ErrorClass.TRANSIENT


def test_an_unknown_code_is_informational_never_a_reconnect() -> None:
    p = policy.policy(31337, "something new")
    assert (p.known, p.error_class, p.action) == (False, ErrorClass.INFORMATIONAL, Action.LOG)
    assert not policy.ends_session(31337) and not policy.disables_symbol(31337)
    assert policy.policy(2199).known                 # the 2100-2199 warnings are known
    assert ib_codes.classify(31337, "") == "warning"


def test_only_link_level_codes_end_the_session() -> None:
    assert {c for c in policy.TABLE if policy.ends_session(c)} == {1300, 502, 504}


def test_the_old_notice_kinds_still_read_the_same() -> None:
    kinds = {1100: "lost", 2110: "lost", 1300: "lost", 1101: "restored_data_lost",
             10182: "restored_data_lost", 1102: "restored", 2103: "farm_down",
             2104: "farm_up", 2107: "warning", 322: "pacing", 420: "pacing",
             10197: "competing_session", 326: "client_id_in_use", 200: "permanent",
             201: "error"}
    assert {c: ib_codes.classify(c, "") for c in kinds} == kinds
    assert ib_codes.classify(162, "pacing violation") == "pacing"


def test_a_request_failure_knows_pacing_from_the_policy() -> None:
    assert RequestFailed("API error: 162: Historical data request pacing violation", 162).pacing
    assert not RequestFailed("API error: 162: HMDS query returned no data", 162).pacing
    assert RequestFailed("too many", 322).pacing
    assert not RequestFailed("no security definition", 200).pacing


def test_a_storm_is_more_than_the_limit_of_one_cause_within_the_window() -> None:
    ledger = RestartLedger(limit=3, window=100.0, pause=500.0)
    for t in (0.0, 10.0, 20.0):
        ledger.record("closed", t)
    assert ledger.storm(20.0) is None
    ledger.record("silent", 25.0)                     # another cause: its own count
    assert ledger.storm(25.0) is None
    ledger.record("closed", 30.0)
    storm = ledger.storm(30.0)
    assert storm is not None and (storm.cause, storm.restarts) == ("closed", 4)
    ledger.paused(storm)
    assert ledger.storm(31.0) is None
    for t in (200.0, 260.0, 320.0, 380.0):            # spread wider than the window
        ledger.record("closed", t)
    assert ledger.storm(380.0) is None


def test_docs_error_policy_lists_every_code_of_the_table() -> None:

    doc = (REPO / "docs" / "ERROR_POLICY.md").read_text()
    missing = [c for c in policy.TABLE if f"| {c} |" not in doc]
    assert not missing, f"docs/ERROR_POLICY.md lacks {missing}"


def test_a_refused_symbol_waits_half_an_hour_in_session_else_the_next_open_alerts_once(
        ) -> None:
    import datetime as dt

    from config.market_calendar import ET
    from runtime.gateway.symbol_gate import DISABLED_RETRY, SymbolGate

    gate = SymbolGate()
    mid = dt.datetime(2024, 2, 27, 11, 0, tzinfo=ET)
    entry, first = gate.disable("IWM", 200, "", mid)
    assert first and entry.retry_at == mid + DISABLED_RETRY
    assert "security definition" in entry.reason
    _, again = gate.disable("IWM", 200, "", mid + DISABLED_RETRY)
    assert not again                                  # one alert per refusal streak
    evening = dt.datetime(2024, 2, 27, 23, 50, tzinfo=ET)
    entry, _ = gate.disable("IWM", 354, "", evening)
    assert entry.retry_at == dt.datetime(2024, 2, 28, 9, 30, tzinfo=ET)   # the next open
    assert [u.symbol for u in gate.snapshot().unavailable] == ["IWM"]
    assert gate.enable("IWM") == (True, True)
    assert gate.enable("IWM") == (False, False)
    assert gate.snapshot().unavailable == ()


def test_outage_words_and_pauses() -> None:
    from runtime.gateway.link_transport import ConnectFailed
    from runtime.gateway.outage import (
        CONNECT_RETRY_MAX,
        connect_retry_delay,
        describe_connect_failure,
    )

    where = "127.0.0.1:4002"
    hang = ConnectFailed("timeout", "x", handshake_done=False)
    login = ConnectFailed("timeout", "x", handshake_done=True)
    assert "handshake hangs" in describe_connect_failure(hang, where, 2)
    assert "login pending" in describe_connect_failure(login, where, 1)
    assert "refuses" in describe_connect_failure(ConnectFailed("refused", "x"), where, 0)
    assert [connect_retry_delay(n, quick=False) for n in (1, 2, 3)] == [0.25, 0.5, 1.0]
    assert connect_retry_delay(40, quick=False) == CONNECT_RETRY_MAX
    assert connect_retry_delay(40, quick=True) == 0.25
