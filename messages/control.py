"""Trading state and operator commands.

ModeGuard -> everyone (latest value); operator -> ModeGuard.
"""

from __future__ import annotations

import enum
from typing import Literal

from messages.base import Message, UtcDatetime


class TradingState(enum.StrEnum):
    ACTIVE = "ACTIVE"        # entries and exits allowed
    REDUCING = "REDUCING"    # exits only (link down, scheduled restart window)
    HALTED = "HALTED"        # nothing new; flatten where required (risk, mismatch, kill switch)


class TradingStatus(Message):
    state: TradingState
    reasons: tuple[str, ...] = ()
    since: UtcDatetime | None = None
    fault: bool = False      # halted by a fault (health answers 503), not by a normal daily stop
    kill_switch: bool = False   # the operator's kill switch is engaged (the router's gate reads it)


class OperatorCommand(Message):
    """A command from the operator (health endpoint, console, kill-switch file).

    `close_position` asks ModeGuard to close one position (`option_key`) through its own exit
    path; the console sends it and watches for the exit, since ModeGuard decides."""

    kind: Literal["kill_switch_on", "kill_switch_off", "dump_tree", "drill_loss",
                  "close_position"]
    source: Literal["file", "http", "signal", "console"]
    ts: UtcDatetime
    option_key: str | None = None     # close_position: the position to close
    amount_usd: float | None = None   # drill_loss: the simulated loss to book (None: enough
                                      # to take today's P&L 10 % past the daily limit)
