"""Message patterns: the same complaint with different numbers is one pattern.

"Request 17 timed out after 5.0s" and "Request 942 timed out after 5.2s" must group together,
or a retry storm looks like a hundred unrelated one-off errors and criterion 6 never trips.
Volatile parts (instants, ids, numbers, quoted values) become placeholders; the words stay.
IB status codes are the exception: "code 1100" (connectivity lost) and "code 2104" (farm OK)
are different stories, so a number right after "code" or "error" is kept.
"""

from __future__ import annotations

import re

_KEPT_CODE = re.compile(r"(?i)\b(?:code|error|errorcode)\s*[=:#]?\s*$")
_NUMBER = re.compile(r"[-+]?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?")

_SUBSTITUTIONS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"\d{4}-\d\d-\d\d[T ]\d\d:\d\d(?::\d\d(?:\.\d+)?)?(?:Z|[+-]\d\d:?\d\d)?"),
     "<ts>"),
    (re.compile(r"\b\d\d:\d\d(?::\d\d(?:\.\d+)?)?\b"), "<time>"),
    (re.compile(r"\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-"
                r"[0-9a-fA-F]{12}\b"), "<id>"),
    (re.compile(r"\b0x[0-9a-fA-F]+\b"), "<hex>"),
    (re.compile(r"\b(?=[0-9a-fA-F]*\d)(?=[0-9a-fA-F]*[a-fA-F])[0-9a-fA-F]{8,}\b"), "<hex>"),
    (re.compile(r"'[^']*'"), "'<s>'"),
    (re.compile(r'"[^"]*"'), '"<s>"'),
    (re.compile(r"\b[A-Za-z]+[-_]\d+\b|\bDU\d+\b|\bU\d{5,}\b"), "<id>"),
)

MAX_PATTERN_CHARS = 160
"""Patterns are table cells: a long head line is cut here (the example keeps the full text)."""


def _number(match: re.Match[str]) -> str:
    before = match.string[max(0, match.start() - 16): match.start()]
    return match.group(0) if _KEPT_CODE.search(before) else "<n>"


def message_pattern(message: str) -> str:
    """The message with its volatile parts replaced by placeholders."""
    text = message
    for regex, replacement in _SUBSTITUTIONS:
        text = regex.sub(replacement, text)
    text = _NUMBER.sub(_number, text)
    text = " ".join(text.split())
    if len(text) > MAX_PATTERN_CHARS:
        text = text[: MAX_PATTERN_CHARS - 1] + "…"
    return text
