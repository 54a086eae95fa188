"""What the operator must hear. Channel: anyone -> Notifier (critical never dropped)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from messages.base import Message, UtcDatetime

Severity = Literal["debug", "info", "warning", "critical"]


class Alert(Message):
    """One notification. `key` lets the Notifier coalesce repeats of the same condition."""

    severity: Severity
    title: str
    text: str = ""
    source: str = ""
    ts: UtcDatetime
    key: str | None = None
    fields: dict[str, str] = Field(default_factory=dict)
