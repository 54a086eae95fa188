"""Discord bodies within the limits for any input; answers and rate-limit headers read right."""

from __future__ import annotations

import datetime as dt

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from runtime.ops.discord import (
    MAX_EMBED_TOTAL,
    TRUNCATED,
    Pacer,
    make_embed,
    read_reply,
    redact,
    text_length,
    truncate,
    webhook_body,
)
from tests.harness.fake_discord import discord_problems

TS = dt.datetime(2026, 11, 20, 14, 30, tzinfo=dt.UTC)
texts = st.text(alphabet=st.characters(exclude_categories=["Cs"]), max_size=7000)


@given(text=texts, limit=st.integers(min_value=1, max_value=5000))
def test_truncate_never_exceeds_the_limit_and_marks_the_cut(text: str, limit: int) -> None:
    out = truncate(text, limit)
    assert text_length(out) <= limit
    if text_length(text) <= limit:
        assert out == text
    elif limit > text_length(TRUNCATED):
        assert out.endswith(TRUNCATED)
        assert text.startswith(out.removesuffix(TRUNCATED))


def test_an_emoji_counts_as_two_and_is_never_split() -> None:
    assert text_length("🚀") == 2
    out = truncate("a" + "🚀" * 20, 16)
    assert text_length(out) <= 16 and out.endswith(TRUNCATED)
    assert out == "a" + "🚀" + TRUNCATED       # 1 + 2 + 13 = 16, no half emoji


@settings(max_examples=150, deadline=None)
@given(title=texts, description=texts, footer=texts,
       fields=st.lists(st.tuples(st.text(max_size=400).filter(lambda n: n.strip() != "…"),
                                 texts), max_size=40))
def test_any_alert_becomes_an_embed_discord_accepts(title: str, description: str, footer: str,
                                                    fields: list[tuple[str, str]]) -> None:
    embed = make_embed(title, description, colour=0xE02424, timestamp=TS, fields=fields,
                       footer=footer)
    assert embed.size() <= MAX_EMBED_TOTAL
    assert discord_problems(webhook_body([embed], username="Crucible bot")) == []
    if fields:
        shown = [n for n, _ in embed.fields if n != "…"]
        assert len(shown) + (1 if embed.fields[-1][0] == "…" else 0) == len(embed.fields)
        if len(shown) < len(fields):         # what did not fit is counted, not lost silently
            assert embed.fields[-1][1] == f"{len(fields) - len(shown)} more field(s) not shown"


def test_the_description_keeps_priority_over_many_long_fields() -> None:
    embed = make_embed("t", "what happened " * 400, colour=1,
                       fields=[(f"f{i}", "v" * 1024) for i in range(40)])
    assert text_length(embed.description) == 4096 and embed.description.endswith(TRUNCATED)
    assert embed.size() <= MAX_EMBED_TOTAL
    assert embed.fields[-1][0] == "…"


def test_a_body_refuses_more_than_discord_takes() -> None:
    small = make_embed("t", "d", colour=1)
    with pytest.raises(ValueError, match="at most 10"):
        webhook_body([small] * 11)
    big = make_embed("t", "d" * 4096, colour=1)
    with pytest.raises(ValueError, match="6000"):
        webhook_body([big, big])
    with pytest.raises(ValueError, match="content or at least one embed"):
        webhook_body([])
    assert webhook_body([small])["allowed_mentions"] == {"parse": []}


def test_retry_after_comes_from_the_body_else_the_header() -> None:
    h = httpx.Headers({"Retry-After": "3", "X-RateLimit-Remaining": "0",
                       "X-RateLimit-Reset-After": "1.25"})
    r = read_reply(429, h, b'{"message": "You are being rate limited.", "retry_after": 0.64,'
                           b' "global": true}')
    assert (r.retry_after, r.is_global, r.remaining, r.reset_after) == (0.64, True, 0, 1.25)
    assert read_reply(429, h, b"").retry_after == 3.0
    assert read_reply(429, httpx.Headers({}), b"<html>").retry_after is None
    assert read_reply(404, h, b'{"message": "Unknown Webhook"}').dead
    assert read_reply(503, h, b"").retryable and not read_reply(400, h, b"").retryable
    assert read_reply(204, h, b"").ok


def test_the_pacer_spaces_requests_and_honours_discord() -> None:
    p = Pacer(min_interval=0.4, per_minute=3)
    assert p.delay(0.0) == 0.0
    p.sent(0.0)
    assert p.delay(0.1) == pytest.approx(0.3)
    p.sent(0.5)
    p.sent(1.0)
    assert p.delay(1.5) == pytest.approx(58.5)          # 3 in the last minute
    assert p.delay(60.0) == 0.0
    p.answered(60.0, read_reply(429, httpx.Headers({}), b'{"retry_after": 2.5}'))
    assert p.delay(60.0) == pytest.approx(2.5)
    p.answered(70.0, read_reply(204, httpx.Headers({"X-RateLimit-Remaining": "0",
                                                    "X-RateLimit-Reset-After": "1.5"}), b""))
    assert p.delay(70.0) == pytest.approx(1.5)
    p.answered(80.0, read_reply(429, httpx.Headers({}), b'{"retry_after": 1e9}'))
    assert p.delay(80.0) == pytest.approx(300.0)        # capped: a broken header never mutes


def test_redact_removes_the_url_and_its_token() -> None:
    url = "https://discord.com/api/webhooks/123456/abcdefghijklmnop"
    text = f"error for {url} and again /api/webhooks/123456/abcdefghijklmnop and abcdefghijklmnop"
    out = redact(text, url)
    assert "abcdefghijklmnop" not in out and "123456/" not in out
