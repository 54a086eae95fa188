"""Deterministic intraday prices for one symbol: CSV replay where there is data, a seeded walk
everywhere else.

The unit of truth is the one-minute bar of a regular session (`DayBars`). Everything finer is
derived from it by a fixed rule, so every view agrees with every other view:

* inside a minute the price follows a 13-point path (open → high/low → close) whose 12 legs are
  the 5-second real-time bars; the 5-second bars of a minute aggregate exactly to the minute;
* a tick at any instant is the path interpolated at that instant;
* any longer bar (5 min, 1 hour, a day) is the aggregate of its minutes.

A CSV day is served exactly (its rows *are* the minute bars). Days without CSV rows come from a
walk whose daily closes form one chain over the whole calendar (mean-reverting, seeded by the
symbol and the seed), anchored on the CSV when there is one — so the walk continues from the last
CSV price when the file runs out, and history requested later agrees with what was streamed.
"""

from __future__ import annotations

import bisect
import csv
import datetime as dt
import functools
import itertools
import logging
import math
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from config.market_calendar import ET, UTC, MarketCalendar, Session

log = logging.getLogger("tools.fake_gateway.series")

SUB_BARS = 12               # 5-second legs per minute
SUB_SECONDS = 5
_MASK = (1 << 64) - 1
_DAY_CACHE = 48             # sessions of minute bars kept per symbol
_PATH_CACHE = 256           # minute paths kept per symbol


def mix64(x: int) -> int:
    """splitmix64: a cheap, well-spread integer hash (deterministic across platforms)."""
    x = (x + 0x9E3779B97F4A7C15) & _MASK
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK
    return x ^ (x >> 31)


@dataclass(frozen=True, slots=True)
class OHLCV:
    open: float
    high: float
    low: float
    close: float
    volume: float

    def merge(self, later: OHLCV) -> OHLCV:
        return OHLCV(self.open, max(self.high, later.high), min(self.low, later.low),
                     later.close, self.volume + later.volume)


def merge_all(parts: Sequence[OHLCV]) -> OHLCV | None:
    if not parts:
        return None
    out = parts[0]
    for p in parts[1:]:
        out = out.merge(p)
    return out


def path_points(o: float, h: float, low: float, c: float, legs: int, key: int,
                decimals: int = 4) -> list[float]:
    """`legs + 1` prices from o to c that touch h and low exactly (up bars dip first)."""
    if legs < 3:
        raise ValueError("a bar path needs at least 3 legs to touch both its high and low")
    r = mix64(key)
    half = legs // 2
    i1 = 1 + r % half
    i2 = half + 1 + (r >> 21) % (legs - half - 1)
    first, second = (low, h) if c >= o else (h, low)
    anchors = ((0, o), (i1, first), (i2, second), (legs, c))
    pts = [0.0] * (legs + 1)
    for (a, pa), (b, pb) in itertools.pairwise(anchors):
        for i in range(a, b + 1):
            if i == a:
                pts[i] = pa
            elif i == b:
                pts[i] = pb
            else:
                pts[i] = round(pa + (pb - pa) * (i - a) / (b - a), decimals)
    return pts


def split_volume(volume: float, parts: int, key: int) -> list[float]:
    """Split a volume into `parts` uneven pieces that sum exactly to it."""
    if volume <= 0 or parts <= 0:
        return [0.0] * parts
    weights = [0.5 + (mix64(key * 31 + i) & 0xFFFF) / 65535.0 for i in range(parts)]
    total_w = sum(weights)
    if volume == int(volume):
        whole = int(volume)
        pieces = [int(whole * w / total_w) for w in weights]
        rest = whole - sum(pieces)
        for i in range(rest):
            pieces[i % parts] += 1
        return [float(p) for p in pieces]
    pieces_f = [volume * w / total_w for w in weights]
    pieces_f[-1] = volume - sum(pieces_f[:-1])
    return pieces_f


@dataclass(frozen=True, slots=True)
class CsvRow:
    start: dt.datetime      # UTC
    minutes: int            # bar length
    bar: OHLCV


def load_bars_csv(path: Path) -> list[CsvRow]:
    """`timestamp,open,high,low,close,volume` (intraday, bar start) or `date,open,high,low,close`
    (daily) → rows in time order. Bad rows raise naming the line (a corrupt replay is not data).
    Parsed files are memoized (by path, size and mtime): rows are immutable."""
    stat = path.stat()
    return list(_load_bars_csv(path.resolve(), stat.st_size, stat.st_mtime_ns))


@functools.lru_cache(maxsize=8)
def _load_bars_csv(path: Path, _size: int, _mtime_ns: int) -> tuple[CsvRow, ...]:
    rows: list[tuple[dt.datetime, OHLCV, bool]] = []
    with path.open(newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh)
        names = [n.strip().lower() for n in (reader.fieldnames or [])]
        daily = "date" in names and "timestamp" not in names
        if not daily and "timestamp" not in names:
            raise ValueError(f"{path}: needs a 'timestamp' (intraday) or 'date' (daily) column")
        for lineno, raw in enumerate(reader, start=2):
            rec = {k.strip().lower(): (v or "").strip() for k, v in raw.items() if k}
            try:
                if daily:
                    day = dt.date.fromisoformat(rec["date"])
                    start = dt.datetime.combine(day, dt.time(9, 30), ET)
                else:
                    start = dt.datetime.fromisoformat(rec["timestamp"])
                    if start.tzinfo is None:
                        start = start.replace(tzinfo=ET)
                bar = OHLCV(float(rec["open"]), float(rec["high"]), float(rec["low"]),
                            float(rec["close"]), float(rec.get("volume") or 0.0))
            except (KeyError, ValueError) as exc:
                raise ValueError(f"{path}:{lineno}: bad row ({exc})") from exc
            rows.append((start.astimezone(UTC), bar, daily))
    if not rows:
        raise ValueError(f"{path}: no rows")
    rows.sort(key=lambda r: r[0])
    if rows[0][2]:
        return tuple(CsvRow(s, 0, b) for s, b, _ in rows)     # 0 = the whole session
    deltas: dict[int, int] = {}
    for (a, _, _), (b, _, _) in itertools.pairwise(rows):
        minutes = int((b - a).total_seconds() // 60)
        if 0 < minutes <= 60:
            deltas[minutes] = deltas.get(minutes, 0) + 1
    length = max(deltas, key=lambda m: deltas[m]) if deltas else 1
    if length == 2:
        raise ValueError(f"{path}: 2-minute bars cannot be replayed (use 1 or >= 3 minutes)")
    return tuple(CsvRow(s, length, b) for s, b, _ in rows)


@dataclass(slots=True)
class DayBars:
    """The minute bars of one session (lists: scalar access is the hot path)."""

    session: Session
    o: list[float]
    h: list[float]
    low: list[float]
    c: list[float]
    v: list[float]
    from_csv: bool

    @property
    def minutes(self) -> int:
        return len(self.c)


@dataclass(frozen=True, slots=True)
class LatentScale:
    """How a price maps to the space the walk lives in (log for stocks, shifted log for VIX)."""

    to_latent: Callable[[float], float]
    from_latent: Callable[[float], float]
    decimals: int


STOCK_SCALE = LatentScale(lambda p: math.log(max(p, 0.01)), math.exp, 2)
VIX_SCALE = LatentScale(lambda v: math.log(max(v - 11.0, 0.5) / 5.0),
                        lambda x: 11.0 + 5.0 * math.exp(x), 2)


@dataclass(frozen=True, slots=True)
class WalkParams:
    code: int
    base_price: float
    daily_sd: float          # latent units
    gap_sd: float
    kappa: float             # daily mean reversion
    revert_to_base: bool     # VIX: pull towards the base level; stocks: towards the anchor
    base_volume: float       # per minute
    driver_beta: float = 0.0  # VIX: latent move per unit log-return of the driver


class PriceSeries:
    """One symbol's prices for any instant of any session in the calendar."""

    def __init__(self, symbol: str, calendar: MarketCalendar, seed: int, walk: WalkParams,
                 scale: LatentScale, csv_rows: list[CsvRow] | None = None,
                 driver: PriceSeries | None = None) -> None:
        self.symbol = symbol
        self._cal = calendar
        self._seed = seed
        self._walk = walk
        self._scale = scale
        self._driver = driver
        self._sessions = calendar.sessions(calendar.first_day, calendar.last_day)
        self._index = {s.date: i for i, s in enumerate(self._sessions)}
        self._closes_utc = [s.close for s in self._sessions]
        self._csv_days: dict[dt.date, list[CsvRow]] = {}
        if csv_rows:
            self._csv_days = self._group_csv_rows(csv_rows)
        self.csv_first = min(self._csv_days) if self._csv_days else None
        self.csv_last = max(self._csv_days) if self._csv_days else None
        self._chain: np.ndarray | None = None
        self._days: OrderedDict[dt.date, DayBars] = OrderedDict()
        self._paths: OrderedDict[tuple[dt.date, int], tuple[list[float], list[float]]] = \
            OrderedDict()
        self._warned_csv_end = False

    # -- CSV --------------------------------------------------------------------------------
    def _group_csv_rows(self, rows: list[CsvRow]) -> dict[dt.date, list[CsvRow]]:
        """Rows by session; a day's minute bars are built when first asked for (lazily)."""
        by_day: dict[dt.date, list[CsvRow]] = {}
        skipped = 0
        for row in rows:
            day = row.start.astimezone(ET).date()
            session = self._cal.session(day) if self._cal.first_day <= day <= \
                self._cal.last_day else None
            if session is None or not (session.open <= row.start < session.close):
                skipped += 1
                continue
            by_day.setdefault(day, []).append(row)
        if skipped:
            log.warning("%s: %d CSV rows fall outside regular sessions and were ignored",
                        self.symbol, skipped)
        return by_day

    def _csv_open(self, day: dt.date) -> float:
        return self._csv_days[day][0].bar.open

    def _csv_close(self, day: dt.date) -> float:
        return self._csv_days[day][-1].bar.close

    def _csv_day(self, session: Session, rows: list[CsvRow]) -> DayBars:
        n = int((session.close - session.open).total_seconds() // 60)
        slots: list[OHLCV | None] = [None] * n
        for row in rows:
            m = int((row.start - session.open).total_seconds() // 60)
            length = row.minutes or n
            if length == 1:
                slots[m] = row.bar
                continue
            length = min(length, n - m)
            if length < 3:
                slots[m] = row.bar
                continue
            b = row.bar
            key = (self._walk.code << 40) ^ (session.date.toordinal() << 12) ^ m ^ 0x5A5A
            pts = path_points(b.open, b.high, b.low, b.close, length, key)
            vols = split_volume(b.volume, length, key)
            for j in range(length):
                slots[m + j] = OHLCV(pts[j], max(pts[j], pts[j + 1]), min(pts[j], pts[j + 1]),
                                     pts[j + 1], vols[j])
        first = next((s for s in slots if s is not None), None)
        assert first is not None
        prev_close = first.open
        o: list[float] = []
        h: list[float] = []
        low: list[float] = []
        c: list[float] = []
        v: list[float] = []
        for slot in slots:
            bar = slot if slot is not None else OHLCV(prev_close, prev_close, prev_close,
                                                      prev_close, 0.0)
            o.append(bar.open)
            h.append(bar.high)
            low.append(bar.low)
            c.append(bar.close)
            v.append(bar.volume)
            prev_close = bar.close
        return DayBars(session, o, h, low, c, v, from_csv=True)

    def csv_dates(self) -> list[dt.date]:
        return sorted(self._csv_days)

    # -- the daily chain ------------------------------------------------------------------
    def _daily_chain(self) -> np.ndarray:
        if self._chain is not None:
            return self._chain
        w, sc = self._walk, self._scale
        n = len(self._sessions)
        z = np.random.default_rng([self._seed, w.code, 1]).standard_normal(n)
        chain = np.zeros(n)
        base = sc.to_latent(w.base_price)
        if self._csv_days:
            idx = sorted(self._index[d] for d in self._csv_days)
            first, last = idx[0], idx[-1]
            for i in idx:
                chain[i] = sc.to_latent(self._csv_close(self._sessions[i].date))
            csv_set = set(idx)
            for i in range(first + 1, last):
                if i in csv_set:
                    continue
                j = max(k for k in idx if k < i)
                k2 = min(k for k in idx if k > i)
                target = sc.to_latent(self._csv_open(self._sessions[k2].date))
                chain[i] = chain[j] + (target - chain[j]) * (i - j) / (k2 - j)
            fwd_anchor, fwd_target = last, chain[last]
            if first > 0:
                chain[first - 1] = sc.to_latent(self._csv_open(self._sessions[first].date))
            back_anchor, back_target = first - 1, chain[max(first - 1, 0)]
        else:
            anchor = bisect.bisect_left([s.date for s in self._sessions], dt.date(2024, 1, 2))
            anchor = min(anchor, n - 1)
            chain[anchor] = base
            fwd_anchor, fwd_target = anchor, base
            back_anchor, back_target = anchor, base
        if w.revert_to_base:
            fwd_target = back_target = base
        for i in range(fwd_anchor + 1, n):
            chain[i] = chain[i - 1] + w.daily_sd * z[i] - w.kappa * (chain[i - 1] - fwd_target)
        for i in range(back_anchor - 1, -1, -1):
            chain[i] = chain[i + 1] - w.daily_sd * z[i + 1] - w.kappa * (chain[i + 1] - back_target)
        self._chain = chain
        return chain

    # -- days -------------------------------------------------------------------------------
    def day(self, session: Session) -> DayBars:
        cached = self._days.get(session.date)
        if cached is not None:
            self._days.move_to_end(session.date)
            return cached
        csv_rows = self._csv_days.get(session.date)
        bars = self._csv_day(session, csv_rows) if csv_rows else self._walk_day(session)
        self._days[session.date] = bars
        if len(self._days) > _DAY_CACHE:
            self._days.popitem(last=False)
        return bars

    def _walk_day(self, session: Session) -> DayBars:
        w, sc = self._walk, self._scale
        if self.csv_last is not None and session.date > self.csv_last and \
                not self._warned_csv_end:
            self._warned_csv_end = True
            last_close = self._csv_close(self.csv_last)
            log.warning("%s: the CSV ends on %s; continuing with a seeded random walk from %.2f",
                        self.symbol, self.csv_last, last_close)
        chain = self._daily_chain()
        i = self._index[session.date]
        n = int((session.close - session.open).total_seconds() // 60)
        rng = np.random.default_rng([self._seed, w.code, 2, session.date.toordinal()])
        prev = chain[i - 1] if i > 0 else chain[0]
        x_open = prev + w.gap_sd * float(rng.standard_normal())
        x_close = float(chain[i])
        sd_min = w.daily_sd / math.sqrt(n)
        incr = sd_min * rng.standard_normal(n)
        if self._driver is not None and w.driver_beta:
            d = self._driver.day(session)
            closes = np.asarray(d.c)
            prev_c = np.concatenate(([d.o[0]], closes[:-1]))
            m = min(n, len(closes))
            incr[:m] += w.driver_beta * np.log(closes[:m] / prev_c[:m])
        walk = np.cumsum(incr)
        frac = np.arange(1, n + 1) / n
        x_c = x_open + walk - frac * (walk[-1] - (x_close - x_open))
        x_o = np.concatenate(([x_open], x_c[:-1]))
        wick = np.abs(rng.standard_normal((2, n))) * sd_min * 0.6
        x_h = np.maximum(x_o, x_c) + wick[0]
        x_l = np.minimum(x_o, x_c) - wick[1]
        dec = sc.decimals
        c = [round(sc.from_latent(float(x)), dec) for x in x_c]
        o = [round(sc.from_latent(x_open), dec), *c[:-1]]
        h = [max(round(sc.from_latent(float(x)), dec), oo, cc) for x, oo, cc in zip(x_h, o, c,
                                                                                   strict=True)]
        low = [min(round(sc.from_latent(float(x)), dec), oo, cc) for x, oo, cc in zip(x_l, o, c,
                                                                                     strict=True)]
        if w.base_volume > 0:
            pos = (np.arange(n) + 0.5) / n
            profile = 1.0 + 2.2 * (2.0 * pos - 1.0) ** 2
            noise = np.exp(0.35 * rng.standard_normal(n) - 0.06)
            vols = np.maximum(1.0, np.round(w.base_volume * profile / profile.mean() * noise))
            v = [float(x) for x in vols]
        else:
            v = [0.0] * n
        return DayBars(session, o, h, low, c, v, from_csv=False)

    # -- inside a minute --------------------------------------------------------------------
    def minute_path(self, day: DayBars, m: int) -> tuple[list[float], list[float]]:
        """The 13 path points and 12 leg volumes of minute `m` of `day`."""
        key = (day.session.date, m)
        cached = self._paths.get(key)
        if cached is not None:
            return cached
        seed_key = (self._walk.code << 44) ^ (day.session.date.toordinal() << 12) ^ m
        pts = path_points(day.o[m], day.h[m], day.low[m], day.c[m], SUB_BARS, seed_key,
                          decimals=4)
        vols = split_volume(day.v[m], SUB_BARS, seed_key)
        self._paths[key] = (pts, vols)
        if len(self._paths) > _PATH_CACHE:
            self._paths.popitem(last=False)
        return pts, vols

    def _leg(self, day: DayBars, u: int, frac: float) -> OHLCV:
        """5-second leg `u` (counted from the open), `frac` of it elapsed (1 = complete)."""
        m, k = divmod(u, SUB_BARS)
        pts, vols = self.minute_path(day, m)
        a, b = pts[k], pts[k + 1]
        if frac < 1.0:
            b = round(a + (b - a) * frac, 4)
            vol = math.floor(vols[k] * frac) if vols[k] == int(vols[k]) else vols[k] * frac
        else:
            vol = vols[k]
        return OHLCV(a, max(a, b), min(a, b), b, float(vol))

    # -- public queries ---------------------------------------------------------------------
    def session_at_or_before(self, t: dt.datetime) -> Session | None:
        """The session in progress at `t`, else the last one that closed before it."""
        i = bisect.bisect_left(self._closes_utc, t)
        # sessions[i] is the first whose close >= t
        if i < len(self._sessions) and self._sessions[i].open <= t:
            return self._sessions[i]
        if i == 0:
            return None
        return self._sessions[i - 1]

    def aggregate(self, session: Session, start: dt.datetime, end: dt.datetime) -> OHLCV | None:
        """The bar of [start, end) within `session` (end may cut a leg: a forming bar)."""
        start = max(start, session.open)
        end = min(end, session.close)
        if end <= start:
            return None
        day = self.day(session)
        u0 = int((start - session.open).total_seconds()) // SUB_SECONDS
        end_u = (end - session.open).total_seconds() / SUB_SECONDS
        parts: list[OHLCV] = []
        u = u0
        while u < end_u and u % SUB_BARS:
            parts.append(self._leg(day, u, min(1.0, end_u - u)))
            u += 1
        m_a, m_b = u // SUB_BARS, int(end_u // SUB_BARS)
        if m_b > m_a:
            parts.append(OHLCV(day.o[m_a], max(day.h[m_a:m_b]), min(day.low[m_a:m_b]),
                               day.c[m_b - 1], sum(day.v[m_a:m_b])))
            u = m_b * SUB_BARS
        while u < end_u:
            parts.append(self._leg(day, u, min(1.0, end_u - u)))
            u += 1
        return merge_all(parts)

    def price_at(self, t: dt.datetime) -> float:
        """The traded price at `t`; the last close when `t` is outside a session."""
        session = self.session_at_or_before(t)
        if session is None:
            return self._walk.base_price
        day = self.day(session)
        if t >= session.close:
            return day.c[-1]
        secs = (t - session.open).total_seconds()
        u = secs / SUB_SECONDS
        k_abs = min(int(u), day.minutes * SUB_BARS - 1)
        m, k = divmod(k_abs, SUB_BARS)
        pts, _ = self.minute_path(day, m)
        frac = min(1.0, u - k_abs)
        return pts[k] + (pts[k + 1] - pts[k]) * frac

    def previous_close(self, session: Session) -> float:
        prev = self._cal.previous_session(session.date)
        return self.day(prev).c[-1]

    def sub_bar(self, session: Session, u: int) -> OHLCV:
        """A complete 5-second bar (leg `u` of the session)."""
        return self._leg(self.day(session), u, 1.0)
