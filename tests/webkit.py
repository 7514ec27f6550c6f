"""Plumbing for the web tests: a started `dcsentry serve` with its admin token, HTTP clients for it,
tokens of other roles made with the real `dcsentry token` command, and corpus traffic to send."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import httpx
from conftest import REPO, corpus, dcsentry_cmd
from servekit import Serve, corpus_json, frame, send_tcp, wait_for

BRUTE = "evtx/deepbluecli/smb-password-guessing-security.evtx"  # 3561 failed NTLM logons from 192.168.198.149
GROUP = "evtx/evtx-attack-samples/Network_Service_Guest_added_to_admins_4732.evtx"  # Guest (RID 501) into Administrators
PSEXEC = "evtx/evtx-to-mitre-attack/ID7045-7036 PSexec service installation.evtx"
GUEST_SID = "S-1-5-21-3461203602-4096304019-2269080069-501"


def artifacts() -> Path:
    """Where screenshots go: $DCSENTRY_ARTIFACTS, else test-artifacts/ in the repo (git-ignored)."""
    d = Path(os.environ.get("DCSENTRY_ARTIFACTS") or REPO / "test-artifacts")
    d.mkdir(parents=True, exist_ok=True)
    return d


def start(data_dir: Path, *args: str, config: str | None = None) -> Serve:
    svc = Serve(data_dir, *args, config=config).start()
    assert svc.token and svc.token.startswith("dcs_"), "the first start prints an admin token"
    return svc


def base_url(svc: Serve) -> str:
    return f"http://127.0.0.1:{svc.ports['web']}"


def client(svc: Serve, token: str | None = None) -> httpx.Client:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.Client(base_url=base_url(svc), headers=headers, timeout=30, follow_redirects=False)


def cli_token(svc: Serve, role: str, name: str = "test") -> str:
    """A token made by `dcsentry token create` on the running service's store."""
    out = subprocess.run([*dcsentry_cmd(), "token", "create", "--name", name, "--role", role,
                          "--data-dir", str(svc.data_dir)], capture_output=True, text=True, timeout=60, check=True)
    token = out.stdout.strip()
    assert re.fullmatch(r"dcs_[0-9a-f]{12}_\S+", token), out
    return token


def send_corpus(svc: Serve, rel: str, ids: set[int] | None = None, host: str = "DC01") -> int:
    return send_tcp(svc.ports["tcp"], (frame(m, host) for m in corpus_json(corpus(rel), ids)))


def wait_alert(api: httpx.Client, what: str, timeout: float = 60, **filters: str) -> dict:
    def find() -> dict | None:
        r = api.get("/api/v1/alerts", params={**filters, "limit": 500})
        return next(iter(r.json()["alerts"]), None) if r.status_code == 200 else None

    return wait_for(find, timeout=timeout, what=what)  # type: ignore[return-value]


def csrf_of(html: str) -> str:
    m = re.search(r'<meta name="csrf-token" content="([^"]*)"', html)
    assert m and m.group(1), "pages carry the session's CSRF token"
    return m.group(1)
