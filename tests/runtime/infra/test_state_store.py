"""Atomic state files: a crash leaves old or new state, an unreadable file is never a reset."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from runtime.infra.state_store import StateStore, StateUnreadable


def test_save_then_load_round_trips_and_missing_is_none(tmp_path: Path) -> None:
    store = StateStore(tmp_path / "state")
    assert store.load("risk") is None
    store.save("risk", {"day": "2026-11-20", "pnl": -12.5, "pdt": ["2026-11-18"]})
    assert store.load("risk") == {"day": "2026-11-20", "pnl": -12.5, "pdt": ["2026-11-18"]}
    assert [p.name for p in (tmp_path / "state").iterdir()] == ["risk.json"]   # no temp left


@pytest.mark.parametrize("content", [b"", b"{not json", b"\xff\xfe", b"[]", b'{"state": {}}',
                                     b'{"format": 99, "state": {}}'])
def test_an_unreadable_or_foreign_file_raises_instead_of_resetting(
        tmp_path: Path, content: bytes) -> None:
    store = StateStore(tmp_path)
    (tmp_path / "risk.json").write_bytes(content)
    with pytest.raises(StateUnreadable, match=r"risk\.json"):
        store.load("risk")


def test_a_failed_write_leaves_the_previous_state_intact(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = StateStore(tmp_path)
    store.save("risk", {"pnl": 1.0})

    def broken_replace(src: str, dst: str) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        store.save("risk", {"pnl": 2.0})
    monkeypatch.undo()
    assert store.load("risk") == {"pnl": 1.0}
    assert [p.name for p in tmp_path.iterdir()] == ["risk.json"]


def test_non_finite_numbers_are_refused_rather_than_written(tmp_path: Path) -> None:
    store = StateStore(tmp_path)
    with pytest.raises(ValueError):
        store.save("risk", {"pnl": float("nan")})
    assert store.load("risk") is None


def test_the_file_is_plain_json_an_operator_can_read(tmp_path: Path) -> None:
    StateStore(tmp_path).save("risk", {"halted": True})
    doc = json.loads((tmp_path / "risk.json").read_text(encoding="utf-8"))
    assert doc == {"format": 1, "state": {"halted": True}}
