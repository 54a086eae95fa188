"""Every event the bot writes to its journal, classified: what the report does with it.

The report must know every event the bot can emit
(tests/tools/stability/test_event_classification.py collects the names from the code and fails
when one is missing here), so an unknown name in a journal means a newer or foreign writer,
never "the report forgot". Each class says how the report reads the event:

    lifecycle   process runs, the actor tree and supervision (criteria 1 and 6)
    link        the Gateway session and its requests (outages, the mode interlock)
    market      bars and their gaps (criterion 4: data flowed)
    brain       strategy decisions, setups, the gameplan (criterion 4: signals)
    money       orders, fills, intents, reconciliation, the day's P&L (the trades panel)
    risk        trading state, halts, breaches, drills, the kill switch (criterion 2, incidents)
    operations  alerts, notifications, resource samples (criteria 3 and 5)
"""

from __future__ import annotations

from collections.abc import Mapping

EVENT_CLASSES: Mapping[str, str] = {
    # lifecycle
    "startup": "lifecycle", "shutdown": "lifecycle", "tree": "lifecycle",
    "actor_restart": "lifecycle", "actor_failed": "lifecycle", "health_listening": "lifecycle",
    "actor_stop_overdue": "lifecycle", "journal_dropped": "operations",
    # link
    "link_up": "link", "link_down": "link", "link_connect_failed": "link", "request": "link",
    "mode_check": "link", "feed_stale": "link", "link_outage": "link", "link_storm": "link",
    "link_restart_requested": "link", "quote_refused": "link",
    "symbol_disabled": "link", "symbol_enabled": "link",
    # market
    "bar": "market", "bar_gap": "market", "bar_refused": "market",
    # brain
    "signal": "brain", "gameplan": "brain", "indicator_params": "brain",
    # money
    "order_intent": "money", "order_rejected": "money", "order_submitted": "money",
    "order_status": "money", "order_cancel": "money", "fill": "money", "intent_done": "money",
    "reconcile": "money", "day_trade": "money", "daily_summary": "money",
    "affordability": "money", "capital": "money",
    # risk
    "trading_state": "risk", "halt": "risk", "resume": "risk", "risk_breach": "risk",
    "drill": "risk", "kill_switch": "risk", "short_position": "risk", "operator_action": "risk",
    # operations
    "alert": "operations", "notify": "operations", "resource": "operations",
}

KNOWN_EVENTS = frozenset(EVENT_CLASSES)
