"""`python -m tools.fake_gateway`: run the simulator until SIGINT/SIGTERM (exit 0)."""

from __future__ import annotations

import logging
import signal
import sys
from collections.abc import Sequence

import trio

from tools.fake_gateway.config import FakeGatewayConfig, config_from_args
from tools.fake_gateway.server import open_fake_gateway


async def serve(config: FakeGatewayConfig) -> None:
    signals = [signal.SIGINT, signal.SIGTERM]
    if hasattr(signal, "SIGBREAK"):       # CTRL_BREAK on Windows
        signals.append(signal.SIGBREAK)
    with trio.open_signal_receiver(*signals) as received:
        async with open_fake_gateway(config) as gw:
            print(f"fake_gateway listening on 127.0.0.1:{gw.port} "
                  f"control 127.0.0.1:{gw.control_port}", flush=True)
            async for signum in received:
                logging.getLogger("tools.fake_gateway").info(
                    "signal %s: shutting down", signal.Signals(signum).name)
                break


def main(argv: Sequence[str] | None = None) -> int:
    config, level = config_from_args(argv)
    logging.basicConfig(level=getattr(logging, level), stream=sys.stderr,
                        format="%(asctime)s %(levelname)-8s [%(name)s] %(message)s")
    try:
        trio.run(serve, config)
    except OSError as exc:
        print(f"fake_gateway: cannot start: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
