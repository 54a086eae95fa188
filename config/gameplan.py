"""The daily gameplan (`daily_gameplan.json`): schema, loading, and the audit of changes.

The operator writes it each morning; the bot trades only by it. The earlier bots loaded it
without a schema, without the operator check and without the date check, and a stale plan ran
for days. Here every field is typed and bounded, unknown fields are refused (a typo must not
silently fall back to a default), and anything wrong raises a `GameplanError` whose message
names the field and the reason, e.g.

    gameplan field 'hard_limits.pdt_trades_remaining': must be between 0 and 3, got 5

The caller (the StrategySelector actor) turns any GameplanError into Strategy C plus a
critical alert carrying that message. Validation is strict: `"3"` is not a number and
`"true"` is not a boolean, because a plan that says something odd should not be guessed at.
A UTF-8 BOM (Windows Notepad) and UTF-16 with a BOM (PowerShell's `Out-File`) are accepted.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    JsonValue,
    ValidationError,
)

from config.gameplan_problems import GameplanProblem, problems_from, show_value
from config.market_calendar import ET

GAMEPLAN_SYMBOLS = ("SPY", "QQQ", "IWM")
DEFAULT_ENTRY_WINDOW = (dt.time(10, 0), dt.time(15, 30))
"""Entries only between these ET wall times when the plan names no window (crucible example)."""

MAX_GAMEPLAN_BYTES = 1_000_000
_SESSION_ID = re.compile(r"^gauntlet_(\d{8})_(\d{4})$")
_HHMM = re.compile(r"^(\d{2}):(\d{2})$")

Regime = Literal["complacency", "normal", "elevated", "high_volatility", "crisis", "unknown"]
PlanStrategy = Literal["A", "B", "C"]
PlanSymbol = Literal["SPY", "QQQ", "IWM"]


def _parse_hhmm(value: object) -> object:
    """`"HH:MM"` (24 h, US/Eastern wall time) to a time; anything else is refused."""
    if isinstance(value, dt.time):
        return value
    if not isinstance(value, str):
        raise ValueError(f"must be a string \"HH:MM\", got {show_value(value)}")
    m = _HHMM.match(value)
    if m is None or int(m.group(1)) > 23 or int(m.group(2)) > 59:
        raise ValueError(f"must be a time \"HH:MM\" (00:00-23:59, ET), got {show_value(value)}")
    return dt.time(int(m.group(1)), int(m.group(2)))


HHMM = Annotated[dt.time, BeforeValidator(_parse_hhmm)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, allow_inf_nan=False)


class HardLimits(_Strict):
    max_daily_loss_pct: float = Field(ge=0, le=1)
    pdt_trades_remaining: int = Field(ge=0, le=3)
    weekly_drawdown_governor_active: bool
    max_intraday_pivots: int = Field(ge=0, le=20)
    max_single_position: float | None = Field(default=None, ge=0)
    force_close_at_dte: int | None = Field(default=None, ge=0, le=30)
    max_weekly_drawdown_pct: float | None = Field(default=None, ge=0, le=1)


class DataQuality(_Strict):
    quarantine_active: bool
    last_verified: AwareDatetime | None
    stale_fields: tuple[str, ...] = ()
    discrepancy_count: int = Field(default=0, ge=0)


class Catalyst(_Strict):
    """A catalyst with a stated impact. A plain-string catalyst has UNKNOWN impact and is
    counted as high impact (fail closed); write {type, impact} to say otherwise."""

    type: str = Field(min_length=1)
    impact: Literal["low", "medium", "high"]
    description: str | None = None


class VixGate(_Strict):
    """At `check_time` (ET) the LIVE VIX must be below `threshold`, else C for the day."""

    check_time: HHMM
    threshold: float = Field(gt=0, le=100)


class StrategyParameters(_Strict):
    """Overrides of the doctrine's numbers for the plan's own strategy (all optional).

    Names follow the operator's earlier bots (`rsi_oversold`, `bollinger_period`, `OTM1`).
    """

    ema_fast: int | None = Field(default=None, ge=1, le=500)
    ema_slow: int | None = Field(default=None, ge=2, le=500)
    rsi_period: int | None = Field(default=None, ge=2, le=500)
    rsi_min: float | None = Field(default=None, ge=0, le=100)
    rsi_max: float | None = Field(default=None, ge=0, le=100)
    rsi_oversold: float | None = Field(default=None, ge=0, le=100)
    rsi_overbought: float | None = Field(default=None, ge=0, le=100)
    bollinger_period: int | None = Field(default=None, ge=2, le=500)
    bollinger_std: float | None = Field(default=None, gt=0, le=10)
    take_profit_pct: float | None = Field(default=None, gt=0, le=10)
    stop_loss_pct: float | None = Field(default=None, gt=0, lt=1)
    time_stop_minutes: int | None = Field(default=None, ge=1, le=1440)
    min_dte: int | None = Field(default=None, ge=1, le=60)
    max_dte: int | None = Field(default=None, ge=1, le=365)
    moneyness: Literal["ATM", "OTM1"] | None = None
    vix_ceiling: float | None = Field(default=None, gt=0, le=100)
    premium_max_usd: float | None = Field(default=None, gt=0)
    max_spread_pct: float | None = Field(default=None, gt=0, le=1)
    min_option_volume: int | None = Field(default=None, ge=0)
    min_open_interest: int | None = Field(default=None, ge=0)


class Gameplan(_Strict):
    """The schema of crucible.md. Required fields first, then the optional ones."""

    date: dt.date
    session_id: str
    regime: Regime
    strategy: PlanStrategy
    symbols: tuple[PlanSymbol, ...] = Field(max_length=2)
    operator_id: str = Field(min_length=1)
    hard_limits: HardLimits
    data_quality: DataQuality

    position_size_multiplier: float = Field(default=1.0, ge=0, le=1)
    vix_at_analysis: float | None = Field(default=None, ge=0)
    vix_source_verified: bool | None = None
    bias: Literal["bullish", "bearish", "neutral"] | None = None
    expected_behavior: str | None = None
    key_levels: dict[str, Annotated[float, Field(gt=0)]] = Field(default_factory=dict)
    catalysts: tuple[str | Catalyst, ...] = ()
    earnings_blackout: tuple[str, ...] = ()
    geo_risk: Literal["low", "medium", "high"] | None = None
    alert_message: str | None = None
    scorecard: dict[str, JsonValue] | None = None
    entry_window_start: HHMM | None = None
    entry_window_end: HHMM | None = None
    vix_gate: VixGate | None = None
    max_risk_per_trade: float | None = Field(default=None, ge=0)
    max_risk_ceiling: float | None = Field(default=None, ge=0)
    cro_conditions: tuple[str, ...] = ()
    strategy_parameters: StrategyParameters | None = None

    # -- derived views -----------------------------------------------------------------------
    @property
    def entry_window(self) -> tuple[dt.time, dt.time]:
        return (self.entry_window_start or DEFAULT_ENTRY_WINDOW[0],
                self.entry_window_end or DEFAULT_ENTRY_WINDOW[1])

    @property
    def high_impact_catalysts(self) -> int:
        """Catalysts of high OR unknown impact (plain strings): fail closed."""
        return sum(1 for c in self.catalysts if isinstance(c, str) or c.impact == "high")

    @property
    def earnings_catalysts(self) -> list[str]:
        """Catalysts about earnings: typed `earnings`, or a plain string mentioning it."""
        found = []
        for c in self.catalysts:
            if isinstance(c, str):
                if "earning" in c.lower():
                    found.append(c)
            elif "earning" in c.type.lower():
                found.append(c.type if c.description is None else f"{c.type}: {c.description}")
        return found

    @property
    def produced_at(self) -> dt.datetime | None:
        """When the morning gauntlet produced the plan (from `session_id`, US/Eastern)."""
        m = _SESSION_ID.match(self.session_id)
        if m is None:
            return None
        day = dt.datetime.strptime(m.group(1), "%Y%m%d").date()
        at = dt.time(int(m.group(2)[:2]), int(m.group(2)[2:]))
        return dt.datetime.combine(day, at, tzinfo=ET)

    def for_day(self, day: dt.date) -> Gameplan:
        """The same plan dated `day` (replay applies one plan to every replayed session)."""
        m = _SESSION_ID.match(self.session_id)
        hhmm = m.group(2) if m is not None else "0900"
        return self.model_copy(update={"date": day,
                                       "session_id": f"gauntlet_{day:%Y%m%d}_{hhmm}"})


# -- errors ------------------------------------------------------------------------------------
class GameplanError(Exception):
    """The plan cannot be used: the caller selects Strategy C and raises a critical alert."""

    kind: ClassVar[str] = "error"

    def __init__(self, message: str, *, path: Path | None = None,
                 problems: Sequence[GameplanProblem] = ()) -> None:
        super().__init__(message)
        self.path = path
        self.problems = tuple(problems)

    @property
    def field(self) -> str | None:
        return self.problems[0].field if self.problems else None


class GameplanMissing(GameplanError):
    kind = "missing"


class GameplanUnreadable(GameplanError):
    kind = "unreadable"


class GameplanInvalidJson(GameplanError):
    kind = "invalid_json"


class GameplanInvalid(GameplanError):
    kind = "invalid"


class GameplanStale(GameplanError):
    kind = "stale"


class GameplanWrongOperator(GameplanError):
    kind = "wrong_operator"


# -- loading -----------------------------------------------------------------------------------
def load_gameplan(path: Path, *, today_et: dt.date, operator_id: str | None) -> Gameplan:
    """Read, validate and check the plan for today. Raises a GameplanError subclass."""
    plan = read_gameplan(path)
    check_gameplan_applies(plan, today_et=today_et, operator_id=operator_id)
    return plan


def read_gameplan(path: Path) -> Gameplan:
    """Read and validate the schema only (no date or operator check: see `load_gameplan`)."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise GameplanMissing(f"gameplan file {path} does not exist", path=path) from None
    except OSError as exc:
        raise GameplanUnreadable(
            f"gameplan file {path} cannot be read: {exc.strerror or exc}", path=path) from None
    return parse_gameplan(raw, path=path)


def parse_gameplan(raw: bytes | str, *, path: Path | None = None) -> Gameplan:
    """Validate plan text (bytes may carry a UTF-8 or UTF-16 BOM)."""
    where = f"gameplan file {path}" if path is not None else "gameplan"
    text = _decode(raw, where, path) if isinstance(raw, bytes) else raw.removeprefix("\ufeff")
    if not text.strip():
        raise GameplanInvalidJson(f"{where} is empty", path=path)
    try:
        obj = json.loads(text, object_pairs_hook=_refuse_duplicate_keys,
                         parse_constant=_refuse_constant)
    except json.JSONDecodeError as exc:
        raise GameplanInvalidJson(
            f"{where} is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}",
            path=path) from None
    except ValueError as exc:
        raise GameplanInvalidJson(f"{where} is not valid JSON: {exc}", path=path) from None
    if not isinstance(obj, dict):
        raise GameplanInvalid(f"{where} must be a JSON object, got {type(obj).__name__}",
                              path=path, problems=[GameplanProblem("<root>", "must be an object")])
    try:
        plan = Gameplan.model_validate_json(text)
    except ValidationError as exc:
        problems = problems_from(exc, Gameplan, {"Catalyst": Catalyst})
        raise GameplanInvalid("; ".join(str(p) for p in problems), path=path,
                              problems=problems) from None
    problems = semantic_problems(plan)
    if problems:
        raise GameplanInvalid("; ".join(str(p) for p in problems), path=path,
                              problems=problems)
    return plan


def check_gameplan_applies(plan: Gameplan, *, today_et: dt.date,
                           operator_id: str | None) -> None:
    """The plan is today's (US/Eastern) and the configured operator's."""
    if not operator_id:
        raise GameplanWrongOperator(
            "OPERATOR_ID is not configured: no gameplan can be accepted",
            problems=[GameplanProblem("operator_id", "OPERATOR_ID is not configured")])
    if plan.operator_id != operator_id:
        problem = GameplanProblem(
            "operator_id", f"{plan.operator_id!r} does not match the configured OPERATOR_ID "
                           f"{operator_id!r}")
        raise GameplanWrongOperator(str(problem), problems=[problem])
    if plan.date != today_et:
        problem = GameplanProblem(
            "date", f"plan is for {plan.date.isoformat()}, today (ET) is "
                    f"{today_et.isoformat()}")
        raise GameplanStale(str(problem), problems=[problem])


def semantic_problems(plan: Gameplan) -> list[GameplanProblem]:
    """Rules that span fields (types and ranges are the schema's job)."""
    problems: list[GameplanProblem] = []
    m = _SESSION_ID.match(plan.session_id)
    if m is None:
        problems.append(GameplanProblem(
            "session_id",
            f"must look like gauntlet_YYYYMMDD_HHMM, got {show_value(plan.session_id)}"))
    else:
        try:
            dt.datetime.strptime(m.group(1) + m.group(2), "%Y%m%d%H%M")
        except ValueError:
            problems.append(GameplanProblem(
                "session_id",
                f"has no valid date and time in it, got {show_value(plan.session_id)}"))
    if len(set(plan.symbols)) != len(plan.symbols):
        problems.append(GameplanProblem("symbols", f"lists a symbol twice: {list(plan.symbols)}"))
    if plan.strategy in ("A", "B") and not plan.symbols:
        problems.append(GameplanProblem(
            "symbols", f"strategy {plan.strategy} needs at least one symbol, got []"))
    start, end = plan.entry_window
    if not start < end:
        problems.append(GameplanProblem(
            "entry_window_end", f"must be after entry_window_start ({start:%H:%M}), "
                                f"got {end:%H:%M}"))
    for i, sym in enumerate(plan.earnings_blackout):
        if not re.fullmatch(r"[A-Z][A-Z.]{0,9}", sym):
            problems.append(GameplanProblem(f"earnings_blackout[{i}]",
                                            f"must be a ticker symbol, got {show_value(sym)}"))
    sp = plan.strategy_parameters
    if sp is not None:
        fast = sp.ema_fast if sp.ema_fast is not None else 8
        slow = sp.ema_slow if sp.ema_slow is not None else 21
        if fast >= slow:
            problems.append(GameplanProblem(
                "strategy_parameters.ema_fast", f"must be shorter than ema_slow ({slow}), "
                                                f"got {fast}"))
        lo = sp.rsi_min if sp.rsi_min is not None else 50.0
        hi = sp.rsi_max if sp.rsi_max is not None else 65.0
        if lo >= hi:
            problems.append(GameplanProblem(
                "strategy_parameters.rsi_min", f"must be below rsi_max ({hi:g}), got {lo:g}"))
        lo = sp.rsi_oversold if sp.rsi_oversold is not None else 30.0
        hi = sp.rsi_overbought if sp.rsi_overbought is not None else 70.0
        if lo >= hi:
            problems.append(GameplanProblem(
                "strategy_parameters.rsi_oversold",
                f"must be below rsi_overbought ({hi:g}), got {lo:g}"))
        if sp.min_dte is not None and sp.max_dte is not None and sp.min_dte > sp.max_dte:
            problems.append(GameplanProblem(
                "strategy_parameters.max_dte",
                f"must not be below min_dte ({sp.min_dte}), got {sp.max_dte}"))
    return problems


def gameplan_fingerprint(path: Path) -> str | None:
    """A digest of the file's bytes (None if absent or unreadable): re-read when it changes."""
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


# -- the audit line ----------------------------------------------------------------------------
def describe_plan_changes(old: Gameplan | None, new: Gameplan | None) -> str:
    """One audit line of what changed, e.g. `strategy: A -> C; symbols: [QQQ] -> []`."""
    if old is None and new is None:
        return "no gameplan"
    if new is None:
        return f"gameplan withdrawn (was {old.session_id if old else '?'})"
    if old is None:
        return (f"new gameplan {new.session_id}: strategy {new.strategy}, symbols "
                f"{_fmt(list(new.symbols))}, regime {new.regime}, multiplier "
                f"{new.position_size_multiplier:g}")
    before = _flatten(old.model_dump(mode="json"))
    after = _flatten(new.model_dump(mode="json"))
    changes = [f"{key}: {_fmt(before.get(key))} -> {_fmt(after.get(key))}"
               for key in _ordered_keys(before, after) if before.get(key) != after.get(key)]
    return "; ".join(changes) if changes else "no change"


def _ordered_keys(a: dict[str, Any], b: dict[str, Any]) -> list[str]:
    keys = list(a)
    keys.extend(k for k in b if k not in a)
    return keys


def _flatten(obj: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in obj.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value and key not in ("key_levels", "scorecard"):
            out.update(_flatten(value, name + "."))
        else:
            out[name] = value
    return out


def _fmt(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + ", ".join(_fmt(v) for v in value) + "]"
    if isinstance(value, dict):
        return json.dumps(value, sort_keys=True)
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


# -- decoding and error translation ------------------------------------------------------------
def _decode(raw: bytes, where: str, path: Path | None) -> str:
    if len(raw) > MAX_GAMEPLAN_BYTES:
        raise GameplanInvalidJson(f"{where} is {len(raw)} bytes: too large for a gameplan",
                                  path=path)
    try:
        if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
            return raw.decode("utf-16")
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise GameplanUnreadable(
            f"{where} is not UTF-8 text (byte {exc.start}: {exc.reason})", path=path) from None


def _refuse_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"duplicate key {key!r} (which one was meant?)")
        out[key] = value
    return out


def _refuse_constant(name: str) -> float:
    raise ValueError(f"{name} is not a number a gameplan may contain")
