"""Outages in the operator's words, and their timing: when to retry, when to alert.

GatewayLink keeps what it last observed of the Gateway (a closed port, a handshake that hangs,
a login that never completes, a session that went silent) and, once no session has been up for
OUTAGE_ALERT_MIN, says exactly that, without guessing at causes. These are the pure parts.
"""

from __future__ import annotations

import datetime as dt

from runtime.gateway.link_transport import ConnectFailed
from runtime.infra.clock import Clock

CONNECT_RETRY_INITIAL = 0.25   # a failed connect is retried after this, doubling...
CONNECT_RETRY_MAX = 30.0       # ...up to this (trio seconds), inside the same incarnation
QUICK_RETRY = 0.25             # inside the scheduled restart window, and after a 326
OUTAGE_ALERT_MIN_REAL_S = 10.0  # a "long" outage must also have lasted this long in real time
# On an accelerated clock (a soak at 1000x) reconnecting takes real seconds (a hang is only
# detected after the liveness deadline, a connect to a hung Gateway times out after 5 s),
# which are simulated hours: without a real-time floor every injected fault would read as a
# long outage. The floor is that inherent latency and no more, so that at 60x the alert still
# fires at OUTAGE_ALERT_MIN of simulated time (a 20 s floor once delayed it to 20 minutes).
# In production both clocks agree.


def connect_retry_delay(failures: int, *, quick: bool) -> float:
    """The pause after the `failures`-th failed connect in a row."""
    if quick:
        return QUICK_RETRY
    return min(CONNECT_RETRY_MAX, CONNECT_RETRY_INITIAL * 2.0 ** min(failures - 1, 16))


def describe_connect_failure(exc: ConnectFailed, where: str, timeouts_in_a_row: int) -> str:
    """What a failed connect tells about the Gateway at `where` (host:port), in words."""
    if exc.kind == "timeout":
        stage = {
            True: f"port {where} open and the API handshake answered, but the session never "
                  "starts (login pending: no accounts / next order id)",
            False: f"port {where} open, but the API handshake hangs (connected but silent)",
            None: f"port {where} open, but the API handshake/login does not complete",
        }[exc.handshake_done]
        return f"{stage} ({timeouts_in_a_row} attempts in a row)"
    return {
        "refused": f"the Gateway's port {where} refuses connections",
        "client_id_in_use": "the Gateway says the client id is in use (326)",
        "broken": f"the Gateway closed the connection during the handshake ({exc.detail})",
    }.get(exc.kind, f"connect failed: {exc}")


def outage_deadline(clock: Clock, since: dt.datetime, since_trio: float,
                    limit_s: float) -> float:
    """The trio time at which an outage that began at `since` becomes a long one."""
    return max(clock.trio_time_at(since + dt.timedelta(seconds=limit_s)),
               since_trio + min(limit_s, OUTAGE_ALERT_MIN_REAL_S))
