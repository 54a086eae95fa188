"""The tests' layout and the words that point into the code stay true.

Tests mirror the source: a test lives in the folder of the package or module it is mainly
about (tests/actors/notifier/ for actors/notifier.py, tests/runtime/ops/ for runtime/ops/),
except the whole-system runs (simulations over days, the bot against the simulator, kill -9,
soak, the real browser), which live under tests/system/. Every helper a test imports lives in
tests/harness/, so there is one place to look. And a file named in a docstring, a comment or a
page of docs/ exists: a moved or deleted file leaves no stale pointer behind.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

from tests.harness import REPO

TESTS = REPO / "tests"
SOURCE_TOPS = ("actors", "config", "deployment", "doctrine", "messages", "runtime", "tools")
CITED_TOPS = ("tests", "actors", "runtime", "doctrine", "tools", "config", "messages", "docs",
              "deployment")
CITED_PATH = re.compile(
    r"(?<![\w./-])((?:" + "|".join(CITED_TOPS) + r")/[\w/.-]*\w)(?![\w/*])")
"""A repository path as prose writes it: a file (`runtime/app/app.py's`), a folder
(`tests/system`), a module without its suffix, or a module's attribute
(`doctrine/brain.Brain.step`). A name prefix (`tools/bench_`) or a glob is not a path."""
PYTHON_M_TESTS = re.compile(r"python -m (tests(?:\.\w+)+)")
SKIPPED_DIRS = {".git", ".ci-venv", ".venv", "venv", "__pycache__", "logs", "state",
                ".mypy_cache", ".ruff_cache", ".pytest_cache", "node_modules"}


def _test_files() -> list[Path]:
    return sorted(p for p in TESTS.rglob("*.py")
                  if p.name.startswith(("test_", "bench_")) and "__pycache__" not in p.parts)


def _mirrors_source(folder: tuple[str, ...]) -> bool:
    """tests/<folder> mirrors a source package (a directory) or module (a .py file)."""
    if not folder:
        return True                              # tests/test_*.py: about the repository
    if folder[0] not in SOURCE_TOPS:
        return False
    package = REPO.joinpath(*folder)
    module = REPO.joinpath(*folder[:-1], folder[-1] + ".py")
    return package.is_dir() or module.is_file()


def test_every_test_file_sits_in_a_folder_that_mirrors_the_source_or_under_system() -> None:
    misplaced = []
    for path in _test_files():
        folder = path.relative_to(TESTS).parent.parts
        if folder[:1] == ("system",):
            continue
        if not _mirrors_source(folder):
            misplaced.append(path.relative_to(REPO).as_posix())
    assert misplaced == [], f"test files in no source folder's mirror: {misplaced}"


def test_every_helper_module_lives_in_the_harness() -> None:
    """A test folder holds tests and its pytest fixtures (conftest.py); helpers are shared
    from tests/harness/ (a second copy of a helper is how duplicates grew)."""
    stray = [p.relative_to(REPO).as_posix() for p in TESTS.rglob("*.py")
             if "__pycache__" not in p.parts
             and not p.name.startswith(("test_", "bench_"))
             and p.name not in ("conftest.py", "__init__.py")
             and p.relative_to(TESTS).parts[0] != "harness"]
    assert stray == [], f"helper modules outside tests/harness/: {stray}"


def test_no_test_imports_from_a_conftest_or_another_test_folder_s_helpers() -> None:
    """conftest.py is for fixtures (pytest finds them by folder); importing one by name hides
    a shared helper where nobody looks for it."""
    offenders = []
    for path in TESTS.rglob("*.py"):
        if "__pycache__" in path.parts:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and (
                    node.level > 0 or (node.module or "").endswith("conftest")):
                offenders.append(f"{path.relative_to(REPO).as_posix()}:{node.lineno}")
    assert offenders == [], f"imports from a conftest or a relative module: {offenders}"


def _texts() -> list[tuple[str, str]]:
    """(path, text) of every Python file of the repository and every Markdown page of docs/
    and the READMEs."""
    found = []
    for path in REPO.rglob("*.py"):
        rel = path.relative_to(REPO)
        if SKIPPED_DIRS.intersection(rel.parts):
            continue
        found.append((rel.as_posix(), path.read_text(encoding="utf-8")))
    for path in [*sorted((REPO / "docs").glob("*.md")), *sorted(REPO.glob("README*.md"))]:
        found.append((path.relative_to(REPO).as_posix(), path.read_text(encoding="utf-8")))
    return found


def _exists(cited: str) -> bool:
    if cited.endswith("_"):
        return True                              # a name prefix, not a path
    path = REPO / cited
    head, _, last = cited.rpartition("/")
    module = REPO / head / (last.split(".", 1)[0] + ".py")
    return path.exists() or path.with_name(path.name + ".py").is_file() or module.is_file()


def _stale(text: str) -> list[str]:
    return [cited for cited in CITED_PATH.findall(text) if not _exists(cited)]


def test_every_file_and_folder_cited_in_code_and_docs_exists() -> None:
    missing = sorted({f"{where}: {cited}" for where, text in _texts() for cited in _stale(text)})
    assert missing == [], "cited paths that do not exist:\n" + "\n".join(missing)


def test_every_python_m_tests_command_names_a_module_that_exists() -> None:
    missing = sorted({f"{where}: {module}" for where, text in _texts()
                      for module in PYTHON_M_TESTS.findall(text)
                      if not (REPO / (module.replace(".", "/") + ".py")).is_file()})
    assert missing == [], "python -m commands of modules that do not exist:\n" + "\n".join(missing)


def test_the_citation_check_sees_a_stale_path() -> None:
    """The check above is only worth something if it would catch one (the stale names are
    built here, so that this file does not cite them itself)."""
    gone, old_folder = "tests/" + "brain/test_gone.py", "tests/" + "money"
    text = (f"see {gone} and runtime/app/app.py's tree, {old_folder} and tests/system, "
            "doctrine/brain.Brain.step, tools/bench_* and tests/**/x.py")
    assert _stale(text) == [gone, old_folder]


def test_the_message_groups_named_in_messages_init_exist() -> None:
    doc = ast.get_docstring(ast.parse((REPO / "messages" / "__init__.py").read_text()))
    assert doc is not None
    table = doc.split("Grouped by channel", 1)[1].split("\n\n", 1)[0]
    groups = re.findall(r"^  (\w+) ", table, re.M)
    assert groups, "no group table in messages/__init__.py's docstring"
    assert [g for g in groups if not (REPO / "messages" / f"{g}.py").is_file()] == []
    modules = {p.stem for p in (REPO / "messages").glob("*.py")} - {"__init__", "base"}
    assert modules - set(groups) == set(), "a message module the docstring does not list"
