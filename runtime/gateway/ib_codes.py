"""IB status/error codes as the `GatewayNotice.kind` the link's readers branch on.

A thin view of `runtime.gateway.error_policy`, which is the one table of what each code means
and what the bot does about it; these names stay for the code that already reads them.
"""

from __future__ import annotations

from messages.link import NoticeKind
from runtime.gateway import error_policy as policy
from runtime.gateway.error_policy import Action, ErrorClass

LOST = policy.CONNECTIVITY_LOST                # IB <-> Gateway connectivity lost, socket up
RESTORED_DATA_LOST = frozenset({1101})         # re-request every market data subscription
RESTORED = policy.DATA_MAINTAINED              # data maintained; verify streams anyway
FARM_DOWN = policy.FARM_DOWN                   # market data / HMDS / sec-def farm broken
FARM_UP = policy.FARM_UP                       # ... OK again (2103 -> 2104 may leave feeds dead)
FARM_INACTIVE = policy.FARM_INACTIVE           # inactive but available on demand: benign
PACING = policy.PACING                         # IB's rate limits (and 162 "pacing violation")
HMDS_MESSAGE = policy.HMDS_MESSAGE             # pacing violation, or "no data", or cancelled
COMPETING_SESSION = policy.COMPETING_SESSION   # same user logged in elsewhere: no market data
CLIENT_ID_IN_USE = policy.CLIENT_ID_IN_USE
PORT_RESET = 1300                              # "reconnect on the new port"
STREAM_DIED = frozenset({10182})               # keepUpToDate stream failed: re-request
WARNING_CODES = frozenset(range(2100, 2200)) | {10167, 10090}


def classify(code: int, text: str) -> NoticeKind:
    p = policy.policy(code, text)
    cls, action = p.error_class, p.action
    if code in PORT_RESET_CODES or (cls is ErrorClass.CONNECTIVITY and action is Action.DEGRADE):
        return "lost"
    if action is Action.RESUBSCRIBE:
        return "restored_data_lost"
    if code in RESTORED:
        return "restored"
    if code in FARM_DOWN:
        return "farm_down"
    if code in FARM_UP:
        return "farm_up"
    if cls is ErrorClass.PACING:
        return "pacing"
    if code in COMPETING_SESSION:
        return "competing_session"
    if cls is ErrorClass.CLIENT_ID:
        return "client_id_in_use"
    if cls in (ErrorClass.PERMANENT, ErrorClass.PERMISSION):
        return "permanent"
    if cls in (ErrorClass.DATA_FARM, ErrorClass.INFORMATIONAL) or code in WARNING_CODES:
        return "warning"
    return "error"


PORT_RESET_CODES = policy.PORT_RESET
