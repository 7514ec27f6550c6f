"""RELP (issue 14 finding 3): the framing (fuzzed), a session driven by hand, and the real peer:
Debian's rsyslog with omrelp forwarding to `dcsentry serve --syslog-relp` (and, with its own client
certificate, to `--syslog-relp-tls`), `serve` killed with -9 a third of the way through, restarted on
the same port: every message is stored, none twice."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dcsentry.sources.syslog.relp import RelpError, parse_frames, response
from eventfactory import T0
from pki import make_pki
from servekit import Serve, wait_for


def test_frames_are_cut_where_their_length_says() -> None:
    buf = bytearray(b"1 open 3 a=b\n2 syslog 11 hello\nworld\n3 close 0\n4 sys")
    frames = parse_frames(buf)
    assert [(f.txnr, f.command, f.data) for f in frames] == [(1, "open", b"a=b"), (2, "syslog", b"hello\nworld"),
                                                             (3, "close", b"")]
    assert bytes(buf) == b"4 sys"  # the incomplete tail waits for more bytes
    assert response(7) == b"7 rsp 6 200 OK\n" and response(8, "") == b"8 rsp 0\n"


@pytest.mark.parametrize("bad", [b"x open 0\n", b"1 open 2 abc", b"1 syslog 3 abcX", b"1 op-en 0\n",
                                 b"1 syslog 999999999 a\n", b"A" * 100])
def test_broken_framing_is_refused(bad: bytes) -> None:
    with pytest.raises(RelpError):
        parse_frames(bytearray(bad + b"\n" * 3))


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_framing_fuzz_never_crashes(data: bytes) -> None:
    buf = bytearray(data)
    try:
        frames = parse_frames(buf)
    except RelpError:
        return
    assert all(f.txnr >= 0 for f in frames) and len(buf) <= len(data)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _event(i: int) -> bytes:
    doc = {"@timestamp": (T0 + timedelta(milliseconds=i)).isoformat().replace("+00:00", "Z"),
           "winlog": {"event_id": 4776, "provider_name": "Microsoft-Windows-Security-Auditing", "channel": "Security",
                      "computer_name": "DC01.contoso.local", "record_id": 10_000 + i, "keywords": ["Audit Success"],
                      "event_data": {"PackageName": "MICROSOFT_AUTHENTICATION_PACKAGE_V1_0",
                                     "TargetUserName": f"user{i % 500}", "Workstation": f"WS{i % 300}", "Status": "0x0"}}}
    return json.dumps(doc, separators=(",", ":")).encode()


@pytest.mark.integration
def test_a_session_is_acknowledged_once_stored(tmp_path: Path) -> None:
    port = _free_port()
    svc = Serve(tmp_path / "data", "--syslog-relp", f"127.0.0.1:{port}").start()
    try:
        assert any(f"syslog-relp listening on 127.0.0.1:{port}" in ln for ln in svc.lines)
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            offer = b"relp_version=0\nrelp_software=test\ncommands=syslog"
            msgs = [b"<13>1 2024-03-04T09:00:00Z dc01 winlogbeat - - - " + _event(i) for i in range(3)]
            s.sendall(b"1 open %d %s\n" % (len(offer), offer) + b"".join(
                b"%d syslog %d %s\n" % (i + 2, len(m), m) for i, m in enumerate(msgs)) + b"5 close 0\n")
            got = b""
            while not got.endswith(b"5 rsp 0\n"):
                chunk = s.recv(4096)
                assert chunk, got
                got += chunk
        lines = got.split(b"\n")
        assert lines[0].startswith(b"1 rsp ") and b"200 OK" in got and b"commands=syslog" in got
        assert b"2 rsp 6 200 OK" in got and b"3 rsp 6 200 OK" in got and b"4 rsp 6 200 OK" in got
        assert svc.spool_rows() >= 3  # acknowledged means durable: already in the spool
    finally:
        assert svc.stop() == 0


RSYSLOG_CONF = """
global(workDirectory="{work}" maxMessageSize="256k")
module(load="imtcp")
module(load="omrelp"{tlslib})
input(type="imtcp" port="{inport}" address="127.0.0.1" ruleset="fwd")
ruleset(name="fwd") {{
  action(type="omrelp" target="127.0.0.1" port="{relp}" template="RSYSLOG_SyslogProtocol23Format"
         action.resumeRetryCount="-1" action.resumeInterval="1" queue.type="LinkedList" queue.size="400000"
         queue.dequeueBatchSize="512" queue.saveOnShutdown="off"{tls})
}}
"""
# omrelp over TLS with its own client certificate (mutual TLS), checking the server's name: events
# from such a peer are authenticated (identity.py), so the stored rows say `trusted`.
OMRELP_TLS = (' tls="on" tls.caCert="{ca}" tls.myCert="{cert}" tls.myPrivKey="{key}" tls.authMode="name"'
              ' tls.permittedPeer=["localhost"]')


@pytest.mark.integration
@pytest.mark.parametrize("tls", [False, True], ids=["relp", "relp-mutual-tls"])
def test_rsyslog_omrelp_with_kill_9_mid_stream_loses_nothing(tmp_path: Path, tls: bool) -> None:
    n = 30_000
    assert shutil.which("rsyslogd"), "scripts/bootstrap.sh installs rsyslog and rsyslog-relp"
    relp, inport = _free_port(), _free_port()
    work = tmp_path / "rsyslog"
    work.mkdir()
    conf = work / "rsyslog.conf"
    listen = ["--syslog-relp", f"127.0.0.1:{relp}"]
    extra, lib = "", ""
    if tls:
        (tmp_path / "pki").mkdir()
        pki = make_pki(tmp_path / "pki")
        listen = ["--syslog-relp-tls", f"127.0.0.1:{relp}", "--tls-cert", str(pki["server"]),
                  "--tls-key", str(pki["server_key"]), "--tls-client-ca", str(pki["ca"])]
        extra = OMRELP_TLS.format(ca=pki["ca"], cert=pki["client"], key=pki["client_key"])
        lib = ' tls.tlslib="openssl"'
    conf.write_text(RSYSLOG_CONF.format(work=work, inport=inport, relp=relp, tls=extra, tlslib=lib))
    data = tmp_path / "data"
    svc = Serve(data, *listen).start()
    rsyslog = subprocess.Popen(["rsyslogd", "-n", "-f", str(conf), "-i", str(work / "pid")],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        send_through_rsyslog(inport, n)
        wait_for(lambda: svc.spool_rows() >= n // 3, what="a third of the stream spooled", every=0.02)
        svc.kill9()  # mid-stream: rsyslog holds what was not acknowledged
        assert svc.spool_rows() < n, "the stream had ended before the kill: nothing was tested"
        svc = Serve(data, *listen).start()
        wait_for(lambda: svc.query("SELECT COUNT(*) FROM events")[0][0] >= n, timeout=240,
                 what=f"all {n} events stored after the restart")
        time.sleep(2.0)
        stored = svc.query("SELECT COUNT(*), COUNT(DISTINCT record_id), SUM(trusted) FROM events")[0]
        assert stored == (n, n, n if tls else 0), stored  # nothing lost, nothing twice; mTLS: authenticated
    finally:
        rsyslog.kill()
        rsyslog.wait(timeout=10)
        assert svc.stop() == 0


def send_through_rsyslog(inport: int, n: int) -> None:
    """Events 0..n-1 into rsyslog's imtcp input, LF-framed, once it listens (omrelp forwards them)."""
    wait_for(lambda: _can_connect(inport), what="rsyslog's imtcp input", timeout=30)
    with socket.create_connection(("127.0.0.1", inport), timeout=30) as s:
        for start in range(0, n, 2000):
            s.sendall(b"".join(b"<13>1 2024-03-04T09:00:00Z dc01 winlogbeat - - - " + _event(i) + b"\n"
                               for i in range(start, min(n, start + 2000))))


def _can_connect(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False
