"""`python -m tools.calendar --from YYYY-MM-DD --to YYYY-MM-DD`: one line per NYSE session.

Output: `date open close` in US/Eastern HH:MM, e.g. `2026-11-27 09:30 13:00` (an early close).
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from collections.abc import Sequence

from config.market_calendar import CalendarRangeError, get_calendar


def _date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {text!r}") from None


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tools.calendar", description=__doc__)
    p.add_argument("--from", dest="first", type=_date, required=True)
    p.add_argument("--to", dest="last", type=_date, required=True)
    args = p.parse_args(argv)
    if args.last < args.first:
        print("error: --to is before --from", file=sys.stderr)
        return 2
    try:
        sessions = get_calendar().sessions(args.first, args.last)
    except CalendarRangeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for s in sessions:
        print(f"{s.date.isoformat()} {s.open_et:%H:%M} {s.close_et:%H:%M}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
