"""The soak's guardrail drill: book a loss past MAX_DAILY_LOSS_PCT, judge the bot's reaction.

The drill goes through the running bot's health endpoint (`POST /drill/loss`, accepted only on
a simulated clock), so the loss takes the same path a real losing trade would: ModeGuard sees
the daily loss past its limit, cancels entries, flattens every position and halts for the day,
with a critical alert. The judge reads the journal: all of that must happen within one bar
(60 simulated seconds) of the drill being booked.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import httpx
import trio

from runtime.ops.health import port_file

ONE_BAR = dt.timedelta(minutes=1)
WAIT_WALL_SECONDS = 20.0


def _events(logdir: Path) -> list[dict[str, Any]]:
    path = logdir / "events.jsonl"
    out: list[dict[str, Any]] = []
    if not path.exists():
        return out
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            continue             # a line being written right now
    return out


def open_positions(logdir: Path) -> dict[str, int]:
    """Contracts held per option, from the journal's fills."""
    held: dict[str, int] = {}
    for e in _events(logdir):
        if e["event"] == "fill":
            sign = 1 if e.get("side") == "BUY" else -1
            key = str(e.get("contract"))
            held[key] = held.get(key, 0) + sign * int(e.get("quantity") or 0)
    return {k: v for k, v in held.items() if v}


def _ts(event: dict[str, Any]) -> dt.datetime:
    return dt.datetime.fromisoformat(event["ts"].replace("Z", "+00:00"))


async def run_guardrail_drill(out: Path) -> dict[str, Any]:
    logdir, state = out / "logs", out / "state"
    try:
        port = int(port_file(state).read_text(encoding="utf-8").strip())
    except (OSError, ValueError) as exc:
        return {"ok": False, "result": f"health endpoint port unknown: {exc}"}
    before = len(await trio.to_thread.run_sync(_events, logdir))
    holding = await trio.to_thread.run_sync(open_positions, logdir)
    async with httpx.AsyncClient(timeout=5.0) as client:
        try:
            answer = await client.post(f"http://127.0.0.1:{port}/drill/loss", json={})
        except httpx.HTTPError as exc:
            return {"ok": False, "result": f"drill request failed: {exc}"}
    if answer.status_code != 202:
        return {"ok": False, "result": f"drill refused: {answer.status_code} {answer.text}"}
    drill = halt = alert = None
    with trio.move_on_after(WAIT_WALL_SECONDS):
        while drill is None or halt is None or alert is None:
            await trio.sleep(0.2)
            new = (await trio.to_thread.run_sync(_events, logdir))[before:]
            drill = next((e for e in new if e["event"] == "drill"), None)
            halt = next((e for e in new if e["event"] == "halt"
                         and "daily loss" in str(e.get("reason", ""))), None)
            alert = next((e for e in new if e["event"] == "alert"
                          and e.get("severity") == "critical"
                          and "Daily loss limit" in str(e.get("title", ""))), None)
    if drill is None:
        return {"ok": False, "result": "the bot never booked the drill (no `drill` event)"}
    new = (await trio.to_thread.run_sync(_events, logdir))[before:]
    t0 = _ts(drill)
    breaches = [e for e in new if e["event"] == "risk_breach"]
    sells = [e for e in new if e["event"] == "order_submitted" and e.get("action") == "SELL"
             and _ts(e) - t0 <= ONE_BAR]
    result: dict[str, Any] = {
        "booked": f"{drill.get('amount')} against a limit of {drill.get('limit')} at "
                  f"{t0:%H:%M:%S} UTC (simulated)",
        "halt": f"+{(_ts(halt) - t0).total_seconds():.0f} s" if halt else "NOT SEEN",
        "critical alert": f"+{(_ts(alert) - t0).total_seconds():.0f} s" if alert else "NOT SEEN",
        "risk_breach events": len(breaches),
        "positions held when the drill hit": ", ".join(f"{k} x{v}" for k, v in holding.items())
                                             or "none",
        "closing (SELL) orders within one bar": len(sells),
    }
    flattened = {str(e.get("contract")) for e in sells} >= set(holding)
    ok = (halt is not None and alert is not None and _ts(halt) - t0 <= ONE_BAR
          and _ts(alert) - t0 <= ONE_BAR and flattened)
    result["ok"] = ok
    result["result"] = (("flatten + " if holding else "") + "halt + critical alert within one "
                        "bar" if ok else "the bot did not flatten, halt and alert within one bar")
    return result
