"""The Gateway session as the rest of the bot sees it. GatewayLink -> everyone (latest value)."""

from __future__ import annotations

import enum
from typing import Literal

from messages.base import Message, UtcDatetime


class LinkStatus(enum.StrEnum):
    DOWN = "down"              # no session; retrying
    CONNECTING = "connecting"  # TCP open, API handshake/sync under way
    UP = "up"                  # session ready: requests may be sent
    DEGRADED = "degraded"      # socket up but IB's side lost (1100) or a farm is down


class LinkState(Message):
    """The newest link state. A new `session_id` means a new Gateway session: reconcile."""

    status: LinkStatus
    session_id: int = 0
    accounts: tuple[str, ...] = ()
    server_version: int | None = None
    client_id: int | None = None
    readonly: bool = True
    since: UtcDatetime | None = None
    reason: str | None = None
    expected_outage: bool = False   # inside the scheduled Gateway restart window
    login_pending: bool = False     # port open but the API login never completes (2FA, creds)

    @property
    def up(self) -> bool:
        return self.status in (LinkStatus.UP, LinkStatus.DEGRADED)


NoticeKind = Literal["lost", "restored_data_lost", "restored", "farm_down", "farm_up",
                     "pacing", "competing_session", "client_id_in_use", "warning", "error"]


class GatewayNotice(Message):
    """A status/error code from the Gateway, classified (tws_protocol.md section 3.1)."""

    session_id: int
    code: int
    text: str
    kind: NoticeKind
    request_id: int = -1
    ts: UtcDatetime
