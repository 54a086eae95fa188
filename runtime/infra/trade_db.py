"""The trade history in SQLite: every line of `logs/trades.jsonl`, and the trades built from them.

Why a follower of trades.jsonl rather than a second writer beside it: the JSONL file is the
record OrderRouter writes (decisions, orders, fills, exits, P&L); the database is the same facts
in a form that can be queried (`python -m tools.trades`, `/api/trades`, the console). By reading
the file it is equal to it by construction, it never adds work on the order path, and after a
crash (kill -9 between a line and its row) the next `sync()` simply catches up.

    records   one row per complete trades.jsonl line, verbatim (`doc`), in file order
    trades    one row per round trip on a contract: opened by the first opening fill, closed
              when as many contracts were sold as bought; entry and exit orders, fills,
              commissions, strategy, exit reason and net P&L (fills' realised P&L, which is net
              of commissions)
    cursor    how far into the file the table is (byte offset), committed in the same
              transaction as the rows it covers: exactly once, even across kill -9

stdlib sqlite3 in WAL mode: readers (the console, the tool) never block the writer and a
process killed mid-transaction leaves the last committed state. All calls are synchronous and
short; the bot makes them from a worker thread, never on an actor's task.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import sqlite3
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from config.market_calendar import ET

DB_FILE = "trades.sqlite3"
"""STATE_DIR/trades.sqlite3: it survives restarts like the rest of the bot's state."""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS records (
    id        INTEGER PRIMARY KEY,
    key       TEXT NOT NULL UNIQUE,      -- sha1 of the line: a re-read never duplicates
    ts        TEXT NOT NULL,
    kind      TEXT NOT NULL,
    mode      TEXT,
    intent_id TEXT,
    order_ref TEXT,
    contract  TEXT,
    doc       TEXT NOT NULL              -- the JSON line as written
);
CREATE INDEX IF NOT EXISTS records_intent ON records(intent_id);
CREATE INDEX IF NOT EXISTS records_ref ON records(order_ref);
CREATE INDEX IF NOT EXISTS records_kind_ts ON records(kind, ts);   -- a day's fills
CREATE TABLE IF NOT EXISTS trades (
    id            INTEGER PRIMARY KEY,
    contract      TEXT NOT NULL,
    mode          TEXT,
    strategy      TEXT,
    entry_intent  TEXT,
    exit_intent   TEXT,
    exit_reason   TEXT,
    opened_ts     TEXT NOT NULL,
    closed_ts     TEXT,
    bought        INTEGER NOT NULL DEFAULT 0,
    sold          INTEGER NOT NULL DEFAULT 0,
    cost          REAL NOT NULL DEFAULT 0,   -- premium paid, per share x contracts
    proceeds      REAL NOT NULL DEFAULT 0,
    commissions   REAL NOT NULL DEFAULT 0,
    pnl           REAL NOT NULL DEFAULT 0,   -- USD, net of commissions
    fills         INTEGER NOT NULL DEFAULT 0,
    orders        TEXT NOT NULL DEFAULT '[]' -- JSON list of order refs (entry and exit orders)
);
CREATE INDEX IF NOT EXISTS trades_open ON trades(contract, closed_ts);
CREATE TABLE IF NOT EXISTS cursor (
    id     INTEGER PRIMARY KEY CHECK (id = 1),
    offset INTEGER NOT NULL,
    head   TEXT NOT NULL                     -- sha1 of the file's first line: a new file resets
);
"""


@dataclass(frozen=True)
class Trade:
    """One round trip, as the operator reads it."""

    id: int
    contract: str
    mode: str | None
    strategy: str | None
    entry_intent: str | None
    exit_intent: str | None
    exit_reason: str | None
    opened_ts: str
    closed_ts: str | None
    contracts: int
    entry_price: float | None      # average premium per share
    exit_price: float | None
    commissions: float
    pnl: float
    fills: int
    orders: tuple[str, ...]

    @property
    def closed(self) -> bool:
        return self.closed_ts is not None

    def as_dict(self) -> dict[str, Any]:
        out = dict(self.__dict__)
        out["orders"] = list(self.orders)
        out["closed"] = self.closed
        return out


@dataclass(frozen=True)
class SyncResult:
    added: int          # records added by this call
    skipped: int        # lines that were not JSON (a line torn by a crash); counted, not fatal
    offset: int


def _et_day(ts: str) -> dt.date:
    return dt.datetime.fromisoformat(ts.replace("Z", "+00:00")).astimezone(ET).date()


class TradeDb:
    """One connection to the trade history. Thread-safe (one lock): the bot calls it from
    worker threads, the console's readers and the follower share it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None,
                                   timeout=10.0)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")   # WAL: durable at checkpoint, never torn
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextlib.contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    # -- following trades.jsonl ---------------------------------------------------------
    def sync(self, jsonl: Path) -> SyncResult:
        """Add the complete lines written to `jsonl` since the last sync (one transaction)."""
        try:
            with jsonl.open("rb") as f:
                first = f.readline()
                head = hashlib.sha1(first).hexdigest() if first.endswith(b"\n") else ""
                with self._write() as db:
                    row = db.execute("SELECT offset, head FROM cursor WHERE id = 1").fetchone()
                    offset = int(row["offset"]) if row and row["head"] == head else 0
                    f.seek(0, 2)
                    if f.tell() < offset:
                        offset = 0                      # truncated or replaced: re-read
                    f.seek(offset)
                    data = f.read()
                    end = data.rfind(b"\n") + 1         # a torn last line waits for its end
                    added = skipped = 0
                    for raw in data[:end].splitlines():
                        if not raw.strip():
                            continue
                        try:
                            doc = json.loads(raw)
                        except ValueError:
                            skipped += 1
                            continue
                        if isinstance(doc, dict) and self._add(db, raw, doc):
                            added += 1
                    offset += end
                    db.execute("INSERT INTO cursor(id, offset, head) VALUES (1, ?, ?) "
                               "ON CONFLICT(id) DO UPDATE SET offset = excluded.offset, "
                               "head = excluded.head", (offset, head))
        except FileNotFoundError:
            return SyncResult(0, 0, 0)
        return SyncResult(added, skipped, offset)

    def _add(self, db: sqlite3.Connection, raw: bytes, doc: dict[str, Any]) -> bool:
        key = hashlib.sha1(raw).hexdigest()
        ts, kind = str(doc.get("ts", "")), str(doc.get("kind", ""))
        cur = db.execute(
            "INSERT OR IGNORE INTO records(key, ts, kind, mode, intent_id, order_ref, contract, "
            "doc) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (key, ts, kind, doc.get("mode"), doc.get("intent_id"), doc.get("order_ref"),
             doc.get("contract"), raw.decode("utf-8", "replace")))
        if cur.rowcount == 0:
            return False
        if kind == "fill" and doc.get("contract"):
            self._add_fill(db, doc)
        return True

    def _add_fill(self, db: sqlite3.Connection, f: dict[str, Any]) -> None:
        contract, ts = str(f["contract"]), str(f.get("ts", ""))
        qty = int(f.get("quantity") or 0)
        price = float(f.get("price") or 0.0)
        row = db.execute("SELECT * FROM trades WHERE contract = ? AND closed_ts IS NULL "
                         "ORDER BY id DESC LIMIT 1", (contract,)).fetchone()
        opening = bool(f.get("opening"))
        if row is None:
            strategy = self._field(db, f.get("intent_id"), ("order_intent", "decision"),
                                   "strategy") if opening else None
            db.execute("INSERT INTO trades(contract, mode, strategy, entry_intent, opened_ts) "
                       "VALUES (?, ?, ?, ?, ?)",
                       (contract, f.get("mode"), strategy,
                        f.get("intent_id") if opening else None, ts))
            row = db.execute("SELECT * FROM trades WHERE id = last_insert_rowid()").fetchone()
        orders = json.loads(row["orders"])
        if f.get("order_ref") and f["order_ref"] not in orders:
            orders.append(f["order_ref"])
        bought, sold = int(row["bought"]), int(row["sold"])
        cost, proceeds = float(row["cost"]), float(row["proceeds"])
        exit_intent, exit_reason = row["exit_intent"], row["exit_reason"]
        if opening:
            bought += qty
            cost += price * qty
        else:
            sold += qty
            proceeds += price * qty
            exit_intent = f.get("intent_id") or exit_intent
            exit_reason = (self._field(db, f.get("intent_id"), ("exit",), "reason")
                           or self._role(db, f.get("order_ref")) or exit_reason)
        closed = ts if sold >= bought and sold > 0 else None
        db.execute(
            "UPDATE trades SET bought = ?, sold = ?, cost = ?, proceeds = ?, "
            "commissions = commissions + ?, pnl = pnl + ?, fills = fills + 1, orders = ?, "
            "exit_intent = ?, exit_reason = ?, closed_ts = ? WHERE id = ?",
            (bought, sold, cost, proceeds, float(f.get("commission") or 0.0),
             float(f.get("realized_pnl") or 0.0), json.dumps(orders), exit_intent, exit_reason,
             closed, row["id"]))

    @staticmethod
    def _field(db: sqlite3.Connection, intent_id: Any, kinds: tuple[str, ...],
               name: str) -> str | None:
        if not intent_id:
            return None
        marks = ",".join("?" * len(kinds))
        for row in db.execute(f"SELECT doc FROM records WHERE intent_id = ? AND kind IN "
                              f"({marks}) ORDER BY id DESC", (intent_id, *kinds)):
            value = json.loads(row["doc"]).get(name)
            if value:
                return str(value)
        return None

    @staticmethod
    def _role(db: sqlite3.Connection, order_ref: Any) -> str | None:
        """The exit reason of a bracket child: its role (take_profit, stop_loss)."""
        if not order_ref:
            return None
        row = db.execute("SELECT doc FROM records WHERE order_ref = ? AND kind = 'order' "
                         "ORDER BY id DESC LIMIT 1", (order_ref,)).fetchone()
        role = json.loads(row["doc"]).get("role") if row else None
        return str(role) if role else None

    # -- reading ------------------------------------------------------------------------
    def records(self) -> list[dict[str, Any]]:
        with self._lock:
            rows = self._db.execute("SELECT doc FROM records ORDER BY id").fetchall()
        return [json.loads(r["doc"]) for r in rows]

    def trades(self, *, limit: int | None = None) -> list[Trade]:
        """Newest first."""
        sql = "SELECT * FROM trades ORDER BY opened_ts DESC, id DESC"
        with self._lock:
            rows = self._db.execute(sql + (" LIMIT ?" if limit else ""),
                                    (limit,) if limit else ()).fetchall()
        return [_trade(r) for r in rows]

    def day_pnl(self, day: dt.date) -> float:
        """Realised P&L (net) of the fills of one ET trading day (an index range, one sum)."""
        def bound(d: dt.date) -> str:
            return dt.datetime.combine(d, dt.time(), tzinfo=ET).astimezone(dt.UTC).strftime(
                "%Y-%m-%dT%H:%M:%S")
        with self._lock:
            row = self._db.execute(
                "SELECT sum(json_extract(doc, '$.realized_pnl')) FROM records "
                "WHERE kind = 'fill' AND ts >= ? AND ts < ?",
                (bound(day), bound(day + dt.timedelta(days=1)))).fetchone()
        return round(float(row[0] or 0.0), 2)


def _trade(r: sqlite3.Row) -> Trade:
    bought, sold = int(r["bought"]), int(r["sold"])
    return Trade(id=int(r["id"]), contract=r["contract"], mode=r["mode"], strategy=r["strategy"],
                 entry_intent=r["entry_intent"], exit_intent=r["exit_intent"],
                 exit_reason=r["exit_reason"], opened_ts=r["opened_ts"],
                 closed_ts=r["closed_ts"], contracts=max(bought, sold),
                 entry_price=round(r["cost"] / bought, 4) if bought else None,
                 exit_price=round(r["proceeds"] / sold, 4) if sold else None,
                 commissions=round(float(r["commissions"]), 2), pnl=round(float(r["pnl"]), 2),
                 fills=int(r["fills"]), orders=tuple(json.loads(r["orders"])))


# -- statistics (the tool and the console) -------------------------------------------------
@dataclass(frozen=True)
class Stats:
    closed: int
    wins: int
    pnl: float
    max_drawdown: float            # the largest fall of cumulative closed-trade P&L from a peak
    daily: tuple[tuple[str, float, int], ...]    # (ET day, P&L, trades closed)
    weekly: tuple[tuple[str, float, int], ...]   # (ISO week, P&L, trades closed)

    @property
    def win_rate(self) -> float | None:
        return self.wins / self.closed if self.closed else None

    def as_dict(self) -> dict[str, Any]:
        return {"closed": self.closed, "wins": self.wins, "win_rate": self.win_rate,
                "pnl": self.pnl, "max_drawdown": self.max_drawdown,
                "daily": [{"day": d, "pnl": p, "trades": n} for d, p, n in self.daily],
                "weekly": [{"week": w, "pnl": p, "trades": n} for w, p, n in self.weekly]}


def stats(trades: list[Trade]) -> Stats:
    closed = sorted((t for t in trades if t.closed_ts), key=lambda t: (t.closed_ts, t.id))
    daily: dict[str, list[float]] = {}
    weekly: dict[str, list[float]] = {}
    peak = cum = drawdown = 0.0
    for t in closed:
        assert t.closed_ts is not None
        day = _et_day(t.closed_ts)
        year, week, _ = day.isocalendar()
        daily.setdefault(day.isoformat(), []).append(t.pnl)
        weekly.setdefault(f"{year}-W{week:02d}", []).append(t.pnl)
        cum += t.pnl
        peak = max(peak, cum)
        drawdown = max(drawdown, peak - cum)
    return Stats(closed=len(closed), wins=sum(1 for t in closed if t.pnl > 0),
                 pnl=round(cum, 2), max_drawdown=round(drawdown, 2),
                 daily=tuple((k, round(sum(v), 2), len(v)) for k, v in daily.items()),
                 weekly=tuple((k, round(sum(v), 2), len(v)) for k, v in weekly.items()))
