"""Discord webhooks: bodies that Discord accepts, its answers read for pacing, one poster.

Discord rejects a whole message (HTTP 400) when any part is over a limit, and an alert that
bounces is an alert the operator never reads. So every body built here is inside the limits by
construction: long text is cut *visibly* (it ends in `…(truncated)`), never silently.

Lengths are counted in UTF-16 code units, which is never less than Python's `len()`: whichever
way Discord counts characters, a body that passes here passes there.

The webhook URL is a secret (it is the credential): nothing in this module formats it into a
message or an exception text; `Webhook.describe_error` strips it from library errors.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx
import trio

# -- limits (https://discord.com/developers/docs/resources/message#embed-object-embed-limits) --
MAX_CONTENT = 2000
MAX_EMBEDS = 10
MAX_TITLE = 256
MAX_DESCRIPTION = 4096
MAX_FIELDS = 25
MAX_FIELD_NAME = 256
MAX_FIELD_VALUE = 1024
MAX_FOOTER = 2048
MAX_USERNAME = 80
MAX_EMBED_TOTAL = 6000
"""All embed text of one message together: titles, descriptions, field names and values,
footers (and author names, which we do not use)."""

TRUNCATED = "…(truncated)"
"""Appended to text cut to fit, so the operator knows there was more (it is in the log)."""

COLOURS: Mapping[str, int] = {
    "info": 0x3498DB,       # blue
    "warning": 0xF0A30A,    # amber
    "critical": 0xE02424,   # red
}

DEAD_WEBHOOK_STATUSES = frozenset({401, 403, 404})
"""Answers that never get better by retrying: a deleted webhook (404), a wrong token (401), a
webhook the bot may no longer use (403). Retrying them only counts towards Discord's
invalid-request ban (10,000 in 10 minutes), so the Notifier stops using the webhook."""


def text_length(text: str) -> int:
    """Length in UTF-16 code units (an emoji counts 2): the stricter of the two counts."""
    return len(text.encode("utf-16-le")) // 2


def truncate(text: str, limit: int) -> str:
    """`text` cut to at most `limit` UTF-16 units, ending in TRUNCATED when it was cut."""
    if text_length(text) <= limit:
        return text
    room = limit - text_length(TRUNCATED)
    if room <= 0:
        return _cut(TRUNCATED, limit)
    return _cut(text, room).rstrip() + TRUNCATED


def _cut(text: str, limit: int) -> str:
    """The longest prefix of `text` within `limit` UTF-16 units (never splits a surrogate)."""
    out: list[str] = []
    used = 0
    for ch in text:
        units = 2 if ord(ch) > 0xFFFF else 1
        if used + units > limit:
            break
        out.append(ch)
        used += units
    return "".join(out)


@dataclass(frozen=True)
class Embed:
    """One Discord embed, already within the per-embed limits (build it with `make_embed`)."""

    title: str
    description: str
    colour: int
    timestamp: dt.datetime | None = None
    fields: tuple[tuple[str, str], ...] = ()
    footer: str = ""

    def size(self) -> int:
        """Characters this embed adds to the message's MAX_EMBED_TOTAL budget."""
        return (text_length(self.title) + text_length(self.description)
                + sum(text_length(n) + text_length(v) for n, v in self.fields)
                + text_length(self.footer))

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"title": self.title, "color": self.colour}
        if self.description:
            body["description"] = self.description
        if self.timestamp is not None:
            body["timestamp"] = self.timestamp.astimezone(dt.UTC).isoformat()
        if self.fields:
            body["fields"] = [{"name": n, "value": v, "inline": text_length(v) <= 40}
                              for n, v in self.fields]
        if self.footer:
            body["footer"] = {"text": self.footer}
        return body


MIN_FIELD_VALUE_ROOM = 24
"""A field is shortened to fit the remaining budget only if at least this much of its value
can be shown; otherwise it is left out and counted in the "more fields not shown" note."""


def make_embed(title: str, description: str = "", *, colour: int,
               timestamp: dt.datetime | None = None,
               fields: Sequence[tuple[str, str]] = (), footer: str = "") -> Embed:
    """An embed inside every per-embed limit, and inside MAX_EMBED_TOTAL on its own.

    The budget goes to the title and footer, then the description (what happened), then the
    fields in order. Fields that do not fit (or past MAX_FIELDS) are replaced by one note
    field saying how many were left out: never lost silently. Empty field names or values,
    which Discord refuses, become "-".
    """
    title = truncate(title.strip() or "(no title)", MAX_TITLE)
    footer = truncate(footer, MAX_FOOTER)
    clean = [(truncate(n.strip() or "-", MAX_FIELD_NAME),
              truncate(v.strip() or "-", MAX_FIELD_VALUE)) for n, v in fields]
    note_room = 40 if clean else 0        # for the "N more fields not shown" note
    room = MAX_EMBED_TOTAL - text_length(title) - text_length(footer) - note_room
    description = truncate(description, max(0, min(MAX_DESCRIPTION, room)))
    room -= text_length(description)
    kept: list[tuple[str, str]] = []
    for name, value in clean:
        if len(kept) == MAX_FIELDS - 1 and len(clean) > MAX_FIELDS:
            break
        need = text_length(name) + text_length(value)
        if need > room:
            value_room = room - text_length(name)
            if value_room < MIN_FIELD_VALUE_ROOM:
                break
            value = truncate(value, value_room)
            need = text_length(name) + text_length(value)
        kept.append((name, value))
        room -= need
    left_out = len(clean) - len(kept)
    if left_out:
        kept.append(("…", f"{left_out} more field(s) not shown"))
    return Embed(title=title, description=description, colour=colour & 0xFFFFFF,
                 timestamp=timestamp, fields=tuple(kept), footer=footer)


def webhook_body(embeds: Sequence[Embed], *, username: str | None = None,
                 content: str | None = None) -> dict[str, Any]:
    """The JSON body of one webhook message.

    `allowed_mentions` is empty so that text from the bot (a symbol, an error message) can
    never ping @everyone.
    """
    if not embeds and not content:
        raise ValueError("a webhook message needs content or at least one embed")
    if len(embeds) > MAX_EMBEDS:
        raise ValueError(f"{len(embeds)} embeds: Discord takes at most {MAX_EMBEDS}")
    total = sum(e.size() for e in embeds)
    if total > MAX_EMBED_TOTAL:
        raise ValueError(f"embeds total {total} characters: Discord takes at most "
                         f"{MAX_EMBED_TOTAL}")
    body: dict[str, Any] = {"allowed_mentions": {"parse": []}}
    if username:
        body["username"] = truncate(username, MAX_USERNAME)
    if content:
        body["content"] = truncate(content, MAX_CONTENT)
    if embeds:
        body["embeds"] = [e.to_json() for e in embeds]
    return body


# -- answers ------------------------------------------------------------------------------
@dataclass(frozen=True)
class WebhookReply:
    """What a webhook answer means for the sender (status plus Discord's rate-limit hints)."""

    status: int
    retry_after: float | None = None    # seconds to wait (429)
    remaining: int | None = None        # X-RateLimit-Remaining
    reset_after: float | None = None    # X-RateLimit-Reset-After (seconds)
    is_global: bool = False
    detail: str = ""                    # Discord's error message, if any (short)

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    @property
    def dead(self) -> bool:
        return self.status in DEAD_WEBHOOK_STATUSES

    @property
    def retryable(self) -> bool:
        """Worth sending again later: rate limited or a server-side failure."""
        return self.status == 429 or self.status >= 500


def _float(value: object) -> float | None:
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) and number >= 0 else None


def read_reply(status: int, headers: Mapping[str, str], body: bytes) -> WebhookReply:
    """Read Discord's answer: the status, `retry_after` (body, else header), rate-limit headers.

    `headers` must be case-insensitive (httpx.Headers is).
    """
    retry_after: float | None = None
    is_global = False
    detail = ""
    if body:
        try:
            parsed = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            parsed = None
        if isinstance(parsed, dict):
            retry_after = _float(parsed.get("retry_after"))
            is_global = parsed.get("global") is True
            message = parsed.get("message")
            if isinstance(message, str):
                detail = message[:200]
    if retry_after is None and status == 429:
        retry_after = _float(headers.get("retry-after"))
    remaining_text = headers.get("x-ratelimit-remaining")
    remaining = None
    if remaining_text is not None and remaining_text.strip().isdigit():
        remaining = int(remaining_text.strip())
    return WebhookReply(status=status, retry_after=retry_after, remaining=remaining,
                        reset_after=_float(headers.get("x-ratelimit-reset-after")),
                        is_global=is_global or headers.get("x-ratelimit-global") == "true",
                        detail=detail)


# -- pacing -------------------------------------------------------------------------------
MIN_INTERVAL_S = 0.4
"""At least this long between two requests: 5 per 2 s, the community-observed webhook limit."""

MAX_PER_MINUTE = 30
"""At most this many requests in any 60 s: the observed per-channel limit."""

RETRY_AFTER_CAP_S = 300.0
"""A `retry_after` longer than this is treated as this: a broken header must not mute the bot
for hours (a real ban is answered 429 again, and we wait again)."""


@dataclass
class Pacer:
    """When the next request may go, from our own spacing and Discord's headers.

    Times are trio seconds; the caller passes `now` so the pacer is a pure state machine.
    """

    min_interval: float = MIN_INTERVAL_S
    per_minute: int = MAX_PER_MINUTE
    _sent: deque[float] = field(default_factory=deque)
    _not_before: float = -math.inf

    def delay(self, now: float) -> float:
        """Seconds to wait before the next request (0 when it may go now)."""
        while self._sent and now - self._sent[0] >= 60.0:
            self._sent.popleft()
        wait = self._not_before - now
        if self._sent:
            wait = max(wait, self._sent[-1] + self.min_interval - now)
        if len(self._sent) >= self.per_minute:
            wait = max(wait, self._sent[0] + 60.0 - now)
        return max(0.0, wait)

    def sent(self, now: float) -> None:
        self._sent.append(now)

    def answered(self, now: float, reply: WebhookReply) -> None:
        """Honour 429 `retry_after` and an exhausted bucket (`X-RateLimit-Remaining: 0`)."""
        if reply.status == 429:
            wait = reply.retry_after if reply.retry_after is not None else 1.0
            self._not_before = max(self._not_before, now + min(wait, RETRY_AFTER_CAP_S))
        elif reply.remaining == 0 and reply.reset_after is not None:
            self._not_before = max(self._not_before,
                                   now + min(reply.reset_after, RETRY_AFTER_CAP_S))


# -- the poster ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Timeouts:
    connect: float = 3.0
    read: float = 8.0
    total: float = 10.0


class Webhook:
    """Posts bodies to one webhook URL with short timeouts; knows how to describe errors safely.

    Use `async with Webhook(url) as hook:`; the httpx client (anyio, so it runs on trio) keeps
    one connection alive between messages.
    """

    def __init__(self, url: str, timeouts: Timeouts = Timeouts()) -> None:
        self._url = url
        self._timeouts = timeouts
        self._client = httpx.AsyncClient(
            timeout=httpx.Timeout(timeouts.read, connect=timeouts.connect),
            follow_redirects=False,
            headers={"User-Agent": "crucible-bot notifier"})

    async def __aenter__(self) -> Webhook:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        with trio.move_on_after(2.0) as scope:
            scope.shield = True
            await self._client.aclose()

    async def post(self, body: dict[str, Any]) -> WebhookReply:
        """One POST within `timeouts.total`; any answer is a reply, no answer raises.

        Raises WebhookUnreachable (network error, timeout, a broken answer) whose text is
        safe to log: the URL is never in it.
        """
        try:
            with trio.fail_after(self._timeouts.total):
                response = await self._client.post(self._url, json=body)
        except trio.TooSlowError:
            raise WebhookUnreachable(
                f"no answer within {self._timeouts.total:g}s") from None
        except httpx.HTTPError as exc:
            raise WebhookUnreachable(self.describe_error(exc)) from None
        return read_reply(response.status_code, response.headers, response.content[:4096])

    def describe_error(self, exc: BaseException) -> str:
        """A one-line description of a delivery error with the URL (the secret) removed."""
        text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        return redact(text, self._url)


class WebhookUnreachable(Exception):
    """No usable answer from the webhook; `str()` is safe to log (no URL)."""


def redact(text: str, url: str) -> str:
    """`text` with the webhook URL, and its token path on its own, replaced by `***`."""
    if not url:
        return text
    text = text.replace(url, "***")
    try:
        path = httpx.URL(url).path
    except httpx.InvalidURL:
        return text
    if len(path) > 8:
        text = text.replace(path, "/***")
    token = path.rstrip("/").rsplit("/", 1)[-1]
    if len(token) >= 8:
        text = text.replace(token, "***")
    return text
