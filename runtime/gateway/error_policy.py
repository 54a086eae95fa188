"""The one error policy: every code the Gateway can send -> its class -> what the bot does.

IB reports everything (lost connectivity, a farm blip, an unknown symbol, a rejected order, a
pacing violation) through the same `error(reqId, code, text)` callback. Deciding per call site
what a code means is how a per-symbol "no security definition" (200) ended up restarting the
whole link in a loop (issue 13). So the meaning lives here, once, as a table; GatewayLink,
BarFeed and the order path all ask `classify(code, text)` / `action_for(code, text)`, and
docs/ERROR_POLICY.md is this table in words.

Codes are grouped into named frozensets (the nautilus_trader IB adapter's approach): texts
change between Gateway versions, codes do not. The one exception is 162, which IB uses for a
pacing violation, a missing permission and "no data" alike; there the text decides.

A code not in the table is informational (`CodePolicy.known` is False): GatewayLink logs it
once per process, and it is never a crash and never a reconnect.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class ErrorClass(enum.StrEnum):
    CONNECTIVITY = "connectivity"      # IB <-> Gateway (or our socket) lost / restored
    DATA_FARM = "data_farm"            # a market-data / HMDS / sec-def farm went down / up
    PERMANENT = "permanent"            # this request (symbol) will never succeed as asked
    PERMISSION = "permission"          # no data for this account now (subscription, session)
    TRANSIENT = "transient"            # this request failed; the same request may succeed
    PACING = "pacing"                  # IB's rate limits: slow down, never reconnect
    ORDER_REJECTED = "order_rejected"  # an order (or its cancel) refused: the money path's
    CLIENT_ID = "client_id"            # our client id is taken: connect with another
    INFORMATIONAL = "informational"    # nothing to do (also every unknown code)


class Action(enum.StrEnum):
    RECONNECT = "reconnect"            # end the session; the link subtree starts a new one
    DEGRADE = "degrade"                # session stays; mark the link degraded until restored
    RESUBSCRIBE = "resubscribe"        # every stream is dead: subscribe again (1101, 10182)
    VERIFY_STREAMS = "verify_streams"  # data should be intact; resubscribe after a farm blip
    DISABLE_SYMBOL = "disable_symbol"  # stop asking for this symbol; retry next session / later
    ANNOUNCE = "announce"              # tell the operator in words; the link stays as it is
    BACK_OFF = "back_off"              # wait (growing) and retry the same request
    RETRY = "retry"                    # retry the request after a short pause
    REJECT_ORDER = "reject_order"      # the order path records the rejection; no retry here
    ROTATE_CLIENT_ID = "rotate_client_id"
    LOG = "log"


@dataclass(frozen=True)
class CodePolicy:
    code: int
    error_class: ErrorClass
    action: Action
    meaning: str                       # IB's meaning, in our words
    known: bool = True


def _p(code: int, cls: ErrorClass, action: Action, meaning: str) -> CodePolicy:
    return CodePolicy(code, cls, action, meaning)


C, A = ErrorClass, Action

TABLE: dict[int, CodePolicy] = {p.code: p for p in (
    # -- connectivity ---------------------------------------------------------------------------
    _p(1100, C.CONNECTIVITY, A.DEGRADE, "connectivity between IB and the Gateway lost"),
    _p(2110, C.CONNECTIVITY, A.DEGRADE, "connectivity between the Gateway and IB's server "
                                        "broken; restored automatically"),
    _p(1101, C.CONNECTIVITY, A.RESUBSCRIBE, "connectivity restored, market data lost: every "
                                            "subscription must be requested again"),
    _p(1102, C.CONNECTIVITY, A.VERIFY_STREAMS, "connectivity restored, data maintained"),
    _p(1300, C.CONNECTIVITY, A.RECONNECT, "the Gateway's socket port was reset: reconnect"),
    _p(502, C.CONNECTIVITY, A.RECONNECT, "could not connect to the Gateway (client side)"),
    _p(504, C.CONNECTIVITY, A.RECONNECT, "not connected (client side)"),
    _p(10182, C.CONNECTIVITY, A.RESUBSCRIBE, "live updates of a keepUpToDate request failed "
                                             "(disconnected): request it again"),
    # -- data farms -----------------------------------------------------------------------------
    _p(2103, C.DATA_FARM, A.LOG, "market data farm connection broken"),
    _p(2104, C.DATA_FARM, A.VERIFY_STREAMS, "market data farm connection OK"),
    _p(2105, C.DATA_FARM, A.LOG, "historical data (HMDS) farm connection broken"),
    _p(2106, C.DATA_FARM, A.VERIFY_STREAMS, "historical data (HMDS) farm connection OK"),
    _p(2107, C.DATA_FARM, A.LOG, "HMDS farm inactive but available on demand"),
    _p(2108, C.DATA_FARM, A.LOG, "market data farm inactive but available on demand"),
    _p(2119, C.DATA_FARM, A.LOG, "market data farm is connecting"),
    _p(2157, C.DATA_FARM, A.LOG, "security definition farm connection broken"),
    _p(2158, C.DATA_FARM, A.VERIFY_STREAMS, "security definition farm connection OK"),
    # -- per request, permanent -----------------------------------------------------------------
    _p(200, C.PERMANENT, A.DISABLE_SYMBOL, "no security definition found (unknown, mistyped "
                                           "or delisted symbol, or ambiguous contract)"),
    _p(203, C.PERMANENT, A.DISABLE_SYMBOL, "the security is not available or allowed for "
                                           "this account"),
    _p(321, C.PERMANENT, A.DISABLE_SYMBOL, "error validating the request (a malformed "
                                           "request, or a read-only API for an order)"),
    _p(354, C.PERMISSION, A.DISABLE_SYMBOL, "requested market data is not subscribed"),
    _p(10089, C.PERMISSION, A.DISABLE_SYMBOL, "requested market data needs an additional "
                                              "API subscription"),
    _p(10090, C.PERMISSION, A.DISABLE_SYMBOL, "part of the requested market data is not "
                                              "subscribed"),
    _p(10167, C.PERMISSION, A.DISABLE_SYMBOL, "not subscribed: displaying delayed market "
                                              "data (unusable for trading)"),
    _p(10168, C.PERMISSION, A.DISABLE_SYMBOL, "not subscribed, and delayed market data is "
                                              "not enabled"),
    _p(10197, C.PERMISSION, A.ANNOUNCE, "no market data during a competing live session "
                                        "(the same user is logged in elsewhere)"),
    # -- per request, transient and pacing ------------------------------------------------------
    _p(162, C.TRANSIENT, A.RETRY, "historical data service message (no data, cancelled; "
                                  "by its text also a pacing violation or a permission)"),
    _p(165, C.INFORMATIONAL, A.LOG, "historical data service query message"),
    _p(366, C.TRANSIENT, A.RETRY, "no historical data query found for this ticker id"),
    _p(102, C.TRANSIENT, A.RETRY, "duplicate ticker id"),
    _p(300, C.INFORMATIONAL, A.LOG, "cannot find the ticker id (already cancelled)"),
    _p(100, C.PACING, A.BACK_OFF, "max rate of messages per second exceeded"),
    _p(101, C.PACING, A.BACK_OFF, "max number of tickers reached (market data lines)"),
    _p(322, C.PACING, A.BACK_OFF, "error processing request (too many simultaneous "
                                  "requests, duplicate id)"),
    _p(420, C.PACING, A.BACK_OFF, "invalid real-time query (pacing)"),
    # -- orders ---------------------------------------------------------------------------------
    _p(103, C.ORDER_REJECTED, A.REJECT_ORDER, "duplicate order id"),
    _p(104, C.ORDER_REJECTED, A.REJECT_ORDER, "cannot modify a filled order"),
    _p(105, C.ORDER_REJECTED, A.REJECT_ORDER, "modified order does not match the original"),
    _p(110, C.ORDER_REJECTED, A.REJECT_ORDER, "price does not conform to the minimum tick"),
    _p(135, C.ORDER_REJECTED, A.REJECT_ORDER, "cannot find the order with this id"),
    _p(161, C.ORDER_REJECTED, A.REJECT_ORDER, "cancel attempted on an order not cancellable"),
    _p(201, C.ORDER_REJECTED, A.REJECT_ORDER, "order rejected (margin, permissions, ...)"),
    _p(202, C.ORDER_REJECTED, A.REJECT_ORDER, "order cancelled"),
    _p(399, C.INFORMATIONAL, A.LOG, "order message warning (e.g. held until the open)"),
    _p(10147, C.ORDER_REJECTED, A.REJECT_ORDER, "order id to cancel not found"),
    _p(10148, C.ORDER_REJECTED, A.REJECT_ORDER, "order id to cancel cannot be cancelled"),
    _p(10149, C.ORDER_REJECTED, A.REJECT_ORDER, "invalid order id to cancel"),
    # -- client id ------------------------------------------------------------------------------
    _p(326, C.CLIENT_ID, A.ROTATE_CLIENT_ID, "the client id is already in use"),
    # -- informational --------------------------------------------------------------------------
    _p(2100, C.INFORMATIONAL, A.LOG, "account data subscription cancelled"),
    _p(2109, C.INFORMATIONAL, A.LOG, "order event outside regular trading hours ignored"),
    _p(2137, C.INFORMATIONAL, A.LOG, "cross-side warning"),
    _p(2150, C.INFORMATIONAL, A.LOG, "invalid position trade derived value"),
    _p(2168, C.INFORMATIONAL, A.LOG, "etradeonly order attribute ignored"),
    _p(2169, C.INFORMATIONAL, A.LOG, "firmQuoteOnly order attribute ignored"),
)}
del C, A


def codes(*classes: ErrorClass, action: Action | None = None) -> frozenset[int]:
    return frozenset(p.code for p in TABLE.values()
                     if p.error_class in classes and (action is None or p.action is action))


# -- named groups (what the readers match on) -------------------------------------------------
CONNECTIVITY_LOST = frozenset({1100, 2110})
DATA_LOST = frozenset({1101, 10182})               # streams dead: resubscribe every one
DATA_MAINTAINED = frozenset({1102})
PORT_RESET = frozenset({1300})
FARM_DOWN = frozenset({2103, 2105, 2157})
FARM_UP = frozenset({2104, 2106, 2158})
FARM_INACTIVE = frozenset({2107, 2108, 2119})
PERMANENT = codes(ErrorClass.PERMANENT)
PERMISSION = codes(ErrorClass.PERMISSION)
COMPETING_SESSION = frozenset({10197})
PACING = codes(ErrorClass.PACING)
ORDER_REJECTED = codes(ErrorClass.ORDER_REJECTED)
CLIENT_ID_IN_USE = 326
HMDS_MESSAGE = 162


def policy(code: int, text: str = "") -> CodePolicy:
    """The policy for one code (and, for 162, its text); unknown codes are informational."""
    if code == HMDS_MESSAGE:
        lowered = text.lower()
        if "pacing" in lowered:
            return CodePolicy(code, ErrorClass.PACING, Action.BACK_OFF,
                              "historical data request pacing violation")
        if "permission" in lowered:
            return CodePolicy(code, ErrorClass.PERMISSION, Action.DISABLE_SYMBOL,
                              "no market data permissions for this historical request")
    found = TABLE.get(code)
    if found is not None:
        return found
    if 2100 <= code < 2200:
        return CodePolicy(code, ErrorClass.INFORMATIONAL, Action.LOG,
                          "a Gateway warning (2100-2199)")
    return CodePolicy(code, ErrorClass.INFORMATIONAL, Action.LOG, "not in the policy table",
                      known=False)


def classify(code: int, text: str = "") -> ErrorClass:
    """The class of a code: what the order path and the feed branch on."""
    return policy(code, text).error_class


def action_for(code: int, text: str = "") -> Action:
    """What the bot does about a code."""
    return policy(code, text).action


def is_pacing(code: int | None, text: str = "") -> bool:
    return code is not None and classify(code, text) is ErrorClass.PACING


def disables_symbol(code: int | None, text: str = "") -> bool:
    """A per-request failure that will not go away by asking again this session."""
    return code is not None and action_for(code, text) is Action.DISABLE_SYMBOL


def ends_session(code: int) -> bool:
    """Only link-level faults end the session; per-request codes never do."""
    return action_for(code) is Action.RECONNECT

