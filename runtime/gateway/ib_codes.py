"""IB status/error codes, grouped by what the bot must do about them (tws_protocol.md 3.1).

Grouping codes into sets rather than matching texts is the nautilus_trader adapter's approach;
texts change between Gateway versions, codes do not.
"""

from __future__ import annotations

from messages.link import NoticeKind

LOST = frozenset({1100, 2110})                 # IB <-> Gateway connectivity lost, socket up
RESTORED_DATA_LOST = frozenset({1101})          # re-request every market data subscription
RESTORED = frozenset({1102})                   # data maintained; verify streams anyway
FARM_DOWN = frozenset({2103, 2105, 2157})      # market data / HMDS / sec-def farm broken
FARM_UP = frozenset({2104, 2106, 2158})        # ... OK again (2103 -> 2104 may leave feeds dead)
FARM_INACTIVE = frozenset({2107, 2108})        # inactive but available on demand: benign
PACING = frozenset({322, 420})                 # simultaneous-request and real-time pacing limits
HMDS_MESSAGE = 162                             # pacing violation, or "no data", or cancelled
COMPETING_SESSION = frozenset({10197})         # same user logged in elsewhere: no market data
CLIENT_ID_IN_USE = 326
PORT_RESET = 1300                              # "reconnect on the new port"
STREAM_DIED = frozenset({10182})               # keepUpToDate stream failed: re-request
WARNING_CODES = frozenset(range(2100, 2200)) | {10167, 10090}


def classify(code: int, text: str) -> NoticeKind:
    if code in LOST:
        return "lost"
    if code in RESTORED_DATA_LOST:
        return "restored_data_lost"
    if code in RESTORED:
        return "restored"
    if code in FARM_DOWN:
        return "farm_down"
    if code in FARM_UP:
        return "farm_up"
    if code in PACING or (code == HMDS_MESSAGE and "pacing" in text.lower()):
        return "pacing"
    if code in COMPETING_SESSION:
        return "competing_session"
    if code == CLIENT_ID_IN_USE:
        return "client_id_in_use"
    if code in STREAM_DIED or code == PORT_RESET:
        return "lost" if code == PORT_RESET else "restored_data_lost"
    if code in WARNING_CODES or code in FARM_INACTIVE:
        return "warning"
    return "error"
