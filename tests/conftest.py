"""Shared test plumbing: where the shared corpus lives, how to read it, how to run the real CLI.

The corpus is read in place from `<repo root>/../shared` (or `$DCSENTRY_SHARED`): it is data
written outside the project, and a copy in the repo would drift from the manifest.
"""

from __future__ import annotations

import io
import json
import os
import pickle
import re
import select
import shutil
import signal
import subprocess
import sys
import time
import traceback
import warnings
from collections import Counter
from collections.abc import Iterable
from functools import cache
from pathlib import Path
from typing import Any

import msgspec
import pytest

import dcsentry.formats.evtx_native as evtx_native
from dcsentry.formats import Problem, ReadStats, read_stream
from dcsentry.model import WindowsEvent
from dcsentry.sources.files import read_paths

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("DCSENTRY_SHARED") or REPO.parent / "shared").resolve()
CORPUS = SHARED / "corpus"
EVTX_DIR = CORPUS / "evtx"
JSON_DIR = CORPUS / "json"

evtx_native.DEFAULT_STALL = 2.0  # a stuck native parser is cut short well within the fuzz tests' budget

if not (CORPUS / "manifest.json").is_file():  # fail loudly: a skipped corpus test proves nothing
    raise pytest.UsageError(f"shared corpus not found at {CORPUS}; set DCSENTRY_SHARED to the shared folder")


@cache
def manifest() -> list[dict[str, Any]]:
    """The corpus manifest (one entry per file, with counts per event id)."""
    return json.loads((CORPUS / "manifest.json").read_text(encoding="utf-8"))


def manifest_entry(rel: str) -> dict[str, Any]:
    for entry in manifest():
        if entry["path"] == rel:
            return entry
    raise KeyError(rel)


def corpus(rel: str) -> Path:
    """A corpus file by its manifest path; a missing file is a failure, not a skip."""
    p = CORPUS / rel
    assert p.is_file(), f"corpus file missing: {p}"
    return p


def read_file_events(path: str | Path, fmt: str | None = None) -> tuple[list[WindowsEvent], ReadStats]:
    """Everything the library yields for one path, with the stats it kept."""
    stats = ReadStats()
    events = list(read_paths([str(path)], stats, fmt))
    return events, stats


def read_bytes(data: bytes, source: str = "mem", fmt: str | None = None) -> tuple[list[WindowsEvent], ReadStats]:
    """Run `read_stream` over in-memory bytes (how the fuzz and shape tests feed readers)."""
    stats = ReadStats()
    events = list(read_stream(io.BytesIO(data), source, stats, fmt))
    return events, stats


def id_counts(events: Iterable[WindowsEvent]) -> dict[str, int]:
    """Counts per event id keyed like the manifest (`"4776"`)."""
    return {str(k): v for k, v in Counter(e.event_id for e in events).items()}


def dcsentry_cmd() -> list[str]:
    """The installed `dcsentry` console script of this interpreter's environment."""
    beside = Path(sys.executable).parent / "dcsentry"
    exe = str(beside) if beside.is_file() else shutil.which("dcsentry")
    assert exe, "the dcsentry console script is not installed (pip install -e .)"
    return [exe]


def run_cli(*args: str, stdin: bytes | None = None, timeout: float = 120,
            env: dict[str, str] | None = None) -> subprocess.CompletedProcess[bytes]:
    """The real CLI in a subprocess, stdout/stderr captured as bytes, never a terminal."""
    env = dict(os.environ, COLUMNS="200", NO_COLOR="1", **(env or {}))
    return subprocess.run([*dcsentry_cmd(), *args], input=stdin, capture_output=True, timeout=timeout, env=env,
                          check=False)


def jsonl_objects(stdout: bytes) -> list[dict[str, Any]]:
    """Every stdout line must be one JSON object: a stray print would break downstream tools."""
    out = []
    for line in stdout.decode("utf-8").splitlines():
        assert line.strip(), "blank line in --jsonl output"
        obj = json.loads(line)
        assert isinstance(obj, dict)
        out.append(obj)
    return out



CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")  # a problem line must not break lines or drive the terminal


def checked_read(data: bytes, fmt: str | None = None, source: str = "fuzz.bin") -> tuple[list[WindowsEvent], ReadStats]:
    """Read and assert the invariants every reader owes: no exception, every skip reported once,
    naming the source on one printable line, and every event fit for `events --jsonl`."""
    seen: list[Problem] = []
    stats = ReadStats(on_problem=seen.append)
    events = list(read_stream(io.BytesIO(data), source, stats, fmt))
    assert len(seen) == stats.skipped_total
    for p in seen:
        assert p.origin.source == source, p
        assert p.reason and not CONTROL.search(str(p)), repr(str(p))
    for ev in events:
        assert ev.origin is not None and ev.origin.source == source
        assert ev.time.tzinfo is not None
        assert all(type(k) is str and type(v) is str for k, v in ev.data.items())
        msgspec.json.encode(ev.to_dict())
    return events, stats


def isolated_read(data: bytes, fmt: str | None = None, source: str = "fuzz.bin",
                  timeout: float = 5.0) -> tuple[list[WindowsEvent], ReadStats] | None:
    """`checked_read` in a forked child, so input that makes the native EVTX parser spin (it holds
    the GIL: nothing in-process can stop it) cannot hang the suite. Returns None when the child did
    not finish in `timeout` s; a failure in the child is raised here with the child's traceback."""
    r, w = os.pipe()
    with warnings.catch_warnings():  # 3.12+ warns on fork with threads alive (the evtx pool): the child only reads
        warnings.filterwarnings("ignore", "This process .* is multi-threaded", DeprecationWarning)
        pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        try:
            os.close(r)
            try:
                events, stats = checked_read(data, fmt, source)
                stats.on_problem = None
                payload = pickle.dumps(("ok", events, stats))
            except BaseException:
                payload = pickle.dumps(("error", traceback.format_exc()))
            with os.fdopen(w, "wb") as out:
                out.write(payload)
        finally:
            os._exit(0)
    os.close(w)
    chunks: list[bytes] = []
    deadline = time.monotonic() + timeout
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([r], [], [], left)[0]:
                os.kill(pid, signal.SIGKILL)
                return None
            chunk = os.read(r, 1 << 16)
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        os.close(r)
        os.waitpid(pid, 0)
    kind, *rest = pickle.loads(b"".join(chunks))
    if kind == "error":
        raise AssertionError("in the reading child process:\n" + rest[0])
    return rest[0], rest[1]


# -- what a test needs: markers (registered in pyproject.toml, described in docs/testing.md) ----------
# `needs_pg`, `needs_nats`, `needs_kdc`, `browser` and `integration` (a subprocess or a network server
# of the test's own: the dcsentry CLI or `serve`, rsyslog, a loopback listener, forked children) sit
# on the test modules (`pytestmark`) or tests; the fixtures below add theirs here. Every test with
# none of them (nor `slow`) is `unit`, and a unit test that starts a subprocess, opens an Internet
# socket or connects to PostgreSQL fails with what to mark it instead (`_Guard`). Forks are not
# watched: the EVTX reader forks helpers of its own (formats/evtx_native.py), and that is the code
# under test; a test's own children (multiprocessing, `isolated_read`) are marked `integration`.
FIXTURE_MARKS = {"pg_url": "needs_pg", "pg_database": "needs_pg", "nats_server": "needs_nats",
                 "realm": "needs_kdc", "browser": "browser"}
NOT_UNIT = ("needs_pg", "needs_nats", "needs_kdc", "browser", "integration", "slow")


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects: the marks added here count
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        names = set(getattr(item, "fixturenames", ()))
        for fixture, mark in FIXTURE_MARKS.items():
            if fixture in names:
                item.add_marker(mark)
        callspec = getattr(item, "callspec", None)
        if callspec is not None and "postgresql" in callspec.params.values():  # storekit's store_url and
            item.add_marker("needs_pg")  # the like: a fixture parametrized by backend that takes pg_url late
        if not any(item.get_closest_marker(m) for m in NOT_UNIT):
            item.add_marker("unit")


class _Guard:
    """While a `unit` test runs (setup and call), what it must not do fails it. Only the main
    thread of the pytest process is watched: a thread left behind by an earlier service test must not
    fail a unit test, and a child the code under test forks does what it likes."""

    active: pytest.Item | None = None
    seen: list[str] = []
    pid = os.getpid()

    @classmethod
    def check(cls, what: str) -> None:
        import threading

        if cls.active is not None and os.getpid() == cls.pid and threading.current_thread() is threading.main_thread():
            msg = (f"{cls.active.nodeid} is marked unit (it has no needs_* / integration marker) but {what}: "
                   "mark it with what it needs (docs/testing.md)")
            cls.seen.append(msg)
            raise AssertionError(msg)

    @classmethod
    def install(cls) -> None:
        import socket

        inet = (socket.AF_INET, socket.AF_INET6)

        def wrap(owner: Any, name: str, what: str, when: Any = None) -> None:
            real = getattr(owner, name)

            def guarded(*args: Any, **kwargs: Any) -> Any:
                if when is None or when(*args):
                    cls.check(what)
                return real(*args, **kwargs)

            setattr(owner, name, guarded)

        wrap(subprocess.Popen, "__init__", "starts a subprocess")
        for name in ("bind", "connect", "connect_ex", "sendto"):
            wrap(socket.socket, name, f"uses an Internet socket ({name})", lambda s, *_: s.family in inet)
        try:
            import psycopg
        except ImportError:  # pragma: no cover - the test extra installs it
            return
        wrap(psycopg, "connect", "connects to PostgreSQL")


_Guard.install()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Any:
    # setup and call only: a teardown also finalizes the fixtures of the tests before (the session's
    # PostgreSQL database after the last test), which are theirs, not this test's
    _Guard.active = item if item.get_closest_marker("unit") else None
    try:
        return (yield)
    finally:
        _Guard.active = None


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Any:
    _Guard.active = item if item.get_closest_marker("unit") else None
    _Guard.seen.clear()
    try:
        result = yield
    finally:
        _Guard.active = None
    if _Guard.seen:  # raised, but caught and swallowed by the code under test: still a failure
        raise AssertionError(_Guard.seen[0])
    return result
