"""The ledger's records to and from JSON (the persisted `ledger.json`). Strict on the way in:
a malformed field raises, and the caller treats the file as unreadable (fail closed)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from doctrine.ledger_records import ORDER_TERMINAL, FillRec, IntentRec, OrderRec, PositionRec
from messages.market import OptionSpec
from messages.orders import (
    TERMINAL_STATES,
)


def ts_out(value: dt.datetime | None) -> str | None:
    return value.astimezone(dt.UTC).isoformat() if value is not None else None


def ts_in(value: Any) -> dt.datetime | None:
    if value is None:
        return None
    ts = dt.datetime.fromisoformat(str(value))
    if ts.tzinfo is None:
        raise ValueError(f"naive timestamp {value!r} in the ledger")
    return ts


def ts_required(value: Any) -> dt.datetime:
    ts = ts_in(value)
    if ts is None:
        raise ValueError("missing timestamp")
    return ts


def opt_out(o: OptionSpec | None) -> dict[str, Any] | None:
    return o.model_dump(mode="json") if o is not None else None


def opt_in(d: Any) -> OptionSpec | None:
    return OptionSpec.model_validate(d) if d is not None else None


def intent_out(i: IntentRec) -> dict[str, Any]:
    return {"intent_id": i.intent_id, "kind": i.kind, "created": ts_out(i.created),
            "strategy": i.strategy, "symbol": i.symbol, "state": i.state,
            "option": opt_out(i.option), "contracts": i.contracts,
            "deadline": ts_out(i.deadline), "refs": list(i.refs), "reason": i.reason,
            "terminal_at": ts_out(i.terminal_at), "cancel_why": i.cancel_why,
            "exit_reason": i.exit_reason, "urgent": i.urgent, "attempts": i.attempts}


def intent_in(d: Mapping[str, Any]) -> IntentRec:
    kind, state, strategy = d["kind"], d["state"], d["strategy"]
    if kind not in ("entry", "exit") or strategy not in ("A", "B", "C") or state not in (
            "pending", "working", *TERMINAL_STATES):
        raise ValueError(f"bad intent {d!r}")
    return IntentRec(intent_id=str(d["intent_id"]), kind=kind, created=ts_required(d["created"]),
                     strategy=strategy, symbol=str(d["symbol"]), state=state,
                     option=opt_in(d["option"]), contracts=int(d["contracts"]),
                     deadline=ts_in(d["deadline"]), refs=[str(r) for r in d["refs"]],
                     reason=str(d["reason"]), terminal_at=ts_in(d["terminal_at"]),
                     cancel_why=str(d["cancel_why"]), exit_reason=str(d["exit_reason"]),
                     urgent=bool(d["urgent"]), attempts=int(d["attempts"]))


def order_out(o: OrderRec) -> dict[str, Any]:
    return {"ref": o.ref, "intent_id": o.intent_id, "role": o.role, "action": o.action,
            "quantity": o.quantity, "order_type": o.order_type, "limit": o.limit,
            "stop": o.stop, "created": ts_out(o.created), "updated": ts_out(o.updated),
            "status": o.status, "order_id": o.order_id, "perm_id": o.perm_id,
            "client_id": o.client_id, "epoch": o.epoch, "filled": o.filled,
            "avg_price": o.avg_price, "cancel_requested": ts_out(o.cancel_requested),
            "error": o.error}


def opt_int(v: Any) -> int | None:
    return int(v) if v is not None else None


def opt_float(v: Any) -> float | None:
    return float(v) if v is not None else None


def order_in(d: Mapping[str, Any]) -> OrderRec:
    role, action, status = d["role"], d["action"], d["status"]
    if role not in ("entry", "take_profit", "stop_loss", "exit") or \
            action not in ("BUY", "SELL") or status not in (
            "new", "submitting", "working", *ORDER_TERMINAL):
        raise ValueError(f"bad order {d!r}")
    o = OrderRec(ref=str(d["ref"]), intent_id=str(d["intent_id"]), role=role, action=action,
                 quantity=int(d["quantity"]), order_type=str(d["order_type"]),
                 limit=opt_float(d["limit"]), stop=opt_float(d["stop"]),
                 created=ts_required(d["created"]), updated=ts_required(d["updated"]),
                 status=status,
                 order_id=opt_int(d["order_id"]), perm_id=opt_int(d["perm_id"]),
                 client_id=opt_int(d["client_id"]), epoch=opt_int(d["epoch"]),
                 filled=int(d["filled"]), avg_price=float(d["avg_price"]),
                 cancel_requested=ts_in(d["cancel_requested"]), error=str(d["error"]))
    if o.quantity <= 0 or o.filled < 0:
        raise ValueError(f"impossible quantities in order {o.ref}")
    return o


def position_out(p: PositionRec) -> dict[str, Any]:
    return {"option": opt_out(p.option), "contracts": p.contracts,
            "avg_premium": p.avg_premium, "entry_ts": ts_out(p.entry_ts),
            "opened_day": p.opened_day.isoformat(), "strategy": p.strategy,
            "entry_intent": p.entry_intent, "managed": p.managed,
            "child_refs": list(p.child_refs), "exit_intent": p.exit_intent}


def position_in(d: Mapping[str, Any]) -> PositionRec:
    option = opt_in(d["option"])
    strategy = d["strategy"]
    if option is None or strategy not in ("A", "B", "C"):
        raise ValueError(f"bad position {d!r}")
    return PositionRec(option=option, contracts=int(d["contracts"]),
                       avg_premium=float(d["avg_premium"]), entry_ts=ts_required(d["entry_ts"]),
                       opened_day=dt.date.fromisoformat(str(d["opened_day"])),
                       strategy=strategy, entry_intent=d["entry_intent"],
                       managed=bool(d["managed"]), child_refs=[str(r) for r in d["child_refs"]],
                       exit_intent=d["exit_intent"])


def fill_out(f: FillRec) -> dict[str, Any]:
    return {"exec_id": f.exec_id, "ref": f.ref, "intent_id": f.intent_id,
            "option_key": f.option_key, "side": f.side, "contracts": f.contracts,
            "price": f.price, "time": ts_out(f.time), "opening": f.opening,
            "gross_pnl": f.gross_pnl, "commission": f.commission, "reported": f.reported,
            "opened_day": f.opened_day.isoformat() if f.opened_day else None}


def fill_in(d: Mapping[str, Any]) -> FillRec:
    side = d["side"]
    if side not in ("BUY", "SELL"):
        raise ValueError(f"bad fill {d!r}")
    return FillRec(exec_id=str(d["exec_id"]), ref=str(d["ref"]), intent_id=str(d["intent_id"]),
                   option_key=str(d["option_key"]), side=side, contracts=int(d["contracts"]),
                   price=float(d["price"]), time=ts_required(d["time"]), opening=bool(d["opening"]),
                   gross_pnl=float(d["gross_pnl"]), commission=opt_float(d["commission"]),
                   reported=bool(d["reported"]),
                   opened_day=dt.date.fromisoformat(d["opened_day"]) if d["opened_day"]
                   else None)
