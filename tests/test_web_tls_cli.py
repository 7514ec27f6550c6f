"""The web port over HTTPS when a certificate is configured (real TLS, a test CA), the console session
cookie under it, and the `dcsentry token` command's list and revoke on a running service."""

from __future__ import annotations

import re
import ssl
import subprocess

import httpx
import pytest
from conftest import dcsentry_cmd
from pki import make_pki
from servekit import Serve, wait_for
from webkit import cli_token, client, start

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]


def test_https_when_a_certificate_is_configured(tmp_path) -> None:
    (tmp_path / "pki").mkdir()
    pki = make_pki(tmp_path / "pki")
    svc = Serve(tmp_path / "data", "--web-cert", str(pki["server"]), "--web-key", str(pki["server_key"])).start()
    try:
        line = next(ln for ln in svc.lines if ln.startswith("web listening on "))
        port = int(re.search(r"https://127\.0\.0\.1:(\d+)", line).group(1))
        token = re.search(r"admin token [^:]*: (dcs_\S+)", "".join(svc.lines)).group(1)
        url = f"https://127.0.0.1:{port}"
        ctx = ssl.create_default_context(cafile=str(pki["ca"]))
        with httpx.Client(base_url=url, verify=ctx, timeout=30) as c:
            assert c.get("/healthz").status_code == 200
            assert c.get("/api/v1/me").status_code == 401
            assert c.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"}).json()["role"] == "admin"
            login = c.post("/login", data={"token": token, "next": "/health"})
            assert login.status_code == 303 and login.headers["location"] == "/health"
            cookie = login.headers["set-cookie"].lower()
            assert "httponly" in cookie and "samesite=strict" in cookie and "secure" in cookie
            assert "max-age=31536000" in login.headers["strict-transport-security"]
        with pytest.raises(httpx.ConnectError):  # a client that does not trust the CA gets nothing
            httpx.get(f"{url}/healthz", timeout=10)
        with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError, httpx.ConnectError)):
            httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=10)  # plain HTTP on the TLS port
    finally:
        assert svc.stop() == 0


def test_token_command_lists_and_revokes(tmp_path) -> None:
    svc = start(tmp_path / "data")
    try:
        tok = cli_token(svc, "read-only", "nightly-report")
        tid = tok[4:16]
        with client(svc, tok) as c:
            assert c.get("/api/v1/me").json() == {"token_id": tid, "name": "nightly-report", "role": "read-only",
                                                  "via": "bearer"}

            def cli(*args: str) -> subprocess.CompletedProcess:
                return subprocess.run([*dcsentry_cmd(), "token", *args, "--data-dir", str(svc.data_dir)],
                                      capture_output=True, text=True, timeout=60)
            listed = cli("list").stdout
            assert tid in listed and "nightly-report" in listed and "admin" in listed
            assert tok not in listed and tok[17:] not in listed  # secrets are never shown again
            assert cli("revoke", tid).returncode == 0
            wait_for(lambda: c.get("/api/v1/me").status_code == 401, what="the revoked token refused")
            again = cli("revoke", tid)
            assert again.returncode != 0 and "no active token" in again.stderr
            assert "REVOKED" in cli("list").stdout
            bad = subprocess.run([*dcsentry_cmd(), "token", "create", "--name", "x", "--role", "root",
                                  "--data-dir", str(svc.data_dir)], capture_output=True, text=True, timeout=60)
            assert bad.returncode == 2 and "root" in bad.stderr
    finally:
        assert svc.stop() == 0


def test_restart_prints_no_new_token_and_keeps_the_old_one(tmp_path) -> None:
    svc = start(tmp_path / "data")
    first = svc.token
    assert svc.stop() == 0
    again = Serve(tmp_path / "data").start()
    try:
        assert again.token is None
        assert any(ln.startswith("console: http://127.0.0.1:") and "token create" in ln for ln in again.lines)
        with client(again, first) as c:
            assert c.get("/api/v1/me").status_code == 200
    finally:
        assert again.stop() == 0
