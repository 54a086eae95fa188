"""The webhook URL is the credential: it must never reach a log file, whatever goes wrong.

The runtime also scrubs registered secrets from every line; this test deliberately does NOT
register the URL, so it proves the Notifier itself never writes it (nor lets httpx write it).
"""

from __future__ import annotations

import secrets
from pathlib import Path

import trio

from actors import notifier
from runtime.ops.discord import Timeouts
from tests.harness import wait_until
from tests.harness.fake_discord import Hang, Reply, run_fake_discord
from tests.harness.notifier import open_notifier

QUICK = notifier.NotifierConfig(timeouts=Timeouts(connect=0.5, read=0.5, total=1.0),
                                shutdown_flush_s=0.5, min_interval_s=0.0,
                                startup_link_wait_s=0.0,
                                backoff_initial_s=0.01, backoff_max_s=0.02, max_attempts=2)


def _files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()]


async def test_the_webhook_url_never_reaches_the_log_files(tmp_path: Path) -> None:
    token = secrets.token_urlsafe(32)
    path = f"/api/webhooks/424242424242/{token}"
    logs = tmp_path / "run"
    with run_fake_discord(Reply(500, {"message": "oops"}), Reply(503), Hang(),
                          Reply(400, {"message": "Invalid Form Body", "code": 50035}),
                          Reply(404, {"message": "Unknown Webhook", "code": 10015})
                          ) as discord:
        url = f"http://127.0.0.1:{discord.port}{path}"
        async with open_notifier(logs, url=url, config=QUICK, level="DEBUG") as bot:
            bot.alert("critical", "Account mismatch", "DU123 in LIVE mode")
            # 500, 503, no answer, then 400: the batch is refused and recorded as failed
            await wait_until(lambda: any(e["status"] == 400 for e in bot.notify("failed")))
            bot.alert("warning", "next")        # 404: the webhook is abandoned
            await wait_until(lambda: len(bot.notify("disabled")) >= 1)
            bot.alert("critical", "after disable")
            await wait_until(lambda: len(bot.notify("disabled")) >= 2)
    with trio.socket.socket() as s:            # and against a port nobody listens on
        await s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}{path}"
    async with open_notifier(logs, url=dead, config=QUICK, level="DEBUG") as bot2:
        bot2.alert("critical", "Link lost")
        await wait_until(lambda: len(bot2.notify("failed")) >= 1)
    text = "\n".join(p.read_text(encoding="utf-8", errors="replace") for p in _files(logs))
    # the failure paths really ran and were logged...
    for seen in ("Discord delivery failed (HTTP 500)", "Discord refused a message (HTTP 400",
                 "answered HTTP 404", "Discord delivery failed (ConnectError",
                 "Critical alert NOT delivered"):
        assert seen in text, seen
    # ...and the credential is nowhere
    assert token not in text
    assert path not in text
    assert "424242424242" not in text
