"""The simulator's settings: one frozen dataclass shared by the CLI and the embedding API."""

from __future__ import annotations

import argparse
import datetime as dt
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from config.market_calendar import ET

DEFAULT_ACCOUNT = "DU1234567"
DEFAULT_PORT = 4002
DEFAULT_CASH = 100_000.0


@dataclass(frozen=True, slots=True)
class FakeGatewayConfig:
    """Everything `python -m tools.fake_gateway` accepts.

    `start=None` means: 09:25 ET on the second session of the `bars` CSV (a full session of
    history for the bot's warm-up), or the current wall time without a CSV. `read_only` is the
    Gateway's "Read-Only API" setting: every placeOrder is answered with error 321.
    `known_symbols` limits the contracts it knows (the others get 200, like a typo or a
    delisted symbol at IB).
    """

    port: int = DEFAULT_PORT
    control_port: int = 0
    bars: Path | None = None
    vix: Path | None = None
    speed: float = 1.0
    start: dt.datetime | None = None
    account: str = DEFAULT_ACCOUNT
    orders_log: Path | None = None
    seed: int = 1
    read_only: bool = False
    cash: float = DEFAULT_CASH
    known_symbols: frozenset[str] | None = None   # None: every simulated underlying

    def __post_init__(self) -> None:
        for name, port in (("port", self.port), ("control_port", self.control_port)):
            if not 0 <= port <= 65535:
                raise ValueError(f"{name} must be 0..65535, not {port}")
        if not (self.speed > 0 and math.isfinite(self.speed)):
            raise ValueError(f"speed must be a positive number, not {self.speed!r}")
        if self.start is not None and self.start.tzinfo is None:
            raise ValueError("start must be timezone-aware")
        if not self.account or "," in self.account:
            raise ValueError(f"account must be one non-empty account id, not {self.account!r}")
        if not (self.cash >= 0 and math.isfinite(self.cash)):
            raise ValueError(f"cash must be a non-negative amount, not {self.cash!r}")


def parse_start(text: str) -> dt.datetime:
    """ISO 8601; a naive time is read as US/Eastern (the market's clock)."""
    try:
        when = dt.datetime.fromisoformat(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"--start: not an ISO 8601 date-time: {text!r}") from exc
    return when.replace(tzinfo=ET) if when.tzinfo is None else when


def _existing_file(text: str) -> Path:
    path = Path(text)
    if not path.is_file():
        raise argparse.ArgumentTypeError(f"no such file: {text}")
    return path


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m tools.fake_gateway",
        description="IB Gateway simulator: serves the TWS API socket protocol on 127.0.0.1.")
    p.add_argument("--port", type=int, default=DEFAULT_PORT,
                   help="API port (0 = pick a free one; it is printed)")
    p.add_argument("--control-port", type=int, default=0,
                   help="control port for fault commands (0 = pick a free one)")
    p.add_argument("--bars", type=_existing_file, default=None,
                   help="1-min (or coarser) bars CSV to replay; else a seeded random walk")
    p.add_argument("--vix", type=_existing_file, default=None,
                   help="VIX bars CSV; else a seeded mean-reverting walk")
    p.add_argument("--speed", type=float, default=1.0,
                   help="simulated seconds per wall second")
    p.add_argument("--start", type=parse_start, default=None,
                   help="simulated start instant (ISO 8601; naive = US/Eastern)")
    p.add_argument("--account", default=DEFAULT_ACCOUNT,
                   help="managed account id (DU… = paper)")
    p.add_argument("--orders-log", type=Path, default=None,
                   help="append every order received as a JSON line")
    p.add_argument("--seed", type=int, default=1, help="seed of the random walks")
    p.add_argument("--read-only", action="store_true",
                   help="the Gateway's Read-Only API setting: placeOrder gets error 321")
    p.add_argument("--cash", type=float, default=DEFAULT_CASH, help="starting cash (USD)")
    p.add_argument("--symbols", default=None,
                   help="comma-separated underlyings it knows (default all); others get 200")
    p.add_argument("--log-level", default="INFO",
                   choices=("DEBUG", "INFO", "WARNING", "ERROR"), help="log verbosity")
    return p


def config_from_args(argv: Sequence[str] | None = None) -> tuple[FakeGatewayConfig, str]:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        config = FakeGatewayConfig(
            port=args.port, control_port=args.control_port, bars=args.bars, vix=args.vix,
            speed=args.speed, start=args.start, account=args.account,
            orders_log=args.orders_log, seed=args.seed, read_only=args.read_only,
            cash=args.cash, known_symbols=None if args.symbols is None else frozenset(
                s.strip().upper() for s in args.symbols.split(",") if s.strip()))
    except ValueError as exc:
        parser.error(str(exc))
    return config, str(args.log_level)
