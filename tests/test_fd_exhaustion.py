"""Running short of file descriptors does not take the service down (issue 14 finding 5): under
`ulimit -n 256`, 300 idle syslog connections and 300 half-sent web requests from one address
(127.0.0.2) leave room for a new sender's events (processed and stored), for /healthz and the API,
and the refusals are counted, not logged as a traceback per attempt."""

from __future__ import annotations

import json
import socket
import time
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

import servekit
from eventfactory import T0
from servekit import Serve, frame, send_tcp, wait_for

pytestmark = pytest.mark.integration

ATTACKER = "127.0.0.2"


def _connect_many(port: int, n: int, first: bytes = b"") -> list[socket.socket]:
    socks = []
    for _ in range(n):
        s = socket.socket()
        s.bind((ATTACKER, 0))
        s.settimeout(2)
        try:
            s.connect(("127.0.0.1", port))
            if first:
                s.sendall(first)
        except OSError:
            s.close()
            continue
        socks.append(s)
    return socks


def _events(n: int = 25) -> list[bytes]:
    out = []
    for i in range(n):
        doc = {"@timestamp": (T0 + timedelta(seconds=i)).isoformat().replace("+00:00", "Z"),
               "winlog": {"event_id": 4776, "provider_name": "Microsoft-Windows-Security-Auditing",
                          "channel": "Security", "computer_name": "DC01.contoso.local", "record_id": 900 + i,
                          "keywords": ["Audit Failure"],
                          "event_data": {"PackageName": "MICROSOFT_AUTHENTICATION_PACKAGE_V1_0",
                                         "TargetUserName": "victim", "Workstation": "WS9", "Status": "0xc000006a"}}}
        out.append(frame(json.dumps(doc).encode()))
    return out


def test_idle_and_half_sent_connections_under_ulimit_256(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(servekit, "DCSENTRY", ["prlimit", "--nofile=256:256", *servekit.DCSENTRY])
    svc = Serve(tmp_path / "data").start()
    held: list[socket.socket] = []
    try:
        held += _connect_many(svc.ports["tcp"], 300)
        held += _connect_many(svc.ports["web"], 300, b"GET /api/v1/alerts HTTP/1.1\r\nHost: x\r\n")  # never finished
        time.sleep(1.0)
        n = send_tcp(svc.ports["tcp"], _events())  # from 127.0.0.1: another peer
        wait_for(lambda: svc.query("SELECT COUNT(*) FROM events WHERE event_id = 4776")[0][0] >= n,
                 what="the new sender's events stored", timeout=60)
        base = f"http://127.0.0.1:{svc.ports['web']}"
        assert httpx.get(f"{base}/healthz", timeout=5).status_code == 200
        r = httpx.get(f"{base}/api/v1/alerts", headers={"Authorization": f"Bearer {svc.token}"}, timeout=5)
        assert r.status_code == 200
        metrics = httpx.get(f"{base}/metrics", headers={"Authorization": f"Bearer {svc.token}"}, timeout=5).text
        refused = [ln for ln in metrics.splitlines() if ln.startswith("dcsentry_connections_refused_total")]
        assert refused and float(refused[0].split()[-1]) > 0, refused
        assert 'dcsentry_web_refused_requests_total{reason="connections_refused"}' in metrics
        # the half-sent web requests are dropped after the header deadline
        wait_for(lambda: 'reason="header_timeouts"} 0.0' not in httpx.get(
            f"{base}/metrics", headers={"Authorization": f"Bearer {svc.token}"}, timeout=5).text,
                 what="header timeouts counted", timeout=30)
    finally:
        for s in held:
            s.close()
        assert svc.stop() == 0
    out = "".join(svc.lines)
    assert "Traceback" not in out and len(out) < 20_000, out[-3000:]
