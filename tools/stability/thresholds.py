"""The numbers behind the six criteria and the issue severities, in one place.

Each constant says why it has its value, so that an operator who disagrees can change one
number (or pass the CLI option) instead of reading the analysis code. `Thresholds` bundles the
ones the command line may override; the rest are module constants.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

RSS_SLOPE_MAX_MB_PER_HOUR = 2.0
"""Largest RSS growth (MB per hour of log time) still called stable.

Computed within each process run (a restart resets RSS, so runs are never mixed) after a
warm-up. 2 MB/h is ~50 MB a day: a Python process of ~150 MB that grows by a third each day
would not survive a week. On an accelerated soak the hour is a simulated hour, which is the
right unit for leaks driven by bars, orders and reconnects."""

RSS_WARMUP_MINUTES = 30.0
"""Samples in the first minutes of a run are left out of the slope: imports, history requests
and caches fill up there, and that growth is not a leak."""

RSS_SLOPE_MIN_SPAN_HOURS = 3.0
"""A run (or a run's part of one day) must span this much sampled time after warm-up to count.
Garbage collection moves RSS by a few MB; with one sample a minute the slope's noise is about
1.3 MB/h over one hour but about 0.25 MB/h over three, well under the threshold."""

CPU_AVG_MAX_PCT = 5.0
"""Average process CPU over the period (psutil's process cpu_percent). A bot that waits on
one-minute bars should idle; more than 5 % on average means a busy loop or a retry storm."""

LOG_DIR_MAX_MB = 100.0
"""The log directory must stay under this size. The default rotation caps each log at
11 x 10 MB, so reaching 100 MB in a soak means the bot logs far more than it should."""

PATTERN_REPEAT_MIN_COUNT = 3
"""An ERROR/CRITICAL message pattern seen this many times is a repeated pattern (criterion 6)."""

PATTERN_REPEAT_MIN_DAYS = 2
"""...or one seen on this many different ET days: a daily error is a pattern even if rare."""

WARNING_STORM_PER_DAY = 20
"""WARNING lines are normal (a Gateway drop warns), so they fail criterion 6 only as a storm:
one unexplained warning pattern this many times in one ET day."""

EXPECTED_MATCH_WINDOW_S = 5.0
"""A WARNING line within this many seconds of an event marked expected (the scheduled 16:30
Gateway restart: link_down expected=true, actor_restart expected=true) is the log side of that
expected event and is not counted as an unexplained warning."""

INCIDENT_WINDOW_S = 120.0
"""One operator action or drill is one incident: the halt, the critical alert and the log lines
that follow a kill switch or a guardrail drill within this many (journal) seconds are its
consequences, reported once with it, never as separate findings."""

SHUTDOWN_LINK_DOWN_S = 300.0
"""A link_down this close before a CLEAN shutdown is the stop closing the session, not an
outage (the stop takes a few simulated minutes on an accelerated clock)."""

CONFIRMATION_WINDOW_S = 120.0
"""The `Configuration loaded` and mode lines belong to the startup event within this many
seconds of them."""

GATEWAY_RESTART_WINDOW_MIN = 10.0
"""Mirrors the runtime's GATEWAY_RESTART_WINDOW_MIN: a scheduled restart that takes longer to
reconnect is reported (MODERATE)."""

OUTAGE_ALERT_MIN = 10.0
"""Mirrors the runtime's OUTAGE_ALERT_MIN: an unexpected outage this long is MAJOR during the
regular session, MODERATE outside it."""

GATEWAY_RESTART_ET = dt.time(16, 30)
"""Mirrors GATEWAY_RESTART_TIME (IBC AutoRestartTime): on a session day with the bot up across
this time, the report expects one link_down marked expected, else it suggests checking that
IBC's AutoRestartTime (machine-local time) and GATEWAY_RESTART_TIME (ET) agree."""

AUTO_START_ET = dt.time(6, 0)
"""When the scheduler starts the bot (Task Scheduler / systemd timer, 06:00 ET)."""

AUTO_START_GRACE_MIN = 15.0
"""A first start of a session day later than 06:00 ET + this grace, with no run already
active at 06:00, is a late start (MODERATE)."""

OVERNIGHT_FROM_ET = dt.time(18, 0)
"""The 'overnight' of day D is 18:00 ET on D-1 (after the 16:30 Gateway restart has settled)..."""

OVERNIGHT_TO_ET = dt.time(9, 30)
"""...to the 09:30 ET open of D: what the operator reviews before the open."""

BARS_RESUME_LOOKAHEAD_MIN = 30.0
"""The Gateway-restart timeline shows the first bar within this many minutes of reconnecting."""


@dataclass(frozen=True, slots=True)
class Thresholds:
    """The thresholds the command line may override (see the module constants for why)."""

    rss_slope_max_mb_per_hour: float = RSS_SLOPE_MAX_MB_PER_HOUR
    cpu_avg_max_pct: float = CPU_AVG_MAX_PCT
    log_dir_max_mb: float = LOG_DIR_MAX_MB
