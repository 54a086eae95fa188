"""The stability report knows every event the bot can write to its journal."""

from __future__ import annotations

import re
from pathlib import Path

from tools.stability.events import EVENT_CLASSES

REPO = Path(__file__).resolve().parents[2]
EMITTING = ("actors", "runtime", "config", "doctrine", "messages", "tools")
LITERAL_EMIT = re.compile(r"\bemit\(\s*\"([a-z_]+)\"")
LITERAL_RECORD = re.compile(r"\"event\":\s*\"([a-z_]+)\"")
"""A journal line built by hand (the journal's own `journal_dropped` record)."""
ANY_EMIT = re.compile(r"\bemit\(\s*([^\s)])")
DYNAMIC_EMITTERS = {"runtime/supervision/actor.py"}
"""The one forwarding `emit(event, …)` (ActorContext → Journal); its callers pass literals."""


def emitted_event_names() -> dict[str, set[str]]:
    """Every event name a literal `emit("…")` call in the code can write, with its files."""
    found: dict[str, set[str]] = {}
    for top in EMITTING:
        for path in (REPO / top).rglob("*.py"):
            rel = path.relative_to(REPO).as_posix()
            text = path.read_text(encoding="utf-8")
            for name in LITERAL_EMIT.findall(text) + LITERAL_RECORD.findall(text):
                found.setdefault(name, set()).add(rel)
            for first in ANY_EMIT.findall(text):
                assert first == '"' or rel in DYNAMIC_EMITTERS or "def emit" in text, (
                    f"{rel}: emit() with a computed event name: the report cannot know it")
    return found


def test_every_event_the_code_can_emit_is_classified_by_the_report() -> None:
    emitted = emitted_event_names()
    assert {"startup", "shutdown", "link_down", "fill", "gameplan"} <= emitted.keys()
    missing = {name: sorted(files) for name, files in emitted.items()
               if name not in EVENT_CLASSES}
    assert not missing, f"events the stability report does not classify: {missing}"


def test_the_classification_names_no_event_the_code_never_emits() -> None:
    stale = set(EVENT_CLASSES) - emitted_event_names().keys()
    assert not stale, f"classified but never emitted (renamed?): {sorted(stale)}"
