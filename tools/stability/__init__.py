"""The daily stability report: from a log directory to the six criteria and GO / NO-GO.

    logfiles   read the human log and the event journal (rotated files, torn lines)
    timeline   process runs (how each started and ended) and Gateway outages
    patterns   message patterns (numbers and ids masked)
    resources  resource samples and the within-run RSS slope
    analysis   per-ET-day facts, issues with severities, the six criteria
    markdown   the validation-log layout; chart: the CPU/RSS PNG
    thresholds every number a verdict depends on, with its reason

`python -m tools.stability_report LOGDIR [--out FILE]` is the command (tools/stability_report.py).
"""

from tools.stability.analysis import NoLogsError, Report, build_report
from tools.stability.thresholds import Thresholds

__all__ = ["NoLogsError", "Report", "Thresholds", "build_report"]
