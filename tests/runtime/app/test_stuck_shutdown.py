"""The last step of the hard stop, in a real process: a bot whose GatewayLink cannot be stopped
(its Gateway call waits, shielded, forever) still ends on SIGTERM, with its logs written out,
the abandoned path on record, and exit code 1 so the scheduler starts a fresh process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.harness import REPO, read_jsonl, wait_until_sync

SCRIPT = textwrap.dedent("""
    import sys, trio
    from runtime.app.app import TreeOptions
    from runtime.app.bot import BotOptions, run_bot
    from tests.harness import settings_for
    from pathlib import Path

    class DeafGateway:
        '''Its port check never returns, and on cancellation waits (shielded) forever: a hung
        asyncio cancel that GatewayLink cannot get out of.'''
        liveness_interval = 2.0
        liveness_deadline = 5.0

        async def port_open(self):
            try:
                await trio.sleep_forever()
            finally:
                with trio.CancelScope(shield=True):
                    await trio.sleep_forever()

        def open_session(self, params):
            raise AssertionError("never reached")

    settings = settings_for(Path(sys.argv[1]), DAILY_STOP_TIME="")
    sys.exit(trio.run(run_bot, settings, BotOptions(console=False,
                                                    tree=TreeOptions(transport=DeafGateway()))))
""")


@pytest.mark.slow
@pytest.mark.skipif(os.name != "posix", reason="SIGTERM to a child process")
def test_a_bot_that_cannot_stop_a_task_ends_the_process_with_its_logs_written(
        tmp_path: Path) -> None:
    proc = subprocess.Popen([sys.executable, "-c", SCRIPT, str(tmp_path)], cwd=REPO,
                            env={**os.environ, "PYTHONPATH": str(REPO)},
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    log = tmp_path / "logs" / "bot.log"
    try:
        wait_until_sync(lambda: log.exists() and "Actor tree (start)" in log.read_text(),
                        timeout=60)
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=60)      # gateway_link's grace 5 s + link's 10 s, not forever
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert code == 1
    events = read_jsonl(tmp_path / "logs" / "events.jsonl")
    overdue = [e["actor"] for e in events if e["event"] == "actor_stop_overdue"]
    assert overdue == ["root.link.gateway_link", "root.link"]
    shutdown = [e for e in events if e["event"] == "shutdown"]
    assert shutdown[-1]["clean"] is False and shutdown[-1]["exit_code"] == 1
    assert shutdown[-1]["abandoned"] == ["root.link.gateway_link", "root.link"]
    assert "would not stop; ending the process without them" in log.read_text()
