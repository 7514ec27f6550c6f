"""`[serve] senders` binds syslog senders to the computers they may speak for (issue 14 finding 2),
on a real `serve`: a line from an unbound address claiming DC99 is not stored, not detected on and
not in DC health; it is counted and raises one `sender-mismatch` alert; the bound sender's events
go through. Malformed bindings stop the start with a clear error."""

from __future__ import annotations

import json
import socket
from datetime import timedelta
from pathlib import Path

import pytest

from conftest import run_cli
from eventfactory import T0
from servekit import Serve, frame, wait_for

from dcsentry.detectors.senders import SenderCheck, parse_bindings


def _line(computer: str, i: int) -> bytes:
    doc = {"@timestamp": (T0 + timedelta(seconds=i)).isoformat().replace("+00:00", "Z"),
           "winlog": {"event_id": 4776, "provider_name": "Microsoft-Windows-Security-Auditing", "channel": "Security",
                      "computer_name": computer, "record_id": 100 + i, "keywords": ["Audit Success"],
                      "event_data": {"PackageName": "MICROSOFT_AUTHENTICATION_PACKAGE_V1_0",
                                     "TargetUserName": "alice", "Workstation": "WS1", "Status": "0x0"}}}
    return frame(json.dumps(doc).encode())


def _send_from(source: str, port: int, msgs: list[bytes]) -> None:
    with socket.socket() as s:
        s.bind((source, 0))
        s.connect(("127.0.0.1", port))
        s.sendall(b"".join(b"%d %s" % (len(m), m) for m in msgs))


def test_parse_and_match() -> None:
    check = SenderCheck(["10.0.0.5 = DC01", "10.0.1.0/24 = dc02.contoso.com, DC03", "cn:wec01.contoso.com = *"])
    assert check.allows("10.0.0.5", None, "DC01.contoso.com") and not check.allows("10.0.0.5", None, "DC02")
    assert check.allows("10.0.1.77", None, "DC02") and check.allows("10.0.1.77", None, "dc03.contoso.com")
    assert check.allows("192.0.2.1", "WEC01.contoso.com", "anything") and not check.allows("192.0.2.1", None, "DC01")
    assert SenderCheck([]).allows("192.0.2.1", None, "DC99")  # no bindings: no check (the default)
    for bad in ("10.0.0.5", "nonsense = DC01", " = DC01", "10.0.0.5 = "):
        with pytest.raises(ValueError):
            parse_bindings([bad])


@pytest.mark.integration
def test_serve_refuses_a_spoofed_dc_and_keeps_the_bound_sender(tmp_path: Path) -> None:
    svc = Serve(tmp_path / "data", config='[serve]\nsenders = ["127.0.0.2 = DC01.contoso.local"]\n').start()
    try:
        _send_from("127.0.0.2", svc.ports["tcp"], [_line("DC01.contoso.local", i) for i in range(3)])
        _send_from("127.0.0.1", svc.ports["tcp"], [_line("DC99.contoso.local", 10 + i) for i in range(4)])
        _send_from("127.0.0.2", svc.ports["tcp"], [_line("DC99.contoso.local", 20)])  # bound, but not for DC99
        # the intake spools the 3 accepted events and, for the 5 refused lines, the sender alerts'
        # latest states (one message per alert and batch): the refused events themselves never
        wait_for(lambda: svc.spool_rows() >= 5, what="all batches spooled")
        wait_for(svc.caught_up, what="the processor")
        stored = svc.query("SELECT computer, COUNT(*) FROM events GROUP BY computer")
        assert stored == [("DC01.contoso.local", 3)]
        assert {dc for (dc,) in svc.query("SELECT DISTINCT dc FROM dc_health")} == {"DC01"}
        alerts = wait_for(lambda: (lambda a: a if len(a) == 2 else None)(
            [a for a in svc.alerts() if a["type"] == "sender-mismatch"]), what="one alert per sender")
        by_sender = {a["key"]: a for a in alerts}
        assert by_sender["127.0.0.1"]["count"] == 4 and "DC99.contoso.local" in by_sender["127.0.0.1"]["description"]
        assert by_sender["127.0.0.2"]["count"] == 1
        wait_for(lambda: "dcsentry_sender_mismatch_total 5.0" in svc.http("/metrics")[1],
                 what="the refusals on /metrics (the processor saves its counters every few seconds)")
    finally:
        assert svc.stop() == 0


@pytest.mark.integration
def test_a_malformed_binding_stops_the_start(tmp_path: Path) -> None:
    conf = tmp_path / "bad.toml"
    conf.write_text('[serve]\nsenders = ["somewhere = DC01"]\n')
    proc = run_cli("serve", "--config", str(conf), "--data-dir", str(tmp_path / "d"))
    assert proc.returncode == 2 and b"senders" in proc.stderr
