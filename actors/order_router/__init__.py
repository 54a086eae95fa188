"""OrderRouter: the order ledger, the broker conversation, dry-run fills and reconciliation.

A package of small modules with one job each:
    router.py   the actor: inbox/outbox, intake, entries, exits, sessions and reconciliation
    gate.py     the pre-trade gate: the one door every order passes just before it is sent
    journal.py  `logs/trades.jsonl`
docs/MONEY_PATH.md lists every way an order leaves the process and the test that pins it.
"""

from .journal import TRADES_FILE, TradeJournal
from .router import (
    FEE_PER_CONTRACT_ROUND_TRIP,
    STATE_NAME,
    TUNING_SERVICE,
    Inbox,
    Outbox,
    Tuning,
    run,
)

__all__ = ["FEE_PER_CONTRACT_ROUND_TRIP", "STATE_NAME", "TRADES_FILE",
           "TUNING_SERVICE", "Inbox", "Outbox", "TradeJournal", "Tuning", "run"]
