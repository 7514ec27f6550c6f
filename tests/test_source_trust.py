"""Where an event came from is part of its identity (issue 14 findings 1 and 4), on a real `serve`:

- Syslog (unauthenticated) lines that claim a DC's computer, channel and next record ids do not make
  the DC's real events disappear when they arrive over WEF with a valid client certificate: the
  real events are detected (the brute force is raised) and take the stored rows over.
- Re-sent copies (a forwarder's reconnect) are removed before detection, with or without record
  ids: the brute force counts each attempt once, each event is stored once; and events that differ
  only by their sender's counter (Snare, whole seconds, no record id) are not taken for copies.
"""

from __future__ import annotations

import json
import re
from datetime import timedelta
from pathlib import Path

import pytest

from eventfactory import T0, ntlm_4776_xml
from servekit import Serve, frame, send_tcp, wait_for
from test_wef_service import config, wef_port
from wefclient import Event, WefClient, client_context, make_wef_pki

pytestmark = pytest.mark.integration

DC = "dc01.contoso.com"


def _xml(i: int, account: str, status: str, record_id: int) -> str:
    xml = ntlm_4776_xml(T0 + timedelta(seconds=i), account, "KALI", status, dc=DC)
    return re.sub(r"<EventRecordID>\d+</EventRecordID>", f"<EventRecordID>{record_id}</EventRecordID>", xml)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict:
    return make_wef_pki(tmp_path_factory.mktemp("trustpki"), [DC])


def test_unauthenticated_syslog_cannot_suppress_the_dcs_wef_events(tmp_path: Path, pki: dict) -> None:
    svc = Serve(tmp_path / "data", config=config(pki)).start()
    try:
        forged = [frame(_xml(i, "nobody", "0x0", 7000 + i).encode()) for i in range(20)]  # the next record ids
        send_tcp(svc.ports["tcp"], forged)
        wait_for(lambda: svc.query("SELECT COUNT(*) FROM events WHERE computer = ?", DC)[0][0] == 20,
                 what="the forged lines stored")
        c = WefClient(f"https://localhost:{wef_port(svc)}/wsman/SubscriptionManager/WEC",
                      client_context(pki, f"client:{DC}"), DC)
        _, (sub,), _ = c.enumerate()
        real = [Event("Security", 7000 + i, DC, _xml(i, "victim", "0xc000006a", 7000 + i)) for i in range(20)]
        assert c.deliver(sub, real).status == 200
        c.close()
        alert = wait_for(lambda: next((a for a in svc.alerts() if a["type"] == "brute-force"), None),
                         what="the brute force of the real events")
        assert alert["count"] == 20 and "victim" in alert["entities"]["accounts"]
        rows = wait_for(lambda: (lambda r: r if all(t == 1 for t, _ in r) else None)(
            svc.query("SELECT trusted, body FROM events WHERE computer = ? ORDER BY record_id", DC)),
            what="the real events in the stored rows")
        assert len(rows) == 20 and all("victim" in body and "nobody" not in body for _, body in rows)
    finally:
        assert svc.stop() == 0


def _winlogbeat(i: int, record_id: bool) -> bytes:
    win = {"event_id": 4776, "provider_name": "Microsoft-Windows-Security-Auditing", "channel": "Security",
           "computer_name": DC, "keywords": ["Audit Failure"],
           "event_data": {"PackageName": "MICROSOFT_AUTHENTICATION_PACKAGE_V1_0", "TargetUserName": "victim",
                          "Workstation": "KALI", "Status": "0xc000006a"}}
    if record_id:
        win["record_id"] = 8000 + i
    doc = {"@timestamp": (T0 + timedelta(seconds=i)).isoformat().replace("+00:00", "Z"), "winlog": win}
    return frame(json.dumps(doc).encode())


def _snare(i: int) -> bytes:
    """Snare carries no record id and whole-second times: 20 identical failures in one second differ
    only by Snare's event counter (field 4), which a re-sent copy keeps."""
    text = ("The computer attempted to validate the credentials for an account.    Authentication Package: "
            "MICROSOFT_AUTHENTICATION_PACKAGE_V1_0  Logon Account: victim  Source Workstation: KALI  "
            "Error Code: 0xc000006a")
    fields = ["MSWinEventLog", "1", "Security", str(9000 + i), T0.strftime("%a %b %d %H:%M:%S %Y"), "4776",
              "Microsoft-Windows-Security-Auditing", "N/A", "N/A", "Failure Audit", DC, "Credential Validation",
              "", text, str(400 + i)]
    return frame(f"<14>{T0.strftime('%b %d %H:%M:%S')} dc01 ".encode() + "\t".join(fields).encode())


@pytest.mark.parametrize("layout", ["with-record-ids", "without-record-ids", "snare-same-second"])
def test_re_sent_messages_are_stored_and_counted_once(tmp_path: Path, layout: str) -> None:
    svc = Serve(tmp_path / "data").start()
    try:
        if layout == "snare-same-second":
            batch = [_snare(i) for i in range(20)]
        else:
            batch = [_winlogbeat(i, layout == "with-record-ids") for i in range(20)]
        send_tcp(svc.ports["tcp"], batch)
        send_tcp(svc.ports["tcp"], batch[12:])  # the forwarder reconnects and sends its last 8 again
        wait_for(lambda: svc.spool_rows() >= 28, what="both sends spooled")
        wait_for(svc.caught_up, what="the processor")
        alert = wait_for(lambda: next((a for a in svc.alerts() if a["type"] == "brute-force"), None),
                         what="the brute force")
        assert alert["count"] == 20
        assert svc.query("SELECT COUNT(*) FROM events")[0][0] == 20
        counters = json.loads(wait_for(lambda: (lambda r: r[0][0] if r and json.loads(r[0][0]).get(
            "duplicates") == 8 else None)(svc.query("SELECT data FROM counters WHERE name = 'processor'")),
            what="8 duplicates counted"))
        assert counters["duplicates"] == 8
    finally:
        assert svc.stop() == 0
