"""Every number in the tree says what it counts: inbox depths are labelled as such, gauges carry
their name and meaning, and a gauge name without its unit or noun is refused."""

from __future__ import annotations

import pytest

from runtime.supervision.tree import Gauge, TreeNode, render_tree

BARS_IN = Gauge("bars_in", "bars taken from the inbox since the program started")
POSITIONS = Gauge("contracts_by_position", "contracts held, per option position")


def _indicators() -> TreeNode:
    root = TreeNode("root", "root", "supervisor")
    node = root.child("indicators", "actor")
    node.depth_probe = lambda: {"bars": 0}
    node.set_gauge(BARS_IN, 3612)
    return root


def test_the_text_dump_labels_depths_as_inbox_and_gauges_by_name() -> None:
    line = render_tree(_indicators(), now=0.0)[1]
    assert "inbox.bars=0" in line and "bars_in=3612" in line
    assert " bars=" not in line          # no bare number that could be either


def test_the_json_dump_gives_each_gauge_its_value_and_meaning() -> None:
    root = _indicators()
    node = root.find("root.indicators")
    node.set_gauge(POSITIONS, {"SPY 20261120 600C": 2})
    snap = root.snapshot(now=0.0)["children"][0]
    assert snap["channels"] == {"bars": 0}
    assert snap["gauges"]["bars_in"] == {"value": 3612, "counts": BARS_IN.counts}
    assert snap["gauges"]["contracts_by_position"]["value"] == {"SPY 20261120 600C": 2}
    assert "contracts_by_position={SPY 20261120 600C:2}" in render_tree(root, now=0.0)[1]


def test_a_gauge_is_overwritten_not_accumulated() -> None:
    root = _indicators()
    root.find("root.indicators").set_gauge(BARS_IN, 3613)
    assert root.snapshot(now=0.0)["children"][0]["gauges"]["bars_in"]["value"] == 3613


@pytest.mark.parametrize("name", ["Bars", "bars in", "", "3bars"])
def test_a_gauge_name_must_be_lower_snake_case(name: str) -> None:
    with pytest.raises(ValueError, match="gauge name"):
        Gauge(name, "whatever")
