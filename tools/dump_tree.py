"""`python -m tools.dump_tree [--port N] [--env-file PATH] [--json]`: the running bot's actor tree.

Asks the bot's health endpoint (`GET /tree` on 127.0.0.1) and prints the tree as an indented
block, or as JSON with `--json`. This is the way to get a tree dump on Windows, which has no
SIGUSR1; the bot also writes the dump to its log and journal as a `tree` event.

The port: `--port`, else HEALTH_PORT from the settings (environment and `.env`, or
`--env-file`), and when that is 0 (a free port picked at start) the port the bot wrote to
STATE_DIR/health_port.

Exit status: 0 printed; 1 the bot did not answer (not running, wrong port); 2 bad arguments
or settings.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

import httpx

from config.settings import SettingsError, load_settings
from runtime.ops.health import HOST, port_file
from runtime.supervision.tree import render_snapshot

EXIT_OK = 0
EXIT_NO_ANSWER = 1
EXIT_USAGE = 2
TIMEOUT_S = 5.0


class _Usage(Exception):
    pass


def _port(args: argparse.Namespace) -> int:
    if args.port is not None:
        return int(args.port)
    try:
        settings = load_settings(args.env_file if args.env_file else Path(".env"))
    except SettingsError as exc:
        raise _Usage(f"settings: {exc}") from None
    if settings.health_port:
        return settings.health_port
    path = port_file(settings.state_dir)
    try:
        return int(path.read_text(encoding="ascii").strip())
    except FileNotFoundError:
        raise _Usage(f"HEALTH_PORT is 0 and {path} does not exist: is the bot running with "
                     "this STATE_DIR? (or pass --port)") from None
    except (OSError, ValueError) as exc:
        raise _Usage(f"cannot read the port from {path}: {exc}") from None


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.dump_tree",
                                     description="Print the running bot's actor tree.")
    parser.add_argument("--port", type=int, default=None,
                        help="health endpoint port (default: HEALTH_PORT, or "
                             "STATE_DIR/health_port when HEALTH_PORT is 0)")
    parser.add_argument("--env-file", type=Path, default=None,
                        help="settings file (default: .env in the working directory)")
    parser.add_argument("--json", action="store_true", help="print the tree as JSON")
    args = parser.parse_args(argv)
    try:
        port = _port(args)
    except _Usage as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    url = f"http://{HOST}:{port}/tree"
    try:
        response = httpx.get(url, timeout=TIMEOUT_S)
    except httpx.HTTPError as exc:
        print(f"error: no answer from the bot at {url} ({type(exc).__name__}: {exc}); is it "
              "running?", file=sys.stderr)
        return EXIT_NO_ANSWER
    if response.status_code != 200:
        print(f"error: {url} answered HTTP {response.status_code}: {response.text[:200]}",
              file=sys.stderr)
        return EXIT_NO_ANSWER
    try:
        tree = response.json()
    except ValueError:
        print(f"error: {url} did not answer JSON", file=sys.stderr)
        return EXIT_NO_ANSWER
    if args.json:
        print(json.dumps(tree, indent=2))
    else:
        print("\n".join(render_snapshot(tree)))
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
