"""docs/REFERENCE.md names everything the code offers an operator, and no document points
outside the repository.

The reference is written by hand (it explains), so these tests keep it complete: every setting
the Settings model reads, every journal event some code emits (found in the source, not in a
list that could go stale with it), every endpoint the health server routes, every option of
`python -m runtime`. And every relative link in the documentation resolves to a file in the
repository: an operator's clone has no ../shared.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from config.settings import Settings
from runtime.app.cli import build_parser
from runtime.ops.http_app import ENDPOINTS  # the routes the HTTP server answers
from tests.harness import REPO, emitted_event_names

REFERENCE = REPO / "docs" / "REFERENCE.md"
DOCS = [REPO / "README.md", REPO / "README_DEPLOYMENT.md", *sorted((REPO / "docs").glob("*.md")),
        *sorted((REPO / "deployment").rglob("*.md"))]


@pytest.fixture(scope="module")
def reference() -> str:
    return REFERENCE.read_text(encoding="utf-8")


def test_every_setting_is_in_the_reference(reference: str) -> None:
    aliases = {f.alias for f in Settings.model_fields.values() if f.alias}
    assert len(aliases) > 20
    missing = sorted(a for a in aliases if f"`{a}`" not in reference)
    assert not missing, f"settings missing from docs/REFERENCE.md: {missing}"


def test_every_journal_event_is_in_the_reference(reference: str) -> None:
    events = set(emitted_event_names())
    assert {"startup", "link_up", "gameplan", "shutdown"} <= events   # the scan found them
    missing = sorted(e for e in events if f"`{e}`" not in reference)
    assert not missing, f"journal events missing from docs/REFERENCE.md: {missing}"


def test_every_endpoint_is_in_the_reference(reference: str) -> None:
    routes = {e.split(" ", 1)[1] for e in ENDPOINTS}
    assert {"/health", "/tree", "/kill-switch", "/api/status", "/ws"} <= routes
    missing = sorted(r for r in routes if not re.search(
        rf"`(?:(?:GET|POST|WS) )?{re.escape(r)}`", reference))
    assert not missing, f"endpoints missing from docs/REFERENCE.md: {missing}"


def test_every_runtime_option_and_exit_code_is_in_the_reference(reference: str) -> None:
    options = {o for action in build_parser()._actions for o in action.option_strings
               if o.startswith("--")} - {"--help"}
    missing = sorted(o for o in options if o not in reference)
    assert not missing, f"python -m runtime options missing from docs/REFERENCE.md: {missing}"
    codes = reference[reference.index("### Exit codes"):reference.index("## Settings")]
    for code in ("| 0 |", "| 1 |", "| 2 |"):
        assert code in codes
    assert "Refusing to start: STATE_DIR:" in codes and "Bot already running" in codes


def test_every_gameplan_tool_command_is_in_the_reference(reference: str) -> None:
    for command in ("python -m tools.gameplan new", "python -m tools.gameplan check PATH",
                    "python -m tools.gameplan schema"):
        assert command in reference


_LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(REPO)))
def test_documents_point_only_inside_the_repository(doc: Path) -> None:
    text = doc.read_text(encoding="utf-8")
    assert "CONTRACT.md" not in text, "CONTRACT.md is not in the repository: docs/REFERENCE.md"
    for target in _LINK.findall(text):
        if re.match(r"[a-z]+:", target):       # http:, https:, file:, mailto:
            continue
        resolved = (doc.parent / target).resolve()
        assert resolved.is_relative_to(REPO), f"{target} leaves the repository"
        assert resolved.exists(), f"{doc.name} links to {target}, which does not exist"
