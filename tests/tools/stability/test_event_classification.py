"""The stability report knows every event the bot can write to its journal."""

from __future__ import annotations

from tests.harness import emitted_event_names
from tools.stability.events import EVENT_CLASSES


def test_every_event_the_code_can_emit_is_classified_by_the_report() -> None:
    emitted = emitted_event_names()
    assert {"startup", "shutdown", "link_down", "fill", "gameplan"} <= emitted.keys()
    missing = {name: sorted(files) for name, files in emitted.items()
               if name not in EVENT_CLASSES}
    assert not missing, f"events the stability report does not classify: {missing}"


def test_the_classification_names_no_event_the_code_never_emits() -> None:
    stale = set(EVENT_CLASSES) - emitted_event_names().keys()
    assert not stale, f"classified but never emitted (renamed?): {sorted(stale)}"
