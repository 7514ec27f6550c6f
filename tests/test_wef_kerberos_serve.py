"""Windows Event Forwarding into a real `dcsentry serve` over HTTP with Kerberos, end to end.

A temporary MIT realm (krbkit) gives the DCs' machine accounts their tickets; `dcsentry serve`
gets only the keytab with its HTTP/ and HOST/ keys (and the realm's krb5.conf through
KRB5_CONFIG, as a Linux host joined to the domain would have in /etc/krb5.conf). The Windows side
is wefclient's WS-Man conversation carried by wefclient_kerberos: authentication on each new
connection with an empty POST, then every SOAP body SLDC-compressed (when the subscription asks)
and GSS-encrypted in `multipart/encrypted`, every reply decrypted and checked.
"""

from __future__ import annotations

import base64
import http.client
import json
import re
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
from conftest import CORPUS, run_cli
from krbkit import Realm, in_process, start_realm
from servekit import Serve, wait_for
from wefclient import Reply, WefClient, evtx_events, sldc_compress
from wefclient_kerberos import KerberosClient, KerberosHTTP

pytestmark = [pytest.mark.needs_kdc, pytest.mark.integration]

HOST = "wec.dcsentry.test"
GROUPS = CORPUS / "evtx/evtx-to-mitre-attack/ID4728-4756-Member added to sensitive domain groups.evtx"
SPNEGO_PROFILE = "http://schemas.dmtf.org/wbem/wsman/1/wsman/secprofile/http/spnego-kerberos"


class KerberosWefClient(WefClient):
    """wefclient's Windows conversation over Kerberos-encrypted HTTP: each connection authenticates
    first (the capture shows `Content-Encoding: SLDC` already on the empty POST to NotifyTo)."""

    def __init__(self, manager_url: str, machine_id: str, ccache: str, scheme: str = "Kerberos") -> None:
        super().__init__(manager_url, None, machine_id)
        self.ccache, self.scheme = ccache, scheme

    def connect(self, url: str) -> KerberosHTTP:  # type: ignore[override]
        u = urlsplit(url)
        assert u.scheme == "http" and u.hostname == HOST, url
        session = KerberosHTTP(u.port, KerberosClient(u.hostname, self.ccache, self.scheme), server_name=u.hostname)
        resp = session.authenticate(u.path, "SLDC" if "/subscriptions/" in u.path.lower() else None)
        assert resp.status == 200 and session.client.complete, f"authentication refused: {resp.status}"
        return session

    def post(self, conn: KerberosHTTP, url: str, xml: str, compress: bool = False) -> Reply:  # type: ignore[override]
        body = b"\xff\xfe" + xml.encode("utf-16-le")
        if compress:
            body = sldc_compress(body)
        status, plain, resp = conn.post(urlsplit(url).path, body, "SLDC" if compress else None)
        if status in (200, 400, 404, 503):
            assert plain == b"" or plain.startswith(b"\xff\xfe"), "reply is not UTF-16 SOAP"
        return Reply(status, {k.lower(): v for k, v in resp.getheaders()}, plain)


@pytest.fixture(scope="module")
def realm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Realm]:
    with start_realm(tmp_path_factory.mktemp("realm"), host=HOST, clients=("DC01$", "DC02$")) as r, in_process(r):
        yield r


@pytest.fixture(scope="module")
def svc(realm: Realm, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Serve]:
    d = tmp_path_factory.mktemp("wefkrb") / "data"
    cfg = (f'[health]\ncheck_interval = 0.5\n[wef]\nhttp = ["127.0.0.1:0"]\nkeytab = "{realm.keytabs["service"]}"\n'
           "heartbeat_interval = 1.0\nmax_time = 1.0\ncompression = true\n")
    s = Serve(d, config=cfg, env=realm.env).start()
    s.wef = int(next(m.group(1) for line in s.lines if (m := re.match(r"wef-http listening on [\d.]+:(\d+)", line))))
    yield s
    s.stop()


def dc(realm: Realm, svc: Serve, account: str, scheme: str = "Kerberos") -> KerberosWefClient:
    ccache = realm.kinit(account, realm.keytabs[account], realm.root / f"{account}.ccache")
    machine = f"{account[:-1].lower()}.{HOST.split('.', 1)[1]}"  # DC01$ -> dc01.dcsentry.test
    return KerberosWefClient(f"http://{HOST}:{svc.wef}/wsman/SubscriptionManager/WEC", machine, ccache, scheme)


def test_enumerate_subscribe_deliver_over_kerberos(realm: Realm, svc: Serve) -> None:
    c = dc(realm, svc, "DC01$")
    reply, subs, end = c.enumerate()
    assert reply.status == 200 and end.status == 204 and len(subs) == 1
    sub = subs[0]
    assert sub.profiles == [SPNEGO_PROFILE] and not sub.issuer_thumbprints
    assert sub.address.startswith(f"http://{HOST}:{svc.wef}/wsman/subscriptions/") and sub.compressed
    events = c.pending(sub, evtx_events(str(GROUPS), computer="dc01.dcsentry.test"))
    assert events
    c.deliver_all(sub, events)
    c.close()
    wait_for(svc.caught_up, what="the processor to catch up")
    stored = svc.query("SELECT event_id, source FROM events WHERE computer = ?", "dc01.dcsentry.test")
    assert sorted(r[0] for r in stored) == [4728, 4756, 4756, 4756]
    assert all(re.fullmatch(r"http://127\.0\.0\.1:\d+#DC01\$@DCSENTRY\.TEST@\d+", r[1]) for r in stored), stored
    wait_for(lambda: "sensitive-group-addition" in {a["type"] for a in svc.alerts()}, what="the group-change alert")
    assert "wef-sender-mismatch" not in {a["type"] for a in svc.alerts()}
    # the next enumeration carries the acknowledged bookmark back, over Kerberos as well
    _, (again,), _ = c.enumerate()
    assert again.positions == sub.positions == {"Security": max(e.record_id for e in events)}
    out = run_cli("wef", "status", "--data-dir", str(svc.data_dir), "--json")
    rows = {r["client"]: r for r in map(json.loads, out.stdout.decode().splitlines())}
    assert rows["dc01$@dcsentry.test"]["positions"] == sub.positions


def test_negotiate_sender_claiming_another_computer_is_flagged(realm: Realm, svc: Serve) -> None:
    """DC02$ authenticates with SPNEGO (Windows-shaped NegTokenInit) and forwards an event whose
    Computer is DC03: stored with DC02$ as the sender, and the mismatch raises an alert."""
    c = dc(realm, svc, "DC02$", scheme="Negotiate")
    _, (sub,), _ = c.enumerate()
    events = c.pending(sub, evtx_events(str(GROUPS), computer="dc03.dcsentry.test"))[:1]
    assert c.deliver(sub, events).status == 200
    c.close()
    alert = wait_for(lambda: [a for a in svc.alerts() if a["type"] == "wef-sender-mismatch"], what="the mismatch alert")
    assert alert[0]["details"]["sender"] == "DC02$@DCSENTRY.TEST"
    assert alert[0]["details"]["claimed_computer"] == "dc03.dcsentry.test"
    rows = svc.query("SELECT source FROM events WHERE source LIKE ?", "%#DC02$@DCSENTRY.TEST@%")
    assert rows


def _raw(svc: Serve, headers: dict[str, str], body: bytes = b"") -> http.client.HTTPResponse:
    conn = http.client.HTTPConnection("127.0.0.1", svc.wef, timeout=30)
    headers = {"Host": f"{HOST}:{svc.wef}", "Content-Type": "application/soap+xml;charset=UTF-16", **headers}
    conn.request("POST", "/wsman/SubscriptionManager/WEC", body=body, headers=headers)
    resp = conn.getresponse()
    resp.read()
    conn.close()
    return resp


def test_unauthenticated_and_forged_requests_are_refused(realm: Realm, svc: Serve) -> None:
    soap = b"\xff\xfe" + "<s:Envelope/>".encode("utf-16-le")
    resp = _raw(svc, {}, soap)  # no Authorization: a challenge naming both schemes
    assert resp.status == 401
    assert {v.split()[0] for k, v in resp.getheaders() if k.lower() == "www-authenticate"} == {"Negotiate", "Kerberos"}
    for bad in ("Kerberos " + base64.b64encode(b"\x60\x03\x06\x01\x00").decode(), "Negotiate !!", "Basic eDp5"):
        assert _raw(svc, {"Authorization": bad}).status == 401
    ccache = realm.kinit("DC01$", realm.keytabs["DC01$"], realm.root / "forge.ccache")
    session = KerberosHTTP(svc.wef, KerberosClient(HOST, ccache), server_name=HOST)
    assert session.authenticate("/wsman/SubscriptionManager/WEC").status == 200
    session.conn.request("POST", "/wsman/SubscriptionManager/WEC", body=soap, headers=session.headers
                         | {"Content-Type": "application/soap+xml;charset=UTF-16"})
    resp = session.conn.getresponse()  # clear text after authentication: refused, never parsed
    resp.read()
    assert resp.status == 400
    body, ctype = session.client.encrypt(soap)
    tampered = body[:-40] + bytes([body[-40] ^ 1]) + body[-39:]
    session.conn.request("POST", "/wsman/SubscriptionManager/WEC", body=tampered,
                         headers=session.headers | {"Content-Type": ctype})
    resp = session.conn.getresponse()
    resp.read()
    assert resp.status in (400, 401)
    session.close()
    _, text = svc.http("/metrics")
    counted = {k: float(v) for k, v in re.findall(r'^dcsentry_wef_total\{kind="(refused_[a-z_]+)"\} (\S+)', text, re.M)}
    assert counted.get("refused_unauthenticated", 0) >= 1 and counted.get("refused_auth", 0) >= 3
    assert counted.get("refused_unencrypted", 0) >= 1 and counted.get("refused_decrypt", 0) >= 1
    assert svc.proc.poll() is None
