"""Windows Event Forwarding into a real `dcsentry serve` over HTTPS with client certificates: the
test client (wefclient.py) plays the DCs' side of the conversation on real TLS sockets.

Enumeration and the Subscribe it carries, End, delivery of corpus events (and what the sensor makes
of them), heartbeats and the "stopped forwarding" health alert, SubscriptionEnd, the sender check,
refusals (wrong CA, expired certificate, no certificate, malformed SOAP, entity attacks, oversized
envelopes, wrong method or path), the counters on /metrics, `wef status` and `wef gpo-string`.
"""

from __future__ import annotations

import http.client
import json
import re
import socket
import ssl
from pathlib import Path

import pytest

from conftest import CORPUS, run_cli
from servekit import Serve, wait_for
from wefclient import WefClient, client_context, evtx_events, make_wef_pki

pytestmark = pytest.mark.integration

DCS = ["rootdc1.offsec.lan", "IE10Win7", "dc02.contoso.com", "dc03.contoso.com", "relay.contoso.com",
       "dc01.contoso.com"]
GROUPS = CORPUS / "evtx/evtx-to-mitre-attack/ID4728-4756-Member added to sensitive domain groups.evtx"
PSEXEC = CORPUS / "evtx/deepbluecli/metasploit-psexec-native-target-system.evtx"


def wef_port(serve: Serve, kind: str = "wef-https") -> int:
    for line in serve.lines:
        m = re.match(rf"{kind} listening on [\d.]+:(\d+)", line)
        if m:
            return int(m.group(1))
    raise AssertionError(f"no {kind} line in {serve.lines}")


def config(pki: dict, **wef: object) -> str:
    extra = "".join(f"{k} = {json.dumps(v)}\n" for k, v in wef.items())
    return (f'[health]\ncheck_interval = 0.5\n[wef]\nhttps = ["127.0.0.1:0"]\ncert = "{pki["server"]}"\n'
            f'key = "{pki["server_key"]}"\nclient_ca = ["{pki["ca"]}"]\n{extra}')


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict:
    return make_wef_pki(tmp_path_factory.mktemp("wefpki"), DCS)


@pytest.fixture(scope="module")
def svc(pki: dict, tmp_path_factory: pytest.TempPathFactory):
    d = tmp_path_factory.mktemp("wefserve") / "data"
    s = Serve(d, config=config(pki, heartbeat_interval=1.0, max_time=1.0, silent_after=4.0, compression=True,
                               intermediate_collectors=["relay.contoso.com"])).start()
    s.wef = wef_port(s)
    yield s
    s.stop()


def client(svc: Serve, pki: dict, cn: str) -> WefClient:
    return WefClient(f"https://localhost:{svc.wef}/wsman/SubscriptionManager/WEC", client_context(pki, f"client:{cn}"),
                     cn)


def metric(svc: Serve, kind: str) -> int:
    status, text = svc.http("/metrics")
    assert status == 200
    m = re.search(rf'^dcsentry_wef_total{{kind="{kind}"}} (\d+)', text, re.M)
    return int(float(m.group(1))) if m else 0


def test_enumeration_offers_the_default_subscription(svc: Serve, pki: dict) -> None:
    c = client(svc, pki, "dc03.contoso.com")
    reply, subs, end = c.enumerate()
    assert reply.status == 200 and reply.body.startswith(b"\xff\xfe")  # UTF-16LE with BOM, as Windows
    assert reply.headers["content-type"].lower() == "application/soap+xml;charset=utf-16"
    assert end.status == 204 and end.body == b""
    assert len(subs) == 1
    sub = subs[0]
    assert sub.name == "dcsentry" and sub.bookmark is None
    assert set(sub.channels) == {"Security", "System", "Microsoft-Windows-NTLM/Operational"}
    ids = {int(x) for x in re.findall(r"EventID=(\d+)", sub.channels["Security"])}
    assert ids >= {4776, 4728, 4729, 4732, 4733, 4756, 4757, 4624, 4625, 4768, 4769, 4771, 4662, 5136, 1102, 5145}
    assert "7045" in sub.channels["System"] and "8004" in sub.channels["Microsoft-Windows-NTLM/Operational"]
    assert "EventID=104" in sub.channels["System"]
    assert sub.profiles == ["http://schemas.dmtf.org/wbem/wsman/1/wsman/secprofile/https/mutual"]
    out = run_cli("wef", "gpo-string", "--host", "localhost", "--https-port", str(svc.wef), "--client-ca", str(pki["ca"]))
    assert out.returncode == 0, out.stderr
    line = out.stdout.decode().strip()
    assert line == (f"Server=HTTPS://localhost:{svc.wef}/wsman/SubscriptionManager/WEC,Refresh=60,"
                    f"IssuerCA={sub.issuer_thumbprints[0]}")
    assert re.fullmatch(r"[0-9A-F]{40}", sub.issuer_thumbprints[0])
    assert sub.address.startswith(f"https://localhost:{svc.wef}/wsman/subscriptions/")
    assert sub.heartbeat == "PT1.000S" and sub.max_envelope == 512000
    assert sub.compressed  # deliveries below come SLDC-compressed, as Windows sends them when asked


def test_serve_refuses_incomplete_wef_settings(tmp_path: Path) -> None:
    out = run_cli("serve", "--data-dir", str(tmp_path / "d"), "--web", "off", "--syslog-udp", "off",
                  "--syslog-tcp", "off", "--wef-https", "127.0.0.1:0")
    assert out.returncode != 0 and b"cert" in out.stderr
    out = run_cli("serve", "--data-dir", str(tmp_path / "d"), "--web", "off", "--syslog-udp", "off",
                  "--syslog-tcp", "off", "--wef-http", "127.0.0.1:0")
    assert out.returncode != 0 and b"keytab" in out.stderr


def test_corpus_events_are_delivered_stored_and_detected(svc: Serve, pki: dict) -> None:
    last = {}
    for path, cn in ((GROUPS, "rootdc1.offsec.lan"), (PSEXEC, "IE10Win7")):
        c = client(svc, pki, cn)
        _, (sub,), _ = c.enumerate()
        events = c.pending(sub, evtx_events(str(path)))
        assert events and all(e.computer == cn for e in events)
        c.deliver_all(sub, events)
        c.close()
        assert sub.positions == {events[0].channel: max(e.record_id for e in events)}
        last[cn] = sub.positions
    wait_for(svc.caught_up, what="the processor to catch up")
    stored = svc.query("SELECT computer, channel, event_id, source FROM events WHERE computer IN (?, ?)",
                       "rootdc1.offsec.lan", "IE10Win7")
    assert sorted(r[2] for r in stored if r[0] == "rootdc1.offsec.lan") == [4728, 4756, 4756, 4756]
    assert sorted(r[2] for r in stored if r[0] == "IE10Win7") == [104, 7045, 7045]  # its System log was cleared once
    assert all(r[3].startswith("https://127.0.0.1:") and "#" in r[3] for r in stored)
    types = wait_for(lambda: {a["type"] for a in svc.alerts()} >= {"sensitive-group-addition",
                                                                     "suspicious-service-creation"} and
                     {a["type"] for a in svc.alerts()}, what="alerts from the delivered events")
    assert "wef-sender-mismatch" not in types
    out = run_cli("wef", "status", "--data-dir", str(svc.data_dir), "--json")
    rows = {r["client"]: r for r in map(json.loads, out.stdout.decode().splitlines())}
    assert rows["rootdc1.offsec.lan"]["positions"] == last["rootdc1.offsec.lan"]
    assert rows["rootdc1.offsec.lan"]["events"] == 4
    assert rows["ie10win7"]["last_heartbeat"] and rows["ie10win7"]["state"] == "active"
    table = run_cli("wef", "status", "--data-dir", str(svc.data_dir)).stdout.decode()
    assert "rootdc1.offsec.lan" in table and f"Security={last['rootdc1.offsec.lan']['Security']}" in table


def test_sender_mismatch_raises_an_alert_except_for_intermediate_collectors(svc: Serve, pki: dict) -> None:
    forged = evtx_events(str(GROUPS), computer="dc02.contoso.com")
    for cn in ("dc01.contoso.com", "relay.contoso.com"):
        c = client(svc, pki, cn)
        _, (sub,), _ = c.enumerate()
        assert c.deliver(sub, forged[:2]).status == 200
        c.close()
    alert = wait_for(lambda: [a for a in svc.alerts() if a["type"] == "wef-sender-mismatch"],
                     what="the sender mismatch alert")
    assert len(alert) == 1
    a = alert[0]
    assert a["details"]["sender"] == "dc01.contoso.com" and a["details"]["claimed_computer"] == "dc02.contoso.com"
    assert a["count"] == 2 and a["severity"] == "high"
    assert "dc01.contoso.com" in a["description"] and "intermediate_collectors" in a["description"]


def test_silent_client_raises_stopped_forwarding_and_recovers(svc: Serve, pki: dict) -> None:
    c = client(svc, pki, "dc02.contoso.com")
    _, (sub,), _ = c.enumerate()
    assert c.heartbeat(sub)[0].status == 200
    c.close()

    def stopped() -> list[dict]:
        return [a for a in svc.alerts("health") if a["type"] == "health:wef-stopped"
                and a["details"].get("client") == "dc02.contoso.com"]
    a = wait_for(stopped, timeout=30, what="the stopped-forwarding health alert")[0]
    assert a["title"] == "DC02 stopped forwarding" and a["details"]["class"] == \
        "WindowsEventForwardingStoppedMonitoringAlert"
    assert c.heartbeat(sub)[0].status == 200  # it comes back: the alert closes
    c.close()
    wait_for(lambda: svc.query("SELECT status FROM alerts WHERE id = ?", a["id"])[0][0] == "closed", timeout=30,
             what="the health alert to close")
    end = c.subscription_end(sub, "Windows Event Forward Plugin failed to read events.")
    assert end.status == 200
    c.close()
    rows = {r["client"]: r for r in map(json.loads, run_cli("wef", "status", "--data-dir", str(svc.data_dir),
                                                                 "--json").stdout.decode().splitlines())}
    assert rows["dc02.contoso.com"]["state"] == "ended"
    assert "failed to read events" in rows["dc02.contoso.com"]["detail"]


def _raw_post(svc: Serve, ctx: ssl.SSLContext, body: bytes, path: str = "/wsman/SubscriptionManager/WEC",
              method: str = "POST", headers: dict | None = None) -> int:
    conn = http.client.HTTPSConnection("localhost", svc.wef, context=ctx, timeout=30)
    try:
        conn.request(method, path, body=body, headers={"Content-Type": "application/soap+xml;charset=UTF-16",
                                                       **(headers or {})})
        return conn.getresponse().status
    finally:
        conn.close()


def _handshake(svc: Serve, ctx: ssl.SSLContext) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", svc.wef), timeout=10) as raw, \
                ctx.wrap_socket(raw, server_hostname="localhost") as tls:
            tls.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
            return bool(tls.recv(100))
    except (ssl.SSLError, ConnectionError, OSError):
        return False


def test_refusals_are_counted_and_the_collector_keeps_serving(svc: Serve, pki: dict) -> None:
    good = client_context(pki, "client:dc03.contoso.com")
    before = {k: metric(svc, k) for k in ("tls_handshake_failures", "refused_malformed", "refused_dtd",
                                          "refused_oversized", "refused_method", "not_found")}
    bare = ssl.create_default_context(cafile=str(pki["ca"]))
    for ctx in (client_context(pki, "rogue"), client_context(pki, "expired"), bare):
        assert not _handshake(svc, ctx)
    assert _raw_post(svc, good, b"\xff\xfe" + "<s:Envelope><unclosed".encode("utf-16-le")) == 400
    assert _raw_post(svc, good, b"not xml at all") == 400
    laughs = ('<?xml version="1.0"?><!DOCTYPE s [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;">'
              '<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;">]><s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope">'
              "<s:Header/><s:Body>&c;</s:Body></s:Envelope>")
    xxe = ('<!DOCTYPE s [<!ENTITY x SYSTEM "file:///etc/passwd">]><s:Envelope '
           'xmlns:s="http://www.w3.org/2003/05/soap-envelope"><s:Header/><s:Body>&x;</s:Body></s:Envelope>')
    for doc in (laughs, xxe):
        assert _raw_post(svc, good, b"\xff\xfe" + doc.encode("utf-16-le")) == 400
    with socket.create_connection(("127.0.0.1", svc.wef), timeout=10) as raw, \
            good.wrap_socket(raw, server_hostname="localhost") as tls:  # refused from its headers, unread
        tls.sendall(b"POST /wsman/SubscriptionManager/WEC HTTP/1.1\r\nHost: localhost\r\n"
                    b"Content-Length: %d\r\n\r\n" % ((4 << 20) + 1))
        assert tls.recv(100).startswith(b"HTTP/1.1 413 ")
    assert _raw_post(svc, good, b"", method="GET") == 405
    assert _raw_post(svc, good, b"<x/>", path="/elsewhere") == 404
    after = {k: metric(svc, k) for k in before}
    assert after["tls_handshake_failures"] - before["tls_handshake_failures"] >= 3
    assert after["refused_malformed"] - before["refused_malformed"] >= 2
    assert after["refused_dtd"] - before["refused_dtd"] == 2
    assert after["refused_oversized"] - before["refused_oversized"] == 1
    assert after["refused_method"] - before["refused_method"] == 1
    assert after["not_found"] - before["not_found"] >= 1
    c = client(svc, pki, "dc03.contoso.com")  # still serving
    reply, subs, _ = c.enumerate()
    assert reply.status == 200 and subs
    assert svc.proc.poll() is None
