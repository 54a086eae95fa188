"""Which mode and account a state file was written for, and whether it may be used now.

The ledger and the risk state are both bound (a dry-run ledger carried into paper sold what the
account did not hold): one rule for both, so they can never disagree about what a mismatch is.
"""

from __future__ import annotations


def binding_mismatch(bound_mode: str, bound_account: str | None, mode: str,
                     account: str | None) -> str | None:
    """Why a state bound to (bound_mode, bound_account) must not be used in `mode` on `account`
    (None: it may). An account not yet known on either side does not refuse; the mode always
    does."""
    if bound_mode != mode:
        return f"it was written in {bound_mode} mode; running {mode}"
    if account is not None and bound_account is not None and bound_account != account:
        return f"it was written for account {bound_account}; the Gateway has {account}"
    return None
