"""The soak's guardrail drill: book a loss past MAX_DAILY_LOSS_PCT and judge the reaction.

Needs ModeGuard's drill hook (issue 6); until it exists the drill reports that it could not
run, and the soak fails on it (a drill that did not run is not a passed drill).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


async def run_guardrail_drill(out: Path) -> dict[str, Any]:
    return {"ok": False, "result": "not available: ModeGuard has no drill hook yet"}
