"""The console and API against a running `serve` (issue 14 finding 7): names with `/` link to
their own entity page (never elsewhere), a revoked token's open SSE stream ends, answers are not
cached, and an address that keeps failing authentication is slowed down while health probes answer."""

from __future__ import annotations

import json
import threading
import time
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from eventfactory import T0
from servekit import Serve, frame, send_tcp, wait_for

pytestmark = pytest.mark.integration

TRAVERSAL = "../../api/v1/tokens"


def _failures(account: str, n: int = 30) -> list[bytes]:
    out = []
    for i in range(n):
        doc = {"@timestamp": (T0 + timedelta(seconds=i)).isoformat().replace("+00:00", "Z"),
               "winlog": {"event_id": 4776, "provider_name": "Microsoft-Windows-Security-Auditing",
                          "channel": "Security", "computer_name": "DC01.contoso.local", "record_id": 500 + i,
                          "keywords": ["Audit Failure"],
                          "event_data": {"PackageName": "MICROSOFT_AUTHENTICATION_PACKAGE_V1_0",
                                         "TargetUserName": account, "Workstation": "KALI", "Status": "0xc000006a"}}}
        out.append(frame(json.dumps(doc).encode()))
    return out


def test_web_hardening(tmp_path: Path) -> None:
    svc = Serve(tmp_path / "data").start()
    base = f"http://127.0.0.1:{svc.ports['web']}"
    admin = {"Authorization": f"Bearer {svc.token}"}
    try:
        with httpx.Client(base_url=base, timeout=10) as c:
            # not cached: API answers (incl. the one carrying a new token) and pages; static files may be
            r = c.post("/api/v1/tokens", headers=admin, json={"name": "watcher", "role": "read-only"})
            assert r.status_code == 201 and r.headers["cache-control"] == "no-store"
            token, token_id = r.json()["token"], r.json()["info"]["id"]
            assert c.get("/api/v1/alerts", headers=admin).headers["cache-control"] == "no-store"
            assert "no-store" not in c.get("/static/app.js").headers.get("cache-control", "")

            # a name with slashes: the alert's entity link stays on the entity pages
            send_tcp(svc.ports["tcp"], _failures(TRAVERSAL))
            wait_for(lambda: any(a["type"] == "brute-force" for a in svc.alerts()), what="the brute force")
            c.post("/login", data={"token": svc.token, "next": "/"}, headers={"Origin": base})
            page = c.get("/alerts").text
            assert "/entities/account/..%2F..%2Fapi%2Fv1%2Ftokens" in page and 'href="/entities/account/../' not in page
            brute = next(a for a in svc.alerts() if a["type"] == "brute-force")
            detail = c.get(f"/alerts/{brute['id']}").text  # MDI, XDR and ATT&CK ids on the alert page too
            assert "Defender for Identity 2023" in detail and "XDR xdr_OnPremBruteforce" in detail
            assert "Credential Access · T1110.001" in detail
            r = c.get("/entities/account/..%2F..%2Fapi%2Fv1%2Ftokens")
            assert r.status_code == 200 and TRAVERSAL in r.text and "watcher" not in r.text
            api = c.get("/api/v1/entities/account/..%2F..%2Fapi%2Fv1%2Ftokens", headers=admin)
            assert api.status_code == 200 and api.json()["name"] == TRAVERSAL

        # a revoked token's open stream ends within the revalidation interval
        ended = threading.Event()

        def watch() -> None:
            with httpx.stream("GET", f"{base}/api/v1/alerts/stream", headers={"Authorization": f"Bearer {token}"},
                              timeout=30) as s:
                for _ in s.iter_lines():
                    pass
            ended.set()

        t = threading.Thread(target=watch, daemon=True)
        t.start()
        time.sleep(1.0)
        assert not ended.is_set()
        assert httpx.delete(f"{base}/api/v1/tokens/{token_id}", headers=admin, timeout=10).status_code == 204
        assert ended.wait(12), "the stream outlived its revoked token"

        metrics = httpx.get(f"{base}/metrics", headers=admin, timeout=10).text
        for name in ("dcsentry_connections_refused_total", "dcsentry_idle_timeouts_total",
                     "dcsentry_tls_handshake_failures_total", 'dcsentry_web_refused_requests_total{reason="auth_throttled"}'):
            assert name in metrics, name

        # failed authentications from one address: throttled after 100, health probes still answer
        with httpx.Client(base_url=base, timeout=10) as c:
            codes = [c.get("/api/v1/alerts", headers={"Authorization": "Bearer dcs_x_wrong"}).status_code
                     for _ in range(101)]
            assert codes[:100] == [401] * 100 and codes[100] == 429
            r = c.get("/api/v1/alerts", headers=admin)
            assert r.status_code == 429 and int(r.headers["retry-after"]) > 0
            assert c.get("/healthz").status_code == 200
    finally:
        assert svc.stop() == 0
