"""The Notifier's priority lanes: critical first and never dropped, repeats coalesced."""

from __future__ import annotations

import datetime as dt

from actors.notifier import Lanes, Pending
from messages.alerts import Alert, Severity

TS = dt.datetime(2026, 11, 20, 14, 30, tzinfo=dt.UTC)


def _alert(severity: Severity, title: str, key: str | None = None) -> Alert:
    return Alert(severity=severity, title=title, ts=TS, key=key, source="root.test")


def _titles(lanes: Lanes) -> list[str]:
    return [p.alert.title for p in lanes.drain()]


def test_critical_goes_first_then_warning_then_info_each_oldest_first() -> None:
    lanes = Lanes(info_capacity=10, warning_capacity=10)
    for severity, title in [("info", "i1"), ("warning", "w1"), ("critical", "c1"),
                            ("info", "i2"), ("critical", "c2"), ("warning", "w2")]:
        lanes.put(_alert(severity, title))  # type: ignore[arg-type]
    lanes.put_last(_alert("info", "farewell"))
    assert _titles(lanes) == ["c1", "c2", "w1", "w2", "i1", "i2", "farewell"]


def test_the_startup_message_goes_before_criticals_queued_earlier() -> None:
    lanes = Lanes(info_capacity=10, warning_capacity=10)
    lanes.put(_alert("critical", "gameplan missing"))
    lanes.put_first(_alert("info", "Bot started in DRY-RUN mode"))
    lanes.put_last(_alert("info", "farewell"))
    assert _titles(lanes) == ["Bot started in DRY-RUN mode", "gameplan missing", "farewell"]


def test_overflow_drops_the_oldest_info_and_never_a_critical() -> None:
    lanes = Lanes(info_capacity=3, warning_capacity=2)
    dropped: list[Pending] = []
    for i in range(500):
        dropped += lanes.put(_alert("critical", f"c{i}"))
        dropped += lanes.put(_alert("info", f"i{i}"))
    assert [p.alert.title for p in dropped] == [f"i{i}" for i in range(497)]
    assert lanes.dropped == {"info": 497} and lanes.unreported_drops == 497
    assert _titles(lanes) == [f"c{i}" for i in range(500)] + ["i497", "i498", "i499"]


def test_repeats_of_a_key_coalesce_and_keep_the_newest_text() -> None:
    lanes = Lanes(info_capacity=2, warning_capacity=2)
    for i in range(5):
        lanes.put(Alert(severity="info", title="farm down", text=f"try {i}", ts=TS, key="farm"))
    lanes.put(_alert("info", "other"))
    p = lanes.pop()
    assert p is not None and (p.count, p.alert.text) == (5, "try 4")
    assert lanes.dropped == {}


def test_an_alert_put_back_keeps_its_place_and_absorbs_repeats_that_came_meanwhile() -> None:
    lanes = Lanes(info_capacity=5, warning_capacity=5)
    lanes.put(_alert("warning", "link lost", key="link"))
    lanes.put(_alert("warning", "later"))
    in_flight = lanes.pop()
    assert in_flight is not None
    lanes.put(_alert("warning", "link lost", key="link"))      # repeats while in flight
    lanes.push_front(in_flight)
    first = lanes.pop()
    assert first is in_flight and first.count == 2
    assert _titles(lanes) == ["later"]
