"""`dcsentry serve` raises the DC-log alert types live: every DC-log recording that must raise
something is sent over syslog TCP (RFC 5424, evtx JSON body, octet-counted), file after file; each
type the truth demands is stored, printed and forwarded as CEF with its MDI / XDR ids."""

from __future__ import annotations

import json
from typing import Any

import pytest

from conftest import CORPUS, corpus
from servekit import CefReceiver, Serve, corpus_json, frame, send_tcp, wait_for

pytestmark = pytest.mark.integration

EXPECTED: list[dict[str, Any]] = json.loads((CORPUS / "expected-dc-log.json").read_text(encoding="utf-8"))
FILES = [e for e in EXPECTED if e["must"] and e["path"].startswith("dc-log/evtx/")]


@pytest.fixture()
def receiver():
    r = CefReceiver()
    yield r
    r.close()


def test_serve_raises_every_dc_log_type_from_syslog(tmp_path, receiver) -> None:
    svc = Serve(tmp_path / "data", "--forward", f"cef+tcp://127.0.0.1:{receiver.port}").start()
    try:
        sent = 0
        for e in FILES:
            sent += send_tcp(svc.ports["tcp"], (frame(m) for m in corpus_json(corpus(e["path"]))))
        wait_for(lambda: svc.spool_rows() >= sent, what=f"{sent} messages in the spool")
        wait_for(svc.caught_up, what="the processor to catch up", timeout=120)
        want = {t for e in FILES for t in e["must"]}
        got = wait_for(lambda: (lambda t: t if want <= t else None)({a["type"] for a in svc.alerts()}),
                       what=f"alert types {sorted(want)}", timeout=60)
        assert want <= got
        by_type = {a["type"]: a for a in svc.alerts()}
        assert by_type["dcsync"]["external_id"] == 2006 and by_type["dcsync"]["technique"] == "T1003.006"
        assert by_type["kerberoasting"]["xdr_id"] == "xdr_PossibleKerberoastingAttack"
        cef = wait_for(lambda: receiver.with_text("DirectoryServicesReplicationSecurityAlert"), what="CEF for DCSync")
        assert "externalId=2006" in cef[-1] and "cs5=T1003.006" in cef[-1]
        wait_for(lambda: any(line.startswith("ALERT ") and "dcsync" in line for line in svc.lines),
                 what="the DCSync alert line on the service's stdout")
    finally:
        assert svc.stop() == 0
