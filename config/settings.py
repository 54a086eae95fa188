"""Settings from the environment and `.env` (CONTRACT.md), validated once at start.

pydantic-settings does the reading and type coercion; this module adds what an operator needs:
one line naming the bad setting, the mode rule (live needs an exact acknowledgement), secrets
that never print, and refusal of settings in `.env` that look like ours but are not (a typo like
`IBKR_PROT` silently ignored would run the bot on the wrong port).
"""

from __future__ import annotations

import datetime as dt
import difflib
import enum
import hashlib
import io
import json
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from dotenv import dotenv_values
from dotenv.parser import parse_stream
from pydantic import (
    BeforeValidator,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

LIVE_TRADING_ACK_PHRASE = "I-UNDERSTAND-THIS-TRADES-REAL-MONEY"
"""The exact value LIVE_TRADING_ACK must have for live trading (README names it)."""

BOT_PREFIXES = ("IBKR_", "DRY_", "PAPER_", "LIVE_", "DISCORD_", "LOG_", "GAMEPLAN_", "STRATEGY_",
                "MAX_", "PDT_", "OPERATOR_", "STATE_", "HEALTH_", "STARTING_", "GATEWAY_",
                "OUTAGE_")


class Mode(enum.StrEnum):
    DRY_RUN = "DRY_RUN"
    PAPER = "PAPER"
    LIVE = "LIVE"

    @property
    def words(self) -> str:
        """The mode as the operator reads it in logs and Discord."""
        return {"DRY_RUN": "DRY-RUN", "PAPER": "PAPER TRADING", "LIVE": "LIVE TRADING"}[self.value]


class SettingsError(ValueError):
    """A bad setting: `str(err)` is the one line the operator sees."""

    def __init__(self, setting: str, reason: str) -> None:
        super().__init__(f"{setting}: {reason}")
        self.setting = setting
        self.reason = reason


def _empty_to_none(value: Any) -> Any:
    if isinstance(value, str) and not value.strip():
        return None
    return value


def _hhmm(value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, str) and not re.fullmatch(r"\d{1,2}:\d{2}", value.strip()):
        raise ValueError(f"must be HH:MM (24 h, US/Eastern), got {value!r}")
    if isinstance(value, str):
        h, m = (int(x) for x in value.strip().split(":"))
        return dt.time(h, m)
    return value


def _optional_hhmm(value: Any) -> Any:
    return _hhmm(_empty_to_none(value))


OptionalSecret = Annotated[SecretStr | None, BeforeValidator(_empty_to_none)]
OptionalStr = Annotated[str | None, BeforeValidator(_empty_to_none)]
OptionalPath = Annotated[Path | None, BeforeValidator(_empty_to_none)]


class Settings(BaseSettings):
    """Every setting of CONTRACT.md, plus a few the runtime needs (documented in .env.example)."""

    model_config = SettingsConfigDict(
        env_file=None, case_sensitive=True, extra="ignore", frozen=True,
        validate_default=True, populate_by_name=False,
    )

    ibkr_host: str = Field("127.0.0.1", alias="IBKR_HOST", min_length=1)
    ibkr_port: int = Field(4002, alias="IBKR_PORT", ge=1, le=65535)
    ibkr_client_id: int = Field(1, alias="IBKR_CLIENT_ID", ge=0, le=2**31 - 1)
    dry_run: bool = Field(True, alias="DRY_RUN")
    paper_trading: bool = Field(False, alias="PAPER_TRADING")
    live_trading_ack: OptionalSecret = Field(None, alias="LIVE_TRADING_ACK")
    discord_webhook_url: OptionalSecret = Field(None, alias="DISCORD_WEBHOOK_URL")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = Field(
        "INFO", alias="LOG_LEVEL")
    log_file: Path = Field(Path("logs/crucible_bot.log"), alias="LOG_FILE")
    log_max_bytes: int = Field(10_485_760, alias="LOG_MAX_BYTES", ge=4096)
    log_backup_count: int = Field(10, alias="LOG_BACKUP_COUNT", ge=1, le=1000)
    gameplan_path: Path = Field(Path("gameplans/daily_gameplan.json"), alias="GAMEPLAN_PATH")
    strategy_library_path: OptionalPath = Field(None, alias="STRATEGY_LIBRARY_PATH")
    max_daily_loss_pct: float = Field(0.10, alias="MAX_DAILY_LOSS_PCT", gt=0, le=1)
    max_position_pct: float = Field(0.20, alias="MAX_POSITION_PCT", gt=0, le=1)
    pdt_enabled: bool = Field(True, alias="PDT_ENABLED")
    operator_id: OptionalStr = Field(None, alias="OPERATOR_ID")
    state_dir: Path = Field(Path("state"), alias="STATE_DIR")
    health_port: int = Field(8787, alias="HEALTH_PORT", ge=0, le=65535)
    # runtime additions (CONTRACT.md leaves them to us)
    starting_equity_usd: float = Field(600.0, alias="STARTING_EQUITY_USD", gt=0,
                                       allow_inf_nan=False)
    gateway_restart_time: Annotated[dt.time, BeforeValidator(_hhmm)] = Field(
        dt.time(16, 30), alias="GATEWAY_RESTART_TIME")
    gateway_restart_window_min: float = Field(10.0, alias="GATEWAY_RESTART_WINDOW_MIN", gt=0,
                                              le=120)
    outage_alert_min: float = Field(10.0, alias="OUTAGE_ALERT_MIN", gt=0, le=1440)
    daily_stop_time: Annotated[dt.time | None, BeforeValidator(_optional_hhmm)] = Field(
        dt.time(17, 0), alias="DAILY_STOP_TIME")

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_level(cls, v: Any) -> Any:
        return v.strip().upper() if isinstance(v, str) else v

    @field_validator("ibkr_host")
    @classmethod
    def _host(cls, v: str) -> str:
        v = v.strip()
        if any(c.isspace() for c in v) or "/" in v:
            raise ValueError(f"must be a host name or IP address, got {v!r}")
        return v

    @field_validator("discord_webhook_url")
    @classmethod
    def _webhook(cls, v: SecretStr | None) -> SecretStr | None:
        if v is not None and not re.match(r"https?://[^\s/]+/\S*$", v.get_secret_value()):
            raise ValueError("must be an http(s) URL (the Discord webhook URL)")
        return v

    @model_validator(mode="after")
    def _mode_rule(self) -> Settings:
        if self.mode is Mode.LIVE:
            ack = self.live_trading_ack.get_secret_value() if self.live_trading_ack else None
            if ack != LIVE_TRADING_ACK_PHRASE:
                raise ValueError(
                    "LIVE_TRADING_ACK: live trading (DRY_RUN=false, PAPER_TRADING=false) needs "
                    f"LIVE_TRADING_ACK={LIVE_TRADING_ACK_PHRASE}")
        if self.mode is not Mode.DRY_RUN and not self.operator_id:
            raise ValueError(
                f"OPERATOR_ID: must be set for {self.mode.words} (the gameplan's operator_id is "
                "checked against it)")
        return self

    # -- derived ---------------------------------------------------------------------------
    @property
    def mode(self) -> Mode:
        if self.dry_run:
            return Mode.DRY_RUN
        return Mode.PAPER if self.paper_trading else Mode.LIVE

    @property
    def log_dir(self) -> Path:
        return self.log_file.parent

    @property
    def events_file(self) -> Path:
        return self.log_dir / "events.jsonl"

    def redacted(self) -> dict[str, str]:
        """Effective settings by their environment names, secrets replaced."""
        out: dict[str, str] = {}
        for name, field in type(self).model_fields.items():
            value = getattr(self, name)
            if isinstance(value, SecretStr):
                shown = "***(set)"
            elif value is None:
                shown = "(not set)"
            elif isinstance(value, bool):
                shown = "true" if value else "false"
            elif isinstance(value, dt.time):
                shown = value.strftime("%H:%M")
            else:
                shown = str(value)
            out[field.alias or name] = shown
        return out

    def settings_hash(self) -> str:
        """A short fingerprint of the effective settings (secrets by presence only)."""
        blob = json.dumps(self.redacted(), sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:12]


def _known_names() -> list[str]:
    return [f.alias for f in Settings.model_fields.values() if f.alias]


def check_key_case(keys: Iterable[str], source: str) -> None:
    """Refuse a key that is one of our settings in another case (`dry_run=false`).

    Names are case-sensitive (pydantic-settings reads `DRY_RUN` only), so a lowercase key would
    be silently ignored and the bot would run on the default: refused, never ignored.
    """
    by_upper = {name.upper(): name for name in _known_names()}
    for key in keys:
        name = by_upper.get(key.upper())
        if name is not None and key != name:
            raise SettingsError(key, f"setting names are upper case in {source}: write {name}")


def check_duplicate_keys(text: str, source: str) -> None:
    """Refuse a `.env` that sets the same key twice: which line wins is a guess for a human."""
    seen: dict[str, int] = {}
    for binding in parse_stream(io.StringIO(text)):
        key = binding.key
        if key is None:
            continue
        line = binding.original.line
        if key in seen:
            raise SettingsError(key, f"set twice in {source}, on lines {seen[key]} and {line}: "
                                     "keep one")
        seen[key] = line


def check_env_file_keys(values: Mapping[str, str | None], source: str) -> None:
    """Refuse keys in `.env` that look like bot settings but are not one."""
    known = set(_known_names())
    check_key_case(values, source)
    for key in values:
        if key in known:
            continue
        close = difflib.get_close_matches(key, sorted(known), n=1, cutoff=0.8)
        if key.startswith(BOT_PREFIXES) or close:
            hint = f" (did you mean {close[0]}?)" if close else ""
            raise SettingsError(key, f"unknown setting in {source}{hint}")


def load_settings(env_file: Path | None = Path(".env"),
                  environ: Mapping[str, str] | None = None) -> Settings:
    """Read and validate settings: the environment wins over the `.env` file.

    `env_file=None` reads only the environment. A missing default `.env` is fine; an explicitly
    named one that is missing is an error (the operator asked for it).
    """
    import os

    env = dict(os.environ if environ is None else environ)
    file_values: dict[str, str] = {}
    if env_file is not None:
        if env_file.exists():
            try:
                text = env_file.read_text(encoding="utf-8-sig")
                raw = dotenv_values(stream=io.StringIO(text))
            except (OSError, UnicodeDecodeError) as exc:
                raise SettingsError(str(env_file), f"cannot read the settings file: {exc}") from exc
            check_duplicate_keys(text, str(env_file))
            check_env_file_keys(raw, str(env_file))
            file_values = {k: v for k, v in raw.items() if v is not None}
        elif env_file != Path(".env"):
            raise SettingsError(str(env_file), "settings file not found")
    check_key_case(env, "the environment")
    known = set(_known_names())
    merged = {k: v for k, v in file_values.items() if k in known}
    merged.update({k: v for k, v in env.items() if k in known})
    try:
        return Settings.model_validate(merged)
    except ValidationError as exc:
        raise _one_line(exc) from None


def _one_line(exc: ValidationError) -> SettingsError:
    err = exc.errors(include_url=False)[0]
    loc = err.get("loc") or ()
    msg = str(err.get("msg", "invalid"))
    if not loc:
        # a model-level rule: its message starts with the setting's name
        msg = msg.removeprefix("Value error, ")
        name, _, reason = msg.partition(": ")
        return SettingsError(name, reason or msg)
    name = str(loc[0])
    value = err.get("input")
    shown = "" if name in ("LIVE_TRADING_ACK", "DISCORD_WEBHOOK_URL") else f" (got {value!r})"
    return SettingsError(name, msg.removeprefix("Value error, ") + shown)
