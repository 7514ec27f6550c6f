"""Running dcsentry the way Linux admins do (issue 14 finding 9): the shipped systemd unit passes
`systemd-analyze verify`, and `serve` runs end to end as an unprivileged user holding only
CAP_NET_BIND_SERVICE (what the unit grants), binding a syslog port below 1024."""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

import servekit
from conftest import corpus
from servekit import Serve, corpus_json, frame, send_tcp, wait_for

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parent.parent
UNIT = ROOT / "src" / "dcsentry" / "deploy" / "dcsentry.service"
USER = "dcsentry-ci"


def test_systemd_unit_verifies(tmp_path: Path) -> None:
    text = UNIT.read_text()
    for must in ("User=dcsentry", "NoNewPrivileges=yes", "ProtectSystem=strict", "StateDirectory=dcsentry",
                 "CapabilityBoundingSet=CAP_NET_BIND_SERVICE", "UMask=0077"):
        assert must in text, must
    unit = tmp_path / "dcsentry.service"  # what `dcsentry systemd-unit` prints: this install's command
    printed = subprocess.run([*servekit.DCSENTRY, "systemd-unit"], capture_output=True, text=True, timeout=60)
    assert printed.returncode == 0 and f"ExecStart={servekit.DCSENTRY[0]} serve" in printed.stdout
    assert printed.stdout.replace(servekit.DCSENTRY[0], "/opt/dcsentry/bin/dcsentry") == text
    unit.write_text(printed.stdout)
    assert shutil.which("systemd-analyze"), "systemd-analyze (package systemd) is needed"
    proc = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, timeout=60)
    problems = [ln for ln in (proc.stdout + proc.stderr).splitlines() if "dcsentry.service" in ln]
    assert proc.returncode == 0 and not problems, proc.stdout + proc.stderr


def _privileged_free_port() -> int:
    for port in range(700, 1000):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
                return port
            except OSError:
                continue
    raise AssertionError("no free port below 1024")


def _service_user() -> pwd.struct_passwd:
    try:
        return pwd.getpwnam(USER)
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", USER], check=True)
        return pwd.getpwnam(USER)


def _blocked_parents(path: Path, user: pwd.struct_passwd) -> list[Path]:
    """Directories on the way to the interpreter that the service user cannot traverse (a pyenv
    Python under /root on the CI machine; a real install lives in /opt/dcsentry)."""
    out = []
    for parent in Path(path).resolve().parents:
        st = parent.stat()
        if not st.st_mode & 0o001 and st.st_uid != user.pw_uid:
            out.append(parent)
    return out


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to create the service user and drop to it")
def test_serve_runs_as_an_unprivileged_user(monkeypatch: pytest.MonkeyPatch) -> None:
    user = _service_user()

    opened = {p: p.stat().st_mode for p in _blocked_parents(Path(sys.executable).resolve(), user)}
    for p, mode in opened.items():  # traverse only (o+x, no listing), put back below
        os.chmod(p, mode | 0o001)
    data = Path(tempfile.mkdtemp(prefix="dcsentry-nonroot-", dir="/tmp"))
    svc: Serve | None = None
    try:
        os.chown(data, user.pw_uid, user.pw_gid)
        port = _privileged_free_port()
        monkeypatch.setattr(servekit, "DCSENTRY", [
            "setpriv", f"--reuid={user.pw_uid}", f"--regid={user.pw_gid}", "--clear-groups",
            "--inh-caps=-all,+net_bind_service", "--ambient-caps=-all,+net_bind_service",
            "--bounding-set=-all,+net_bind_service", *servekit.DCSENTRY])
        svc = Serve(data / "state", "--syslog-tcp", f"127.0.0.1:{port}", env={"HOME": str(data)}).start()
        assert any(f"syslog-tcp listening on 127.0.0.1:{port}" in ln for ln in svc.lines)  # below 1024, not root
        uid = int(subprocess.run(["ps", "-o", "uid=", "-p", str(svc.proc.pid)], capture_output=True,
                                 text=True).stdout.split()[0])
        assert uid == user.pw_uid
        brute = corpus_json(corpus("evtx/deepbluecli/smb-password-guessing-security.evtx"), {4625})
        send_tcp(port, (frame(m) for m in brute[:300]))
        wait_for(lambda: any(a["type"] == "brute-force" for a in svc.alerts()), what="an alert raised as non-root")
        files = [p for p in (data / "state").rglob("*") if p.is_file()]
        assert files and all(p.stat().st_uid == user.pw_uid for p in files)
    finally:
        code = svc.stop() if svc is not None else 0
        shutil.rmtree(data, ignore_errors=True)
        for p, mode in opened.items():
            os.chmod(p, mode)
    assert code == 0, "".join(svc.lines)[-3000:] if svc else ""
