"""The Gateway session as the rest of the bot sees it. GatewayLink -> everyone (latest value)."""

from __future__ import annotations

import datetime as dt
import enum
from typing import Literal

from messages.base import Message, Request, UtcDatetime
from messages.market import Quote


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
    exhausted: bool = False         # the link subtree exceeded its restart intensity and is
                                    # retrying slowly: a fault until a session is up again

    @property
    def up(self) -> bool:
        return self.status in (LinkStatus.UP, LinkStatus.DEGRADED)


class SymbolUnavailable(Message):
    """A symbol the Gateway refused for a reason that asking again will not fix this session
    (IB 200 unknown symbol, 354/10090/10167/10168 no market-data permission, ...)."""

    symbol: str
    code: int                        # IB's code (runtime/gateway/error_policy.py)
    reason: str                      # what it means, in words
    since: UtcDatetime
    retry_at: UtcDatetime            # in a session +30 min; outside one the next open


class FeedSymbols(Message):
    """Which bar symbols have no data and why. BarFeed is the only writer (latest value
    `symbols`); health and the console show it, and the strategy sees such a symbol simply
    without bars (no data: Strategy C for it)."""

    unavailable: tuple[SymbolUnavailable, ...] = ()

    def available(self, symbol: str) -> bool:
        return all(u.symbol != symbol for u in self.unavailable)


NoticeKind = Literal["lost", "restored_data_lost", "restored", "farm_down", "farm_up",
                     "pacing", "competing_session", "client_id_in_use", "permanent",
                     "warning", "error"]
"""A code's kind as the link's readers branch on it; `runtime.gateway.error_policy` decides."""


class GatewayNotice(Message):
    """A status/error code from the Gateway, classified (tws_protocol.md section 3.1)."""

    session_id: int
    code: int
    text: str
    kind: NoticeKind
    request_id: int = -1
    ts: UtcDatetime


# -- requests to GatewayLink (channel link_requests) -----------------------------------------
# Each request is answered by one Reply; subscriptions also stream messages until cancelled.

SecType = Literal["STK", "IND"]


class BarUpdate(Message):
    """The newest state of a forming bar. `ts` is the bar start; a new `ts` starts a new bar."""

    symbol: str
    ts: UtcDatetime
    open: float
    high: float
    low: float
    close: float
    volume: float
    session_id: int


class OptionChain(Message):
    underlying: str
    expirations: tuple[str, ...]     # YYYYMMDD, ascending
    strikes: tuple[float, ...]       # ascending
    multiplier: int = 100
    trading_class: str | None = None
    session_id: int = 0


class SubscribeBars(Request[list[BarUpdate]]):
    """1-minute bars of an underlying or index, from `since` (exclusive) and then live.

    The reply carries the bars IB returned for the look-back (the backfill); the stream then
    carries `BarUpdate`s of the still-forming bar and each new one (keepUpToDate semantics).
    """

    symbol: str
    sec_type: SecType = "STK"
    lookback_s: int          # how far back the initial bars must reach (covers the gap)
    bar_seconds: int = 60
    use_rth: bool = True


class SubscribeQuote(Request[Quote | None]):
    """Streaming top of book (and greeks for options) for a symbol or an OptionSpec key."""

    key: str
    symbol: str
    sec_type: Literal["STK", "IND", "OPT"] = "STK"
    expiry: str | None = None        # YYYYMMDD for options
    strike: float | None = None
    right: Literal["C", "P"] | None = None


class CancelSubscription(Request[None]):
    subscription_id: int


class OptionChainRequest(Request[OptionChain]):
    underlying: str


class CurrentTime(Request[dt.datetime]):
    """reqCurrentTime: the Gateway's clock (also the liveness probe's question)."""


class RestartSession(Request[None]):
    """End the current Gateway session and start a new one (answered before it ends).

    For a state no request on this session can clear: an order the broker never acknowledged
    and that the lookup by orderRef (open orders, executions) does not find. GatewayLink ends
    the session as a failure with the cause `restart requested`, counted in its restart-storm
    ledger like any other cause, so a state that stays stuck cannot loop the link: after a few
    requests within the storm window the link pauses and alerts once.
    """

    reason: str                      # what is stuck, naming the order(s)
    requested_by: str                # the actor asking (OrderRouter)
    session_id: int                  # the session meant; another one is left alone
