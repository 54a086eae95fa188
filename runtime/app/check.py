"""`python -m runtime --check`: is everything ready for today? Prints, exits 0 or 2."""

from __future__ import annotations

import datetime as dt
import sys

from config.market_calendar import ET, get_calendar
from config.settings import Settings


def run_check(settings: Settings, today: dt.date | None = None) -> int:
    today = today or dt.datetime.now(ET).date()
    print(f"Mode: {settings.mode.words}")
    print("Effective settings (secrets redacted):")
    for key, value in settings.redacted().items():
        print(f"  {key}={value}")
    session = get_calendar().session(today)
    print(f"Today ({today.isoformat()}, ET): " + (
        f"market session {session.open_et:%H:%M}-{session.close_et:%H:%M} ET"
        + (" (early close)" if session.early_close else "") if session else "no market session"))
    problem = _check_gameplan(settings, today)
    if problem:
        print(f"error: gameplan: {problem}", file=sys.stderr)
        print("The bot would run Strategy C (no entries) until a valid gameplan appears.")
        return 2
    print(f"Gameplan {settings.gameplan_path}: valid for {today.isoformat()}")
    return 0


def _check_gameplan(settings: Settings, today: dt.date) -> str | None:
    try:
        from config.gameplan import GameplanError, load_gameplan
    except ImportError:        # the gameplan model arrives with the brain (issue 5)
        return None if settings.gameplan_path.exists() else (
            f"{settings.gameplan_path}: file not found")
    try:
        load_gameplan(settings.gameplan_path, today_et=today, operator_id=settings.operator_id)
    except GameplanError as exc:
        return str(exc)
    return None
