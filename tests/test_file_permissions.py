"""Every file the service creates is private (issue 14 finding 8): the data directory 0700, the
store, the spool and their WAL/SHM files, the CEF and JSON-lines outputs 0600, whatever the umask
it was started with; a data directory left world-readable by an older version is tightened."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from conftest import corpus, run_cli
from servekit import Serve, corpus_json, frame, send_tcp, wait_for

pytestmark = pytest.mark.integration


def _mode(p: Path) -> int:
    return stat.S_IMODE(p.stat().st_mode)


def test_serve_creates_everything_private_whatever_the_umask(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir(mode=0o755)
    os.chmod(data, 0o755)
    (data / "old-notes.txt").write_text("left by an older version")
    os.chmod(data / "old-notes.txt", 0o644)
    out = tmp_path / "out"
    out.mkdir()
    old = os.umask(0o002)  # the child inherits a permissive umask
    try:
        svc = Serve(data, "--forward", f"jsonl://{out}/alerts.jsonl", "--forward", f"cef+file://{out}/alerts.cef").start()
    finally:
        os.umask(old)
    try:
        brute = corpus_json(corpus("evtx/deepbluecli/smb-password-guessing-security.evtx"), {4625})
        send_tcp(svc.ports["tcp"], (frame(m) for m in brute[:200]))
        wait_for(lambda: (out / "alerts.jsonl").exists() and (out / "alerts.cef").exists(), what="both outputs")
    finally:
        assert svc.stop() == 0
    assert _mode(data) == 0o700
    files = [p for p in data.rglob("*") if p.is_file()]
    assert {"dcsentry.db", "spool.db", "old-notes.txt"} <= {p.name for p in files}, [p.name for p in files]
    loose = {p.name: oct(_mode(p)) for p in files if _mode(p) & 0o077}
    assert not loose, loose
    for p in (out / "alerts.jsonl", out / "alerts.cef"):
        assert _mode(p) == 0o600, (p, oct(_mode(p)))


def test_hunt_state_database_is_private(tmp_path: Path) -> None:
    state = tmp_path / "state" / "hunt.db"
    old = os.umask(0o002)
    try:
        proc = run_cli("hunt", str(corpus("evtx/deepbluecli/smb-password-guessing-security.evtx")), "--jsonl",
                       "--state", f"sqlite:{state}")
    finally:
        os.umask(old)
    assert proc.returncode == 0, proc.stderr
    assert _mode(state) == 0o600 and _mode(state.parent) == 0o700
