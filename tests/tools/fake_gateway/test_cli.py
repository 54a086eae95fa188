"""`python -m tools.fake_gateway`: prints where it listens, obeys the control port, exits 0 on
SIGTERM."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import trio

from tests.harness import REPO


@pytest.mark.slow
@pytest.mark.skipif(sys.platform == "win32", reason="SIGTERM delivery is POSIX-only")
async def test_the_cli_serves_until_sigterm(spy_csv: Path, tmp_path: Path) -> None:
    process = await trio.lowlevel.open_process(
        [sys.executable, "-m", "tools.fake_gateway", "--port", "0", "--bars", str(spy_csv),
         "--speed", "60", "--orders-log", str(tmp_path / "orders.jsonl")],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        assert process.stdout is not None
        line = b""
        with trio.fail_after(30):
            while not line.endswith(b"\n"):
                chunk = await process.stdout.receive_some(1)
                assert chunk, "the simulator exited before printing its ports"
                line += chunk
        m = re.fullmatch(r"fake_gateway listening on 127\.0\.0\.1:(\d+) control "
                         r"127\.0\.0\.1:(\d+)\n", line.decode())
        assert m, line
        api_port, control_port = int(m.group(1)), int(m.group(2))
        assert api_port > 0 and control_port > 0
        stream = await trio.open_tcp_stream("127.0.0.1", control_port)
        async with stream:
            await stream.send_all(b"status\n")
            reply = b""
            with trio.fail_after(5):
                while not reply.endswith(b"\n"):
                    reply += await stream.receive_some(65536)
        status = json.loads(reply)
        assert status["port"] == api_port and status["sim_time_et"].startswith(
            "2024-02-21T09:2")                        # 09:25 ET on the CSV's second session
        process.send_signal(signal.SIGTERM)
        with trio.fail_after(10):
            assert await process.wait() == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


@pytest.mark.slow
def test_bad_arguments_are_refused_with_a_message(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "tools.fake_gateway", "--bars", str(tmp_path / "missing.csv")],
        cwd=REPO, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "no such file" in result.stderr
