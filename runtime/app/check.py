"""`python -m runtime --check`: is everything ready for today? Prints, and says so in its code.

Exit codes (README "Exit codes"; 0 and 2 keep their CONTRACT.md meaning):
  0  settings valid, today is a session and the gameplan is valid for it
  2  a bad setting (cli.py, before this runs) or a gameplan file that exists but cannot be read
     or parsed as JSON ("gameplan file unreadable")
  3  settings valid, today is a session, but the gameplan is missing or not valid for today
     (schema, stale date, another operator): the bot would trade nothing (Strategy C)
  4  settings valid and nothing to do today: no NYSE session (weekend or holiday); the
     gameplan is reported but not required
The affordability check (can any allowed contract fit the budgets?) prints one warning with
numbers; it never changes the exit code: trading nothing is safe, just pointless.
"""

from __future__ import annotations

import datetime as dt
import sys

from config.market_calendar import ET, get_calendar
from config.settings import Settings

EXIT_READY = 0
EXIT_BAD_SETTINGS_OR_UNREADABLE_PLAN = 2
EXIT_NO_VALID_PLAN = 3
EXIT_NO_SESSION = 4

_UNREADABLE_KINDS = frozenset({"unreadable", "invalid_json"})


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
    plan, kind, problem = _check_gameplan(settings, today)
    if problem is not None and kind in _UNREADABLE_KINDS:
        print(f"error: gameplan: {problem}", file=sys.stderr)
        return EXIT_BAD_SETTINGS_OR_UNREADABLE_PLAN
    if session is None:
        if problem is None:
            print(f"Gameplan {settings.gameplan_path}: valid for {today.isoformat()}")
        else:   # said the same way as on a session day, but it stops nothing today
            print(f"error: gameplan: {problem}", file=sys.stderr)
        print(f"Nothing to do today: no market session on {today.isoformat()} "
              f"(exit {EXIT_NO_SESSION})")
        return EXIT_NO_SESSION
    if problem is not None:
        print(f"error: gameplan: {problem}", file=sys.stderr)
        print("The bot would run Strategy C (no entries) until a valid gameplan appears.")
        return EXIT_NO_VALID_PLAN
    print(f"Gameplan {settings.gameplan_path}: valid for {today.isoformat()}")
    from runtime.app.affordability_note import affordability_warning
    warning = affordability_warning(settings, plan)
    if warning:
        print(f"warning: {warning}")
    return EXIT_READY


def _check_gameplan(settings: Settings, today: dt.date) -> tuple[object, str | None,
                                                                 str | None]:
    """(the plan, the error kind, the problem in words): plan None when refused."""
    from config.gameplan import GameplanError, load_gameplan
    try:
        plan = load_gameplan(settings.gameplan_path, today_et=today,
                             operator_id=settings.operator_id)
    except GameplanError as exc:
        return None, exc.kind, str(exc)
    return plan, None, None
