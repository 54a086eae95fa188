"""The report's PNG: closed-trade equity (and the underlying's buy-and-hold) with the drawdown
underneath. matplotlib is imported here only, with the Agg backend (no display needed)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from pathlib import Path


def equity_chart(path: Path, *, times: Sequence[dt.datetime], equity: Sequence[float],
                 hold_times: Sequence[dt.datetime], hold: Sequence[float], hold_label: str,
                 title: str) -> None:
    """Equity (step after each trade) over buy-and-hold, drawdown from the running peak below."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    peak = float("-inf")
    drawdown = []
    for value in equity:
        peak = max(peak, value)
        drawdown.append(value - peak)
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(10, 5.6), sharex=True,
                                      gridspec_kw={"height_ratios": [3, 1]})
    top.step(times, equity, where="post", color="#1f5fa8", linewidth=1.4,
             label="strategy equity (closed trades)")
    if hold:
        top.plot(hold_times, hold, color="#999999", linewidth=1.0, linestyle="--",
                 label=hold_label)
    top.set_ylabel("equity ($)")
    top.set_title(title, fontsize=11)
    top.grid(alpha=0.3)
    top.legend(loc="best", fontsize=8)
    bottom.fill_between(times, drawdown, 0, step="post", color="#c0392b", alpha=0.45)
    bottom.set_ylabel("drawdown ($)")
    bottom.grid(alpha=0.3)
    fig.autofmt_xdate()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
