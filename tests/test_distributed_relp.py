"""RELP into an ingest node of the distributed mode, and sender binding there (issue 14, findings 2
and 3): Debian's rsyslog forwards with omrelp to `serve --role ingest`, which acknowledges a message
only once JetStream has it; the ingest node is killed with -9 mid-stream and restarted: every event
reaches the PostgreSQL store once. A line from an address not bound to the DC it names is kept out
of the stream's events and raises a `sender-mismatch` alert, as on one node."""

from __future__ import annotations

import json
import secrets
import shutil
import socket
import subprocess
import time
from datetime import timedelta
from pathlib import Path

import pytest

from eventfactory import T0
from natskit import NatsServer, bus_config, read_store
from servekit import Serve, frame, wait_for
from storekit import pg_database, pg_url  # noqa: F401
from test_relp import RSYSLOG_CONF, _free_port, send_through_rsyslog

pytestmark = [pytest.mark.needs_nats, pytest.mark.needs_pg, pytest.mark.integration]


def _forged(i: int) -> bytes:
    doc = {"@timestamp": (T0 + timedelta(seconds=i)).isoformat().replace("+00:00", "Z"),
           "winlog": {"event_id": 4776, "provider_name": "Microsoft-Windows-Security-Auditing", "channel": "Security",
                      "computer_name": "DC99.contoso.local", "record_id": 900 + i, "keywords": ["Audit Failure"],
                      "event_data": {"PackageName": "MICROSOFT_AUTHENTICATION_PACKAGE_V1_0",
                                     "TargetUserName": "alice", "Workstation": "KALI", "Status": "0xc000006a"}}}
    return frame(json.dumps(doc).encode())


def test_omrelp_into_an_ingest_node_killed_mid_stream_and_sender_binding(tmp_path: Path, pg_url: str) -> None:  # noqa: F811
    n = 20_000
    assert shutil.which("rsyslogd"), "scripts/bootstrap.sh installs rsyslog and rsyslog-relp"
    nats = NatsServer(tmp_path / "jetstream").start()
    relp, inport = _free_port(), _free_port()
    config = bus_config(f"relp{secrets.token_hex(3)}", extra='[serve]\nsenders = ["127.0.0.1 = DC01"]\n')
    common = ["--bus", nats.url, "--store", pg_url]
    ingest = Serve(tmp_path / "ingest", "--role", "ingest", *common, "--syslog-relp", f"127.0.0.1:{relp}",
                   config=config)
    detect = Serve(tmp_path / "detect", "--role", "detect", *common, config=config).start()
    ingest.start()
    work = tmp_path / "rsyslog"
    work.mkdir()
    (work / "rsyslog.conf").write_text(RSYSLOG_CONF.format(work=work, inport=inport, relp=relp, tls="", tlslib=""))
    rsyslog = subprocess.Popen(["rsyslogd", "-n", "-f", str(work / "rsyslog.conf"), "-i", str(work / "pid")],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT)

    def stored() -> int:
        return read_store(pg_url, "SELECT COUNT(*) FROM events")[0][0]

    try:
        send_through_rsyslog(inport, n)
        wait_for(lambda: stored() >= n // 5, what="a fifth of the stream stored", timeout=120, every=0.05)
        ingest.kill9()  # mid-stream: rsyslog keeps what JetStream had not acknowledged
        assert stored() < n, "the stream had ended before the kill: nothing was tested"
        ingest.start()
        wait_for(lambda: stored() >= n, timeout=300, what=f"all {n} events stored after the restart")
        time.sleep(2.0)
        assert read_store(pg_url, "SELECT COUNT(*), COUNT(DISTINCT record_id) FROM events")[0] == (n, n)
        with socket.socket() as s:  # an unbound address speaking for DC99
            s.bind(("127.0.0.3", 0))
            s.connect(("127.0.0.1", ingest.ports["tcp"]))
            s.sendall(b"".join(b"%d %s" % (len(m), m) for m in (_forged(i) for i in range(5))))
        alert = wait_for(lambda: read_store(pg_url, "SELECT body FROM alerts WHERE type = 'sender-mismatch'"),
                         what="the sender-mismatch alert", timeout=60)
        assert "DC99" in alert[0][0] and "127.0.0.3" in alert[0][0]
        assert read_store(pg_url, "SELECT COUNT(*) FROM events WHERE computer LIKE 'DC99%'")[0][0] == 0
    finally:
        rsyslog.kill()
        rsyslog.wait(timeout=10)
        ingest.stop()
        detect.stop()
        nats.stop()
