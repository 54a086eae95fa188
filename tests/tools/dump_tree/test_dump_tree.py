"""The real bot serves the endpoint; `python -m tools.dump_tree` finds it and prints the tree."""

from __future__ import annotations

import json
import os
import socket
import sys
from pathlib import Path

import httpx
import pytest
import trio

from config.settings import load_settings
from runtime.app.bot import BotOptions, run_bot
from runtime.ops.health import port_file
from tests.harness import REPO
from tools import dump_tree


async def test_the_running_bot_serves_health_and_dump_tree_prints_its_tree(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as s:                 # no Gateway: a port nobody listens on
        s.bind(("127.0.0.1", 0))
        no_gateway = s.getsockname()[1]
    env_file = tmp_path / "bot.env"
    env_file.write_text(f"LOG_FILE={tmp_path / 'logs' / 'bot.log'}\n"
                        f"STATE_DIR={tmp_path / 'state'}\nHEALTH_PORT=0\n"
                        f"IBKR_PORT={no_gateway}\n", encoding="utf-8")
    settings = load_settings(env_file, {})
    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            bot = await nursery.start(run_bot, settings,
                                      BotOptions(console=False, handle_signals=False))
            port = int(port_file(settings.state_dir).read_text(encoding="ascii"))
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
                health = await client.get("/health")
            code_text = await trio.to_thread.run_sync(
                dump_tree.main, ["--env-file", str(env_file)])
            text = capsys.readouterr().out
            code_json = await trio.to_thread.run_sync(dump_tree.main, ["--port", str(port),
                                                                       "--json"])
            tree = json.loads(capsys.readouterr().out)
            proc = await trio.run_process(
                [sys.executable, "-m", "tools.dump_tree", "--port", str(port)],
                capture_stdout=True, capture_stderr=True, check=False, cwd=REPO,
                env={**os.environ, "PYTHONPATH": str(REPO)})
            bot.request_stop("test over")
    assert health.status_code in (200, 503)
    assert {"mode", "trading_state", "link", "last_bar_age_s", "uptime_s"} <= set(health.json())
    assert code_text == 0 and code_json == 0
    assert text.splitlines()[0].startswith("root [running] one_for_one inc=1")
    assert "  notifier [running]" in text and "    gateway_link [" in text
    assert tree["name"] == "root" and tree["children"][0]["name"] == "notifier"
    assert proc.returncode == 0 and b"root [running]" in proc.stdout
    assert not port_file(settings.state_dir).exists()        # removed at a clean stop


def test_dump_tree_says_clearly_when_the_bot_is_not_running(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    env_file = tmp_path / "bot.env"
    env_file.write_text(f"STATE_DIR={tmp_path / 'state'}\nHEALTH_PORT=0\n", encoding="utf-8")
    assert dump_tree.main(["--env-file", str(env_file)]) == dump_tree.EXIT_USAGE
    assert "health_port does not exist: is the bot running" in capsys.readouterr().err
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        free = s.getsockname()[1]
    assert dump_tree.main(["--port", str(free)]) == dump_tree.EXIT_NO_ANSWER
    assert "no answer from the bot" in capsys.readouterr().err
