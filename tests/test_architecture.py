"""The house rules a newcomer relies on, checked: module size, who imports whom, no circles, a
README whose paths exist."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PRODUCT = ("shared", "services", "ui")
MAX_LINES = 400


def modules() -> dict[str, Path]:
    found = {}
    for package in PRODUCT:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            found[name] = path
    return found


def imports_of(path: Path, name: str, known: set[str]) -> set[str]:
    """Product modules `path` imports anywhere in it (function-level imports included)."""
    out: set[str] = set()
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text())):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1])
                base = f"{base}.{node.module}" if node.module else base
            targets = [f"{base}.{a.name}" for a in node.names] + [base]
        for t in targets:
            while t and t not in known:
                t = t.rpartition(".")[0]
            if t and t != name:
                out.add(t)
    return out


def graph() -> dict[str, set[str]]:
    mods = modules()
    return {name: imports_of(path, name, set(mods)) for name, path in mods.items()}


def test_no_product_module_over_the_limit() -> None:
    long = {
        str(p.relative_to(ROOT)): n
        for p in modules().values()
        if (n := len(p.read_text().splitlines())) > MAX_LINES
    }
    assert long == {}


@pytest.mark.parametrize(
    ("importer", "forbidden"),
    [
        ("services.gateway", "services.trainer"),
        ("services.candidate", "services.trainer"),
        ("services.ranker", "services.trainer"),
        ("services.trainer", "services.gateway"),
        ("services.gateway", "services.candidate"),
        ("services.gateway", "services.ranker"),
        ("services.candidate", "services.ranker"),
        ("services.ranker", "services.candidate"),
        ("shared", "services"),
        ("shared", "ui"),
        ("ui", "services"),
    ],
)
def test_services_meet_over_http_and_the_queue_not_by_import(importer: str, forbidden: str) -> None:
    wrong = {
        (m, t)
        for m, targets in graph().items()
        if m == importer or m.startswith(importer + ".")
        for t in targets
        if t == forbidden or t.startswith(forbidden + ".")
    }
    assert wrong == set()


def test_no_import_circle() -> None:
    g = graph()
    state: dict[str, int] = {}
    circles: list[list[str]] = []

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(g[node]):
            if state.get(nxt) == 1:
                circles.append([*path[path.index(nxt) :], nxt])
            elif nxt not in state:
                visit(nxt, [*path, nxt])
        state[node] = 2

    for node in sorted(g):
        if node not in state:
            visit(node, [node])
    # a package's __init__ importing nothing cannot close a circle; what remains is real
    assert circles == []


@pytest.mark.parametrize(
    ("service", "foreign"),
    [
        # lightgbm imports sklearn where it is installed: only the candidate service is free of it
        ("candidate", ("shared.training", "shared.ml.stage_one.fit", "sklearn", "lightgbm")),
        ("ranker", ("shared.training", "shared.ml.stage_one.fit")),
    ],
)
def test_a_serving_stage_loads_no_training_code(service: str, foreign: tuple[str, ...]) -> None:
    names = (*foreign, "celery", "dask")
    probe = (
        f"import sys, services.{service}.app\n"
        f"print(sorted({{m for m in sys.modules if m.startswith({names!r})}}))"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"


def test_readme_is_short_and_every_path_it_names_exists() -> None:
    text = (ROOT / "README.md").read_text()
    assert len(text.splitlines()) <= 150
    named = set(re.findall(r"\]\(((?!https?:|#)[^)#\s]+)", text))  # markdown links
    named |= {
        m
        for m in re.findall(r"`([\w./-]+/[\w./-]*)`", text)  # `folder/` or `path/file.ext`
        # var/ is what a running stack writes (logs, benchmark results), not part of the tree
        if not m.startswith(("http", "localhost", "127.", "var/")) and "<" not in m
    }
    missing = sorted(p for p in named if not (ROOT / p.rstrip("/")).exists())
    assert missing == []
