"""The packages import each other one way only (docs/design.md, "Shape"): a table of what each
may import, checked against every import in src/ (those inside functions too). An import loop
between two packages, or a detector reaching for a runtime package, fails here."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

SRC = Path(__file__).resolve().parents[1] / "src" / "dcsentry"
# modules every package may use: records, tables, settings, small utilities
BASE = {"model", "catalogue", "alerts", "attack", "identity", "subcategories", "config", "child_process", "slots", "lru",
        "gcpolicy", "__version__"}
# package -> the packages it may import (besides BASE); lower rows never import higher ones
ALLOWED: dict[str, set[str]] = {
    "formats": set(),
    "activities": {"formats"},
    "detectors": {"activities", "formats"},
    "incidents": {"activities"},
    "synth": set(),
    "sinks": {"formats", "incidents"},
    "store": {"formats", "activities", "detectors"},
    "audit": {"formats", "store"},
    "sources": {"formats", "store"},
    "runtime": {"formats", "activities", "detectors", "incidents", "sinks", "store", "audit", "sources"},
    "bus": {"formats", "activities", "detectors", "store", "sources", "runtime"},
    "web": {"store", "audit"},
    "service": {"sinks", "store", "sources", "runtime", "bus", "web", "synth"},
    "hunt": {"formats", "activities", "detectors", "incidents", "sources"},
    "deploy": set(),
}
RUNTIME = {"runtime", "bus", "service", "web", "sources", "store", "audit", "cli"}


def _imports() -> dict[tuple[str, str], set[str]]:
    """(importing package, imported package) -> files, for every dcsentry import in src/."""
    edges: dict[tuple[str, str], set[str]] = defaultdict(set)
    for path in SRC.rglob("*.py"):
        rel = path.relative_to(SRC).parts
        src = rel[0].removesuffix(".py")
        pkg = list(rel[:-1])
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            targets: list[list[str]] = []
            if isinstance(node, ast.ImportFrom):
                if node.level:
                    base = pkg[:len(pkg) - node.level + 1]
                    targets = [base + node.module.split(".")] if node.module else [base + [a.name] for a in node.names]
                elif node.module and node.module.split(".")[0] == "dcsentry":
                    parts = node.module.split(".")[1:]
                    targets = [parts] if parts else [[a.name] for a in node.names]
            elif isinstance(node, ast.Import):
                targets = [a.name.split(".")[1:] for a in node.names if a.name.startswith("dcsentry.")]
            for t in targets:
                if t and t[0] != src:
                    edges[(src, t[0])].add("/".join(rel))
    return edges


def test_every_import_goes_down_the_table() -> None:
    bad = [f"{a} -> {b} ({', '.join(sorted(files))})" for (a, b), files in sorted(_imports().items())
           if a in ALLOWED and b not in BASE and b not in ALLOWED[a]]
    assert not bad, "imports against the layering:\n" + "\n".join(bad)


def test_no_package_is_missing_from_the_table() -> None:
    packages = {p.name for p in SRC.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    assert packages - set(ALLOWED) - {"cli"} == set()  # cli is the top: it may import anything


def test_detection_imports_no_runtime_package() -> None:
    for pkg in ("formats", "activities", "detectors"):
        assert not ALLOWED[pkg] & RUNTIME, pkg


def test_no_import_loop() -> None:
    graph: dict[str, set[str]] = defaultdict(set)
    for a, b in _imports():
        graph[a].add(b)

    def reaches(start: str, goal: str) -> bool:
        seen, todo = set(), [start]
        while todo:
            n = todo.pop()
            if n == goal:
                return True
            if n not in seen:
                seen.add(n)
                todo.extend(graph[n])
        return False

    loops = sorted({tuple(sorted((a, b))) for a in list(graph) for b in graph[a] if reaches(b, a)})
    assert not loops, loops
