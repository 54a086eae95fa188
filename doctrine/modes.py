"""Which Gateway sessions fit the configured mode (pure: ModeGuard and OrderRouter both ask).

DRY_RUN needs a read-only session; PAPER needs every managed account to be a paper account
(`DU…`) on a read-write session; LIVE (besides the acknowledgement the settings demand) no
paper account at all. Unknown accounts never fit. OrderRouter checks every session itself
before it writes anything on it; ModeGuard halts trading and alerts on a mismatch.
"""

from __future__ import annotations

from config.settings import Mode, Settings
from messages.link import LinkState


def mode_problem(settings: Settings, state: LinkState) -> str | None:
    """Why this Gateway session does not fit the configured mode (None: it fits)."""
    mode = settings.mode
    if mode is Mode.DRY_RUN:
        return None if state.readonly else \
            "DRY-RUN needs a read-only session; this one can place orders"
    accounts = [a.strip() for a in state.accounts if a.strip()]
    if not accounts:
        return "the Gateway reports no managed account: account type unknown"
    if state.readonly:
        return f"{mode.words} needs a read-write session; this one is read-only"
    paper = [a for a in accounts if a.upper().startswith("DU")]
    if mode is Mode.PAPER and len(paper) != len(accounts):
        live = [a for a in accounts if a not in paper]
        return f"PAPER TRADING needs paper (DU…) accounts only; {', '.join(live)} looks LIVE"
    if mode is Mode.LIVE and paper:
        return f"LIVE TRADING refuses paper accounts; {', '.join(paper)} is a paper account"
    return None
