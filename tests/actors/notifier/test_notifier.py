"""The Notifier against a real local HTTP server standing in for Discord."""

from __future__ import annotations

import json
import time
from dataclasses import replace
from pathlib import Path

import trio

from actors import notifier
from messages.alerts import Alert
from messages.link import LinkState, LinkStatus
from messages.status import BookStatus
from runtime.app.app import TreeOptions
from runtime.app.bot import BotOptions, run_bot
from runtime.ops.discord import COLOURS, TRUNCATED
from runtime.supervision.channels import DropOldest
from tests.harness import settings_for, wait_until
from tests.harness.fake_discord import WEBHOOK_PATH, Hang, Reply, run_fake_discord
from tests.harness.notifier import FAST, START, open_notifier


def _embeds(discord_requests: list) -> list[dict]:  # type: ignore[type-arg]
    return [e for r in discord_requests for e in r.body.get("embeds", [])]


async def test_startup_names_mode_gateway_and_et_time_and_shutdown_is_the_last_message(
        tmp_path: Path) -> None:
    with run_fake_discord() as discord:
        async with open_notifier(tmp_path, url=discord.url,
                                 config=replace(FAST, startup_link_wait_s=10.0)) as bot:
            await trio.sleep(0.2)
            assert discord.requests() == []         # waiting for the link to have its say
            bot.wiring.link_state.set(LinkState(status=LinkStatus.UP, session_id=1,
                                                accounts=("DU1234567",)))
            await wait_until(lambda: discord.answered() >= 1)
            bot.wiring.book.set(BookStatus(ts=bot.view.clock.now_utc(), mode="DRY_RUN",
                                           realized_pnl_today=-12.5))
            bot.view.run.request_stop("SIGTERM")
        requests = discord.requests()
    assert all(r.path == WEBHOOK_PATH and not r.problems for r in requests)
    first = requests[0].body["embeds"][0]
    assert first["title"] == "Bot started in DRY-RUN mode at 2026-11-20 09:30:00 ET"
    assert first["color"] == COLOURS["info"]
    fields = {f["name"]: f["value"] for f in first["fields"]}
    assert fields["Mode"] == "DRY-RUN" and len(fields["Settings hash"]) == 12
    assert fields["Gateway"] == "up: session 1 (DU1234567)"
    last = requests[-1].body["embeds"][-1]
    assert last["title"].startswith("Bot stopped (SIGTERM) at 2026-11-20 09:30:")
    assert {f["name"]: f["value"] for f in last["fields"]}["P&L today"] == "-12.50 USD"
    assert {e["outcome"] for e in bot.notify()} == {"sent"}
    assert requests[0].body["allowed_mentions"] == {"parse": []}


async def test_paper_and_live_modes_are_named_in_words(tmp_path: Path) -> None:
    with run_fake_discord() as discord:
        async with open_notifier(tmp_path / "paper", url=discord.url,
                                 env={"DRY_RUN": "false", "PAPER_TRADING": "true",
                                      "OPERATOR_ID": "op"}):
            await wait_until(lambda: discord.answered() >= 1)
        async with open_notifier(tmp_path / "live", url=discord.url,
                                 env={"DRY_RUN": "false", "PAPER_TRADING": "false",
                                      "OPERATOR_ID": "op",
                                      "LIVE_TRADING_ACK": "I-UNDERSTAND-THIS-TRADES-REAL-MONEY"}):
            await wait_until(lambda: discord.answered() >= 3)
        titles = discord.delivered_titles()
    assert any(t.startswith("Bot started in PAPER TRADING mode at ") for t in titles)
    assert any(t.startswith("Bot started in LIVE TRADING mode at ") for t in titles)


async def test_a_restarted_notifier_does_not_announce_a_new_start(tmp_path: Path) -> None:
    with run_fake_discord() as discord:
        async with open_notifier(tmp_path, url=discord.url, incarnation=2) as bot:
            bot.alert("warning", "Gateway link lost", "peer closed", key="link")
            await wait_until(lambda: discord.answered() >= 1)
        titles = discord.delivered_titles()
    assert not any(t.startswith("Bot started") for t in titles)
    assert "Warning: Gateway link lost" in titles


async def test_every_payload_is_a_valid_discord_body_and_long_text_is_cut_visibly(
        tmp_path: Path) -> None:
    long_text = "x" * 9000
    with run_fake_discord() as discord:
        async with open_notifier(tmp_path, url=discord.url) as bot:
            bot.alert("critical", "T" * 700, long_text + " 🚀" * 50,
                      **{f"field{i}": "v" * 2000 for i in range(40)})
            for i in range(30):
                bot.alert("warning", f"order {i} rejected", "y" * 1500, key=f"order{i}")
            await wait_until(lambda: len(bot.notify("sent")) >= 32)
        requests = discord.requests()
    assert all(not r.problems for r in requests), [r.problems for r in requests]
    embeds = _embeds(requests)
    big = next(e for e in embeds if e["title"].startswith("CRITICAL: TTT"))
    assert big["title"].endswith(TRUNCATED) and big["description"].endswith(TRUNCATED)
    assert big["color"] == COLOURS["critical"]
    assert len(big["fields"]) <= 25
    assert all(len(r.body["embeds"]) <= 10 for r in requests)
    # 32 alerts went in fewer requests than alerts: batching keeps under the rate limits
    assert len(requests) < 32
    sent_titles = {e["title"] for e in bot.notify("sent")}
    assert {f"order {i} rejected" for i in range(30)} <= sent_titles


async def test_a_429_with_retry_after_is_honoured_before_the_next_request(
        tmp_path: Path) -> None:
    limited = Reply(429, {"message": "You are being rate limited.", "retry_after": 0.6,
                          "global": False})
    header_only = Reply(429, None, (("Retry-After", "0.4"),))
    with run_fake_discord(limited, header_only) as discord:
        async with open_notifier(tmp_path, url=discord.url) as bot:
            await wait_until(lambda: len(bot.notify("sent")) >= 1)
        r = discord.requests()
    assert [x.status for x in r[:3]] == [429, 429, 204]
    assert r[1].at - r[0].at >= 0.6          # body retry_after (seconds, float)
    assert r[2].at - r[1].at >= 0.4          # Retry-After header
    assert r[0].body == r[1].body == r[2].body
    assert bot.notify("sent")[0]["attempts"] == 0   # a 429 is pacing, not a failure


async def test_an_exhausted_rate_limit_bucket_delays_the_next_request(tmp_path: Path) -> None:
    bucket_empty = Reply(204, None, (("X-RateLimit-Limit", "5"), ("X-RateLimit-Remaining", "0"),
                                     ("X-RateLimit-Reset-After", "0.5")))
    with run_fake_discord(bucket_empty) as discord:
        async with open_notifier(tmp_path, url=discord.url) as bot:
            await wait_until(lambda: discord.answered() >= 1)
            bot.alert("info", "signal", "entry SPY")
            await wait_until(lambda: discord.answered() >= 2)
        r = discord.requests()
    assert r[1].at - r[0].at >= 0.5


async def test_a_webhook_answering_404_is_disabled_once_and_criticals_still_reach_the_log(
        tmp_path: Path) -> None:
    gone = Reply(404, {"message": "Unknown Webhook", "code": 10015})
    with run_fake_discord(gone) as discord:
        async with open_notifier(tmp_path, url=discord.url) as bot:
            await wait_until(lambda: len(bot.notify("disabled")) >= 1)
            bot.alert("warning", "Gateway link lost", "peer closed")
            bot.alert("critical", "Account mismatch", "DU123 in LIVE mode")
            await wait_until(lambda: len(bot.notify("disabled")) >= 3)
            assert "webhook disabled (HTTP 404)" in (bot.ctx.node.note or "")
        assert len(discord.requests()) == 1
    log = bot.log_text()
    assert log.count("answered HTTP 404") == 1
    assert "Critical alert NOT delivered to Discord (disabled, HTTP 404)" in log
    assert "Account mismatch" in log
    outcomes = {(e["title"], e["outcome"]) for e in bot.notify()}
    assert ("Account mismatch", "disabled") in outcomes
    assert all(e["status"] == 404 for e in bot.notify("disabled"))


async def test_5xx_answers_are_retried_with_backoff_and_never_alert_through_the_notifier(
        tmp_path: Path) -> None:
    with run_fake_discord(Reply(503), Reply(502)) as discord:
        async with open_notifier(tmp_path, url=discord.url) as bot:
            await wait_until(lambda: len(bot.notify("sent")) >= 1)
            assert bot.alerts.depth() == 0
        statuses = [r.status for r in discord.requests()]
    assert statuses[:3] == [503, 502, 204]
    sent = bot.notify("sent")[0]
    assert sent["attempts"] == 2 and sent["title"].startswith("Bot started")
    assert not [e for e in bot.events if e["event"] == "alert"
                and e["actor"] == "root.notifier"]
    log = bot.log_text()
    assert log.count("Discord delivery failed (HTTP 503)") == 1
    assert "Discord reachable again after 2 failed attempt(s)" in log


async def test_an_unreachable_webhook_gives_up_on_info_but_keeps_retrying_criticals(
        tmp_path: Path) -> None:
    with trio.socket.socket() as s:          # a port with nobody listening
        await s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}{WEBHOOK_PATH}"
    config = replace(FAST, shutdown_flush_s=0.3, min_interval_s=0.0, backoff_initial_s=0.01,
                     backoff_max_s=0.02, max_attempts=3)
    async with open_notifier(tmp_path, url=url, config=config) as bot:
        bot.alert("critical", "Daily loss limit hit", "halting")
        await wait_until(lambda: len(bot.notify("failed")) >= 1)     # the startup info
        await trio.sleep(0.2)
        assert [e["title"] for e in bot.notify("failed")] == [
            "Bot started in DRY-RUN mode at 2026-11-20 09:30:00 ET"]
        assert bot.notify("failed")[0]["attempts"] == 3
    # the critical was retried until the end, then recorded as failed and logged
    failed = {e["title"]: e for e in bot.notify("failed")}
    assert failed["Daily loss limit hit"]["attempts"] > 3
    assert "Critical alert NOT delivered to Discord (failed): [CRITICAL] Daily loss limit hit" \
        in bot.log_text()


async def test_queue_overflow_drops_info_oldest_first_and_keeps_every_critical(
        tmp_path: Path) -> None:
    config = replace(FAST, shutdown_flush_s=3.0, min_interval_s=0.0, info_capacity=16,
                     warning_capacity=8)
    with run_fake_discord(Hang()) as discord:
        async with open_notifier(tmp_path, url=discord.url, config=config) as bot:
            await wait_until(lambda: len(discord.requests()) == 1)   # the sender is stuck
            for i in range(300):
                bot.alert("info", f"bar {i}")
                if i % 10 == 0:
                    bot.alert("warning", f"slow fill {i}")
                if i % 15 == 0:
                    bot.alert("critical", f"halt {i}")
                await trio.lowlevel.checkpoint()   # the pump keeps the inbox channel empty
            await wait_until(lambda: bot.alerts.depth() == 0)
            depths = bot.ctx.node.shown("notifier_queued")
            assert depths == {"critical": 20, "warning": 8, "info": 16}
            discord.release.set()          # the stuck request ends (no answer: retried)
            await wait_until(lambda: len(bot.notify("sent")) >= 20 + 8 + 16, timeout=10)
        delivered = discord.delivered_titles()
    criticals = [f"CRITICAL: halt {i}" for i in range(0, 300, 15)]
    assert [t for t in delivered if t.startswith("CRITICAL")] == criticals   # all, in order
    infos = [t for t in delivered if t.startswith("bar ")]
    assert infos == [f"bar {i}" for i in range(284, 300)]     # the newest 16 survived
    dropped = bot.notify("dropped")
    assert sum(e["count"] for e in dropped) == 284 + 22
    assert all(e["severity"] in ("info", "warning") for e in dropped)
    assert any(t.startswith("306 alert(s) dropped") for t in delivered)   # told the operator


async def test_repeats_of_one_key_are_coalesced_while_they_wait(tmp_path: Path) -> None:
    with run_fake_discord(Hang()) as discord:
        async with open_notifier(tmp_path, url=discord.url) as bot:
            await wait_until(lambda: len(discord.requests()) == 1)
            for i in range(5):
                bot.alert("info", "Market data farm reconnecting", f"attempt {i}", key="farm")
            discord.release.set()
            await wait_until(lambda: any(e["title"] == "Market data farm reconnecting"
                                         for e in bot.notify("sent")))
        embeds = _embeds(discord.requests())
    farm = [e for e in embeds if "farm" in e["title"]]
    assert farm[-1]["title"] == "5× Market data farm reconnecting"
    assert farm[-1]["description"] == "attempt 4"
    assert [e["count"] for e in bot.notify("sent") if "farm" in e["title"]] == [5]


async def test_debug_alerts_are_never_posted(tmp_path: Path) -> None:
    with run_fake_discord() as discord:
        async with open_notifier(tmp_path, url=discord.url) as bot:
            bot.alert("debug", "heartbeat")
            bot.alert("info", "signal")
            await wait_until(lambda: any(e["title"] == "signal" for e in bot.notify("sent")))
        titles = discord.delivered_titles()
    assert "heartbeat" not in titles and "signal" in titles


async def test_with_no_webhook_it_logs_its_own_messages_and_not_alerts_said_already(
        tmp_path: Path) -> None:
    async with open_notifier(tmp_path, url=None) as bot:
        bot.alert("warning", "Gateway link lost", "peer closed", key="link", Outage="12s")
        await wait_until(lambda: len(bot.notify("logged")) >= 2)
    log = bot.log_text()
    assert "DISCORD_WEBHOOK_URL is not set" in log
    assert "Notification (no webhook configured): [WARNING] Gateway link lost" not in log
    assert "Gateway link lost" in [e["title"] for e in bot.notify("logged")]   # journaled
    assert "Notification (no webhook configured): [INFO] Bot started in DRY-RUN mode" in log
    assert "Notification (no webhook configured): [WARNING] Bot stopped (the supervision " \
           "tree is stopping)" in log


async def test_stopping_flushes_queued_criticals_first_and_then_says_goodbye(
        tmp_path: Path) -> None:
    with run_fake_discord() as discord:
        async with open_notifier(tmp_path, url=discord.url) as bot:
            await wait_until(lambda: discord.answered() >= 1)
            bot.alert("info", "daily summary", "3 trades")
            bot.alert("critical", "Supervisor root exceeded its restart intensity")
            # stopped at once: whatever is queued must still get out
        titles = discord.delivered_titles()
        last = discord.requests()[-1].body["embeds"][-1]
    assert titles[1:3] == ["CRITICAL: Supervisor root exceeded its restart intensity",
                           "daily summary"]
    # not asked to stop: the tree is going down, so the farewell is a warning, yet still last
    assert titles[-1].startswith("Warning: Bot stopped (the supervision tree is stopping)")
    assert last["color"] == COLOURS["warning"] and len(titles) == 4


async def test_stopping_against_a_dead_discord_is_bounded_and_records_what_was_lost(
        tmp_path: Path) -> None:
    config = replace(FAST, shutdown_flush_s=0.5, min_interval_s=0.0)
    with run_fake_discord(default=Hang()) as discord:
        async with open_notifier(tmp_path, url=discord.url, config=config) as bot:
            await wait_until(lambda: len(discord.requests()) == 1)
            bot.alert("critical", "Position mismatch", "broker says 2, ledger says 1")
            stopping = time.monotonic()
        took = time.monotonic() - stopping
    assert took < 0.5 + 1.0      # the flush deadline, not the 3 s request timeout
    failed = {e["title"] for e in bot.notify("failed")}
    assert "Position mismatch" in failed
    assert any(t.startswith("Bot stopped") for t in failed)
    assert "Critical alert NOT delivered to Discord (failed): [CRITICAL] Position mismatch" \
        in bot.log_text()


async def test_the_tree_note_shows_what_the_notifier_did(tmp_path: Path) -> None:
    with run_fake_discord() as discord:
        async with open_notifier(tmp_path, url=discord.url) as bot:
            await wait_until(lambda: len(bot.notify("sent")) >= 1)
            assert bot.ctx.node.note == "webhook; queued 0, sent 1, failed 0, dropped 0"
            assert bot.ctx.node.shown("notifier_sent") == 1


async def test_the_running_bot_announces_its_start_and_its_stop_is_the_last_message(
        tmp_path: Path) -> None:
    with trio.socket.socket() as s:              # no Gateway: a port nobody listens on
        await s.bind(("127.0.0.1", 0))
        no_gateway = s.getsockname()[1]
    with run_fake_discord() as discord:
        settings = settings_for(tmp_path, IBKR_PORT=str(no_gateway),
                                DISCORD_WEBHOOK_URL=discord.url)
        options = BotOptions(console=False, handle_signals=False,
                             tree=TreeOptions(notifier_config=replace(
                                 FAST, startup_link_wait_s=0.3)))
        with trio.fail_after(20):
            async with trio.open_nursery() as nursery:
                bot = await nursery.start(run_bot, settings, options)
                await wait_until(lambda: discord.answered() >= 1)
                bot.request_stop("test over")
        titles = discord.delivered_titles()
    assert titles[0].startswith("Bot started in DRY-RUN mode at ")
    assert titles[-1].startswith("Bot stopped (test over) at ")
    events = [json.loads(line) for line in
              (tmp_path / "logs" / "events.jsonl").read_text(encoding="utf-8").splitlines()]
    names = [e["event"] for e in events]
    farewell = next(i for i, e in enumerate(events) if e["event"] == "notify"
                    and e["title"].startswith("Bot stopped"))
    assert events[farewell]["outcome"] == "sent"
    assert names.index("shutdown") > farewell          # the Notifier was stopped last


async def test_alerts_lost_while_no_notifier_read_are_reported_once_across_incarnations(
        tmp_path: Path) -> None:
    alerts: DropOldest[Alert] = DropOldest("alerts", 4)
    memory = notifier.Memory()

    def lose(n: int) -> None:
        for i in range(n):
            alerts.send_nowait(Alert(severity="info", title=f"lost {i}", text="",
                                     source="root.x", ts=START))

    reported: list[int] = []
    lose(10)                                     # 6 dropped before the first Notifier
    for incarnation in (1, 2):
        async with open_notifier(tmp_path / str(incarnation), url=None, alerts=alerts,
                                 memory=memory, incarnation=incarnation) as bot:
            await wait_until(lambda: alerts.depth() == 0)     # what survived is read
            bot.alert("info", "now read")
            await wait_until(lambda: any(e["title"] == "now read" for e in bot.notify()))
            reported += [e["count"] for e in bot.notify("dropped")
                         if e["title"].startswith("(dropped before")]
        lose(10)                                 # 6 more while nobody reads
    assert reported == [6, 6]                    # not 12: the first six were reported once
