"""`python -m tools.bench_health [--requests N]`: HTTP latency against a real bot.

Starts `python -m runtime` (DRY_RUN, a temporary log and state directory, HEALTH_PORT=0), finds
its port in STATE_DIR/health_port, then sends N sequential `GET /health` on one kept-alive
connection and N on a new connection each (`Connection: close`), N/10 `GET /tree`, and N
`GET /api/status` with the console token (STATE_DIR/console.token), and prints p50 / p99 / max
in milliseconds. Then it stops the bot (SIGINT; terminate on Windows).
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import httpx

from runtime.ops.access import TOKEN_FILE
from runtime.ops.health import port_file


def _wait_for_port(state_dir: Path, proc: subprocess.Popen[bytes], timeout: float) -> int:
    deadline = time.monotonic() + timeout
    path = port_file(state_dir)
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the bot exited early with code {proc.returncode}")
        try:
            return int(path.read_text(encoding="ascii"))
        except (FileNotFoundError, ValueError):
            time.sleep(0.05)
    raise RuntimeError(f"no {path} after {timeout:g}s")


def _measure(url: str, n: int, headers: dict[str, str] | None = None) -> list[float]:
    out: list[float] = []
    with httpx.Client(timeout=5.0, headers=headers) as client:
        for _ in range(n):
            t0 = time.perf_counter()
            response = client.get(url)
            out.append((time.perf_counter() - t0) * 1000)
            if response.status_code not in (200, 503):
                raise RuntimeError(f"{url} answered {response.status_code}")
    return out


def _line(name: str, ms: list[float]) -> str:
    s = sorted(ms)
    return (f"{name:23} n={len(s):5}  p50 {statistics.median(s):7.3f} ms  "
            f"p99 {s[min(len(s) - 1, int(len(s) * 0.99))]:7.3f} ms  max {s[-1]:7.3f} ms")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.bench_health")
    parser.add_argument("--requests", type=int, default=2000)
    args = parser.parse_args(argv)
    repo = Path(__file__).resolve().parents[1]
    with tempfile.TemporaryDirectory() as tmp:
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("IBKR_", "DRY_", "PAPER_", "LIVE_", "DISCORD_", "LOG_",
                                    "STATE_", "HEALTH_", "OPERATOR_"))}
        env.update(LOG_FILE=str(Path(tmp) / "logs" / "bot.log"), STATE_DIR=str(Path(tmp) / "s"),
                   HEALTH_PORT="0", PYTHONPATH=str(repo))
        proc = subprocess.Popen([sys.executable, "-m", "runtime"],
                                cwd=tmp, env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        try:
            port = _wait_for_port(Path(tmp) / "s", proc, timeout=30)
            base = f"http://127.0.0.1:{port}"
            _measure(f"{base}/health", 50)                 # warm-up
            token = (Path(tmp) / "s" / TOKEN_FILE).read_text(encoding="ascii").strip()
            print(_line("/health", _measure(f"{base}/health", args.requests)))
            print(_line("/health new connection", _measure(
                f"{base}/health", args.requests, {"Connection": "close"})))
            print(_line("/tree", _measure(f"{base}/tree", max(1, args.requests // 10))))
            print(_line("/api/status", _measure(f"{base}/api/status", args.requests,
                                                {"Authorization": f"Bearer {token}"})))
        finally:
            if sys.platform == "win32":
                proc.terminate()
            else:
                proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
    return 0


if __name__ == "__main__":
    sys.exit(main())
