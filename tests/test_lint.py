"""The static checks of pyproject.toml ([tool.ruff], [tool.mypy]) pass on src/: a lint error or a
type error fails the suite like a failing test, with the tool's own report as the message."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration  # runs ruff and mypy as subprocesses (conftest's unit guard)

ROOT = Path(__file__).resolve().parents[1]


def _run(*args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout)


def test_ruff_check_src() -> None:
    r = _run("ruff", "check", "--no-cache", "--output-format", "concise", "src")
    assert r.returncode == 0, f"ruff check src failed:\n{r.stdout}{r.stderr}"


def test_mypy_src() -> None:
    # the files and options are pyproject's [tool.mypy]; the cache stays out of the tree (a read-only
    # checkout, parallel runs)
    r = _run("mypy", "--cache-dir", "/dev/null")
    assert r.returncode == 0, f"mypy failed:\n{r.stdout}{r.stderr}"
