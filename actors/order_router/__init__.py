"""OrderRouter: the order ledger, the broker conversation, dry-run fills and reconciliation.

A package of small modules with one job each:
    core.py      inbox/outbox, tuning, the shared state, `submit` and `cancel` (the one door)
    gate.py      the pre-trade gate: what `submit` asks just before anything is sent
    entries.py   choose, size and submit an entry; abort it on a halt; deadlines
    exits.py     work an exit until flat, never stripping protection it cannot replace
    sessions.py  broker events, each new session, reconciliation, the broker snapshot
    dry_run.py   simulated fills through the same ledger path
    book.py      the status read-model (BookStatus)
    journal.py   `logs/trades.jsonl`
    router.py    the actor: the parts composed, ModeGuard's messages in, housekeeping
docs/MONEY_PATH.md lists every way an order leaves the process and the test that pins it.
"""

from .core import (
    FEE_PER_CONTRACT_ROUND_TRIP,
    STATE_NAME,
    Inbox,
    Outbox,
    Tuning,
)
from .journal import TRADES_FILE, TradeJournal
from .router import run

__all__ = ["FEE_PER_CONTRACT_ROUND_TRIP", "STATE_NAME", "TRADES_FILE",
           "Inbox", "Outbox", "TradeJournal", "Tuning", "run"]
