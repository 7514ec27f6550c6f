"""The REST API against a running `dcsentry serve`: who may do what, what is refused and how, and
alerts / entities / settings / readiness from real corpus traffic sent over syslog."""

from __future__ import annotations

import json
import socket
import time
from urllib.parse import quote

import pytest
from conftest import SHARED, corpus
from eventfactory import ntlm_4776_xml, ntlm_8004_xml
from servekit import corpus_json, frame, send_tcp, wait_for
from webkit import BRUTE, GROUP, GUEST_SID, PSEXEC, base_url, cli_token, client, send_corpus, start, wait_alert

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]


@pytest.fixture(scope="module")
def svc(tmp_path_factory: pytest.TempPathFactory):
    s = start(tmp_path_factory.mktemp("web") / "data")
    send_corpus(s, BRUTE, {4625})
    send_corpus(s, GROUP)
    send_corpus(s, PSEXEC, {7045})
    yield s
    assert s.stop() == 0


@pytest.fixture(scope="module")
def api(svc):
    with client(svc, svc.token) as c:
        wait_alert(c, "the brute-force alert", type="brute-force")
        yield c


@pytest.fixture(scope="module")
def ro(svc):
    with client(svc, cli_token(svc, "read-only", "auditor")) as c:
        yield c


def test_probes_answer_without_a_token_nothing_else_does(svc) -> None:
    with client(svc) as anon:
        assert anon.get("/healthz").status_code == 200
        wait_for(lambda: anon.get("/readyz").json() == {"ready": True}, what="readiness")
        for path in ("/api/v1/alerts", "/api/v1/me", "/api/v1/health", "/api/v1/settings", "/metrics", "/openapi.json",
                     "/api/v1/alerts/stream"):
            r = anon.get(path)
            assert r.status_code == 401, path
            assert r.headers["www-authenticate"] == "Bearer"
        page = anon.get("/alerts?status=open")
        assert page.status_code == 303 and page.headers["location"] == "/login?next=%2Falerts%3Fstatus%3Dopen"
        assert anon.get("/login").status_code == 200 and anon.get("/static/console.js").status_code == 200
        assert "content-security-policy" in anon.get("/login").headers
    with client(svc, svc.token) as api:  # the CEF sink's links: /alerts/<id> and, for health alerts, /health/<id>
        assert api.get("/health/abc").headers["location"] == "/alerts/abc"


@pytest.mark.parametrize("auth", [
    "Bearer dcs_000000000000_" + "A" * 43,  # well formed, no such token
    "Bearer not-a-token", "Bearer", "Basic YWRtaW46YWRtaW4=", "dcs_000000000000_x",
])
def test_wrong_tokens_are_refused(svc, auth: str) -> None:
    with client(svc) as anon:
        assert anon.get("/api/v1/alerts", headers={"Authorization": auth}).status_code == 401
        assert anon.get("/metrics", headers={"Authorization": auth}).status_code == 401


def test_a_wrong_secret_for_a_real_token_id_is_refused(svc, api) -> None:
    good = svc.token
    bad = good[:-4] + ("AAAA" if not good.endswith("AAAA") else "BBBB")
    with client(svc, bad) as c:
        assert c.get("/api/v1/me").status_code == 401


def test_read_only_reads_but_never_writes(api, ro) -> None:
    assert ro.get("/api/v1/me").json()["role"] == "read-only"
    alert = ro.get("/api/v1/alerts").json()["alerts"][0]
    assert ro.get(f"/api/v1/alerts/{alert['id']}").status_code == 200
    assert ro.get("/metrics").status_code == 200  # what Prometheus uses
    for method, path, body in (("POST", f"/api/v1/alerts/{alert['id']}/status", {"status": "closed"}),
                               ("PUT", "/api/v1/settings/honeytokens", {"values": ["x"]}),
                               ("POST", "/api/v1/tokens", {"name": "sneaky", "role": "admin"}),
                               ("GET", "/api/v1/tokens", None)):
        r = ro.request(method, path, json=body)
        assert r.status_code == 403, (method, path, r.text)
    r = ro.post("/api/v1/readiness/audits?filename=a.csv", content=b"x", headers={"Content-Type": "application/octet-stream"})
    assert r.status_code == 403
    assert api.get(f"/api/v1/alerts/{alert['id']}").json()["alert"]["status"] == alert["status"]


def test_oversized_and_malformed_requests(svc, api) -> None:
    aid = api.get("/api/v1/alerts").json()["alerts"][0]["id"]
    big = json.dumps({"status": "closed", "comment": "x" * (2 << 20)})
    assert api.post(f"/api/v1/alerts/{aid}/status", content=big, headers={"Content-Type": "application/json"}).status_code == 413

    def chunks():
        for _ in range(40):
            yield b"x" * 65536
    r = api.post(f"/api/v1/alerts/{aid}/status", content=chunks(), headers={"Content-Type": "application/json"})
    assert r.status_code == 413  # no Content-Length: counted as it streams
    for body in (b'{"status": "closed"', b"\xff\xfe", b'{"status": "deleted"}', b'{"status": "closed", "x": 1}', b"[]"):
        r = api.post(f"/api/v1/alerts/{aid}/status", content=body, headers={"Content-Type": "application/json"})
        assert r.status_code == 422, body
    assert api.get("/api/v1/alerts", params={"cursor": "!!!"}).status_code == 422
    assert api.get("/api/v1/alerts", params={"limit": 100000}).status_code == 422
    assert api.get("/api/v1/alerts", params={"since": "yesterday"}).status_code == 422
    assert api.get("/api/v1/alerts/0123456789abcdef01234567").status_code == 404
    with socket.create_connection(("127.0.0.1", svc.ports["web"])) as s:  # a lying Content-Length
        s.sendall(b"POST /api/v1/tokens HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n")
        assert s.recv(100).split(b" ")[1] in (b"400",)
    _, metrics = svc.http("/metrics")
    assert 'dcsentry_web_refused_requests_total{reason="too_large"} 2.0' in metrics


def test_alert_list_filters_and_pages(api) -> None:
    wait_alert(api, "the group and service alerts", type="suspicious-service-creation")
    everything = api.get("/api/v1/alerts", params={"limit": 500}).json()
    assert everything["next"] is None and len(everything["alerts"]) >= 3
    starts = [a["start"] for a in everything["alerts"]]
    assert starts == sorted(starts, reverse=True)
    seen, cursor = [], None
    while True:  # one at a time: every alert exactly once
        page = api.get("/api/v1/alerts", params={"limit": 1, **({"cursor": cursor} if cursor else {})}).json()
        seen += [a["id"] for a in page["alerts"]]
        cursor = page["next"]
        if not cursor:
            break
    assert seen == [a["id"] for a in everything["alerts"]]
    brute = api.get("/api/v1/alerts", params={"type": "brute-force"}).json()["alerts"]
    assert [a["type"] for a in brute] == ["brute-force"]
    by_entity = wait_for(lambda: api.get("/api/v1/alerts", params={"entity": "192.168.198.149"}).json()["alerts"],
                         what="the entity index to name the brute-force source")
    assert brute[0]["id"] in [a["id"] for a in by_entity]
    assert api.get("/api/v1/alerts", params={"kind": "health", "type": "brute-force"}).json()["alerts"] == []
    start = brute[0]["start"]
    assert brute[0]["id"] in [a["id"] for a in api.get("/api/v1/alerts", params={"since": start, "until": start}).json()["alerts"]]
    assert api.get("/api/v1/alerts", params={"until": "2001-01-01T00:00:00Z"}).json()["alerts"] == []


def test_alert_detail_has_evidence_events_and_status_changes_are_audited(api) -> None:
    brute = wait_alert(api, "brute force", type="brute-force")
    d = api.get(f"/api/v1/alerts/{brute['id']}").json()
    assert d["alert"]["count"] >= 3500 and d["evidence"]
    stored = [e for e in d["evidence"] if e["event"]]
    assert stored and stored[0]["event"]["data"]["IpAddress"] == "192.168.198.149"
    assert [t["time"] for t in d["timeline"]] == sorted(t["time"] for t in d["timeline"])
    r = api.post(f"/api/v1/alerts/{brute['id']}/status", json={"status": "closed", "comment": "pentest, ticket 42"})
    assert r.status_code == 200 and r.json()["previous"] == "open"
    d = api.get(f"/api/v1/alerts/{brute['id']}").json()
    assert d["alert"]["status"] == "closed"
    h = d["history"][0]
    assert h["detail"] == {"from": "open", "to": "closed", "comment": "pentest, ticket 42"} and h["actor"].startswith("admin (")
    assert any("pentest" in t["what"] for t in d["timeline"])
    closed = api.get("/api/v1/alerts", params={"status": "closed"}).json()["alerts"]
    assert brute["id"] in [a["id"] for a in closed]
    assert any(e["action"] == "alert.status" for e in api.get("/api/v1/audit-log").json())


def test_entity_history(api) -> None:
    wait_alert(api, "the group alert", type="sensitive-group-addition")

    def host_with_alert() -> dict | None:  # the alert -> entity index follows new alerts twice a second
        h = api.get("/api/v1/entities/host/192.168.198.149").json()
        return h if any(a["type"] == "brute-force" for a in h["alerts"]) else None

    host = wait_for(host_with_alert, timeout=20, what="the brute force on the host's page")
    assert len(host["auth"]) >= 100 and host["auth"][0]["result"] != "success"
    acct = host["auth"][0]["account"]
    person = api.get(f"/api/v1/entities/account/{acct}").json()
    assert person["auth"] and all(a["account"].lower() == acct.lower() for a in person["auth"])
    qualified = api.get("/api/v1/entities/account/" + quote(f"CONTOSO\\{acct}", safe="")).json()
    assert len(qualified["auth"]) == len(person["auth"])  # DOMAIN\name finds the same activity
    group = api.get("/api/v1/entities/group/Administrators").json()
    assert group["groups"] and group["groups"][0]["added"] is True
    assert api.get("/api/v1/entities/printer/x").status_code == 422


def test_host_accessed_as_a_server_synthetic_8004(svc, api) -> None:
    """Synthetic (no public 8004 recording): 4776 + 8004 pairs on DC01 for alice from WS7 to FS01, sent
    as event XML over syslog. FS01's page lists them under `accessed`; WS7's under `auth` only."""
    t0 = time.time() - 60
    pairs = [(ntlm_4776_xml(t0 + i, "alice", "WS7"), ntlm_8004_xml(t0 + i + 0.2, "FS01", "alice", "WS7"))
             for i in range(3)]
    send_tcp(svc.ports["tcp"], [frame(x.encode()) for pair in pairs for x in pair])

    def accessed() -> list | None:
        rows = api.get("/api/v1/entities/host/fs01").json()["accessed"]
        return rows if len(rows) >= 3 else None

    rows = wait_for(accessed, what="FS01 accessed as a server")
    assert {(a["account"], a["source_host"], a["server"], a["protocol"], a["result"]) for a in rows} == \
        {("alice", "WS7", "FS01", "NTLM", "success")}
    assert all({e["event_id"] for e in a["evidence"]} == {4776, 8004} for a in rows)
    client_side = api.get("/api/v1/entities/host/WS7").json()
    assert len([a for a in client_side["auth"] if a["server"] == "FS01"]) == 3 and client_side["accessed"] == []
    assert api.get("/api/v1/entities/account/alice").json()["accessed"] == []  # a host's view only
    page = api.get("/entities/host/FS01")
    assert page.status_code == 200 and 'id="accessed"' in page.text and "WS7" in page.text
    target = api.get("/api/v1/entities/host/DESKTOP-M5SN04R").json()  # the corpus's 4625s: logged by the host accessed
    assert len(target["accessed"]) >= 100 and {a["reporter"] for a in target["accessed"]} == {"DESKTOP-M5SN04R"}


def test_settings_change_reaches_the_detectors_and_is_audited(svc, api) -> None:
    view = api.get("/api/v1/settings").json()
    assert set(view["settings"]) == {"honeytokens", "sensitive_groups", "exclude_sources", "replication_allowed",
                                     "directory_writers_allowed", "sensitive_objects", "alert_exclusions"}
    r = api.put("/api/v1/settings/honeytokens", json={"values": [GUEST_SID, " ", GUEST_SID.lower()], "comment": "decoy"})
    assert r.status_code == 200 and r.json()["added"] == [GUEST_SID]
    view = api.get("/api/v1/settings").json()
    assert view["settings"]["honeytokens"]["values"] == [GUEST_SID]
    assert view["audit"][0]["detail"]["comment"] == "decoy" and view["audit"][0]["actor"].startswith("admin")
    wait_for(lambda: svc.query("SELECT COUNT(*) FROM runtime_settings")[0][0] == 1, what="the setting stored")
    import time

    time.sleep(2.5)  # the processor looks every 2 s
    # the same group change logged again later (new record ids): a re-send of the earlier copy would be
    # removed as a duplicate before detection
    again = []
    for m in corpus_json(corpus(GROUP)):
        doc = json.loads(m)
        doc["Event"]["System"]["EventRecordID"] += 1_000_000
        again.append(frame(json.dumps(doc).encode()))
    send_tcp(svc.ports["tcp"], again)
    alert = wait_alert(api, "the honeytoken alert for the decoy SID", type="honeytoken-activity")
    assert GUEST_SID in json.dumps(api.get(f"/api/v1/alerts/{alert['id']}").json()["alert"])
    assert api.put("/api/v1/settings/nonsense", json={"values": []}).status_code == 422


def test_readiness_upload_runs_the_audit(api) -> None:
    path = SHARED / "audit-samples/disa-stig-gpo/ws2019-dc_audit.csv"
    r = api.post("/api/v1/readiness/audits", params={"filename": path.name}, content=path.read_bytes(),
                 headers={"Content-Type": "application/octet-stream"})
    assert r.status_code == 201, r.text
    events = r.json()["result"]["events"]
    assert events["4776"]["status"] == "yes" and events["8004"]["status"] == "unknown"  # as expected.json says
    assert r.json()["result"]["inputs"][0]["path"].endswith(path.name)
    bad = api.post("/api/v1/readiness/audits", params={"filename": "x.txt"}, content=b"hello",
                   headers={"Content-Type": "application/octet-stream"})
    assert bad.status_code == 422
    ready = api.get("/api/v1/readiness").json()
    assert ready["audits"][0]["filename"] == path.name and ready["dcs"]
    dc = ready["dcs"][0]
    assert {r["key"] for r in dc["requirements"]} >= {"credential-validation", "ntlm-auditing"}


def test_health_report(api) -> None:
    h = api.get("/api/v1/health").json()
    assert h["dcs"] and h["intake"]["ingest"]["received"]["tcp"] > 3000


def test_tokens_are_made_listed_and_revoked(svc, api) -> None:
    r = api.post("/api/v1/tokens", json={"name": "grafana", "role": "read-only"})
    assert r.status_code == 201
    tok, tid = r.json()["token"], r.json()["info"]["id"]
    with client(svc, tok) as c:
        assert c.get("/api/v1/me").json()["name"] == "grafana"
        assert tid in [t["id"] for t in api.get("/api/v1/tokens").json()]
        assert "secret" not in json.dumps(api.get("/api/v1/tokens").json())
        assert api.delete(f"/api/v1/tokens/{tid}").status_code == 204
        assert c.get("/api/v1/me").status_code == 401
    assert api.delete(f"/api/v1/tokens/{tid}").status_code == 404
    stored = svc.query("SELECT secret_hash FROM api_tokens WHERE id = ?", tid)[0][0]
    assert tok.split("_", 2)[2] not in stored and len(stored) == 64


def test_live_stream_sends_new_alerts(svc, api) -> None:
    import httpx

    with httpx.stream("GET", f"{base_url(svc)}/api/v1/alerts/stream", headers={"Authorization": f"Bearer {svc.token}"},
                      timeout=30) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        lines = r.iter_lines()
        assert next(lines).startswith("retry:")
        target = api.get("/api/v1/alerts", params={"type": "suspicious-service-creation"}).json()["alerts"][0]
        assert api.post(f"/api/v1/alerts/{target['id']}/status", json={"status": "suppressed"}).status_code == 200
        for line in lines:
            if line.startswith("data: "):
                alert = json.loads(line[6:])
                if alert["id"] == target["id"] and alert["status"] == "suppressed":
                    break
