"""Webhook delivery against a real HTTP(S) server this test runs: signatures checked there (with its own
HMAC code, not dcsentry's), at least once from the store's outbox through an outage, dead letters counted."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import socket
import ssl
import subprocess
import sys
import threading
import time
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import ocsfkit
import pytest
from pki import make_pki

from dcsentry.alerts import ALERT_TYPES, Alert, Evidence
from dcsentry.runtime.forwarder import Forwarder
from dcsentry.sinks.forward import JsonSink, open_sink
from dcsentry.sinks.webhook import WebhookTransport, sign, verify
from dcsentry.store.store import open_store
from dcsentry.web.metrics import ServiceCollector

SECRET = "s3cret-for-tests"
T0 = datetime(2026, 3, 5, 14, 0, tzinfo=timezone.utc)
FAST = {"backoff": 0.2, "backoff_max": 0.4, "timeout": 2.0}


class Receiver:
    """A webhook endpoint: checks each request's signature and timestamp, remembers what came."""

    def __init__(self, port: int = 0, tls: ssl.SSLContext | None = None) -> None:
        self.got: list[tuple[str, dict]] = []  # (idempotency key, body) of correctly signed requests
        self.bad_signatures = 0
        self.answer: dict[str, int] = {}  # idempotency key -> forced HTTP status
        self.conns: list = []  # open client connections, cut by stop() as a crashed server would
        recv = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as real endpoints do

            def setup(self) -> None:
                super().setup()
                recv.conns.append(self.connection)

            def do_POST(self) -> None:  # http.server's name
                body = self.rfile.read(int(self.headers["Content-Length"]))
                parts = dict(p.split("=", 1) for p in self.headers.get("X-Dcsentry-Signature", "").split(","))
                want = hmac.new(SECRET.encode(), parts.get("t", "").encode() + b"." + body, hashlib.sha256).hexdigest()
                fresh = abs(time.time() - int(parts.get("t", "0"))) < 300
                key = self.headers.get("Idempotency-Key", "")
                if not (fresh and hmac.compare_digest(want, parts.get("v1", ""))):
                    recv.bad_signatures += 1
                    status = 401
                else:
                    status = recv.answer.get(key, 200)
                    if status == 200:
                        recv.got.append((key, json.loads(body)))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        if tls is not None:
            self.server.socket = tls.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        for c in self.conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def make_alert(i: int, type_: str = "kerberoasting", revision: int = 0) -> Alert:
    at = ALERT_TYPES[type_]
    return Alert(type=type_, key=f"host{i}", title=at.title, description=f"alert {i}", severity=at.severity,
                 technique=at.technique, start=T0 + timedelta(minutes=i), end=T0 + timedelta(minutes=i + 1),
                 count=3, accounts=["CONTOSO\\svc_sql"], hosts=[f"ws{i}.contoso.com"], dcs=["dc01.contoso.com"],
                 evidence=[Evidence(4769, "dc01.contoso.com", 100 + i, T0)], revision=revision)


def pump_until(fwd: Forwarder, done, seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not done():
        assert time.monotonic() < deadline, "not delivered in time"
        fwd.pump()
        time.sleep(0.05)


def test_signature_is_hmac_sha256_over_timestamp_and_body() -> None:
    header = sign(b"k", b'{"a":1}', 1700000000)
    assert header == "t=1700000000,v1=" + hmac.new(b"k", b'1700000000.{"a":1}', hashlib.sha256).hexdigest()
    assert verify(b"k", b'{"a":1}', header, now=1700000100)
    assert not verify(b"k", b'{"a":2}', header, now=1700000100)  # body changed
    assert not verify(b"other", b'{"a":1}', header, now=1700000100)  # wrong secret
    assert not verify(b"k", b'{"a":1}', header, now=1700009999)  # too old: a replay


@pytest.mark.integration
def test_delivers_signed_ocsf_and_survives_the_receiver_being_down(tmp_path: Path) -> None:
    store = open_store("sqlite:dcsentry.db", tmp_path)
    recv = Receiver()
    port = recv.port
    url = f"webhook+http://127.0.0.1:{port}/hooks/dcsentry?format=ocsf&backoff=0.2&backoff_max=0.4"
    sink = open_sink(url, webhook_secret=SECRET)
    fwd = Forwarder(store, {url: sink})
    store.put_alert(make_alert(0))
    pump_until(fwd, lambda: len(recv.got) == 1)
    key, body = recv.got[0]
    assert key == f"{make_alert(0).id}:0" and recv.bad_signatures == 0
    assert body["class_uid"] == 2004 and body["finding_info"]["uid"] == make_alert(0).id
    assert ocsfkit.errors(body) == []

    recv.stop()  # the receiver goes away; alerts keep coming, and a growing alert's update too
    for i in range(1, 6):
        store.put_alert(make_alert(i))
    store.put_alert(make_alert(0, revision=1))
    pump_until(fwd, lambda: sink.stats.failed >= 1 and sink.stats.down_since is not None)  # tried, and failed
    assert store.count("outbox") == 6  # nothing lost: every update still waits in the outbox
    assert sink.stats.failed >= 1 and sink.stats.down_since is not None

    recv2 = Receiver(port)  # back, on the same address
    try:
        pump_until(fwd, lambda: len(recv2.got) >= 6 and store.count("outbox") == 0)
        keys = [k for k, _ in recv2.got]
        want = {f"{make_alert(i).id}:0" for i in range(1, 6)} | {f"{make_alert(0).id}:1"}
        assert set(keys) == want  # every one, each revision by its own idempotency key
        update = next(b for k, b in recv2.got if k.endswith(":1"))
        assert update["activity_id"] == 2 and update["finding_info"]["uid"] == make_alert(0).id  # same finding
        assert recv2.bad_signatures == 0
        st = sink.stats
        assert st.sent == 7 and st.dropped == 0 and st.dead_letter == 0 and st.down_since is None
        assert fwd.stats()["sink_failed"][url] == st.failed >= 1
    finally:
        recv2.stop()
        sink.close()
        store.close()


@pytest.mark.integration
def test_a_refused_alert_is_dead_lettered_and_counted_on_metrics(tmp_path: Path) -> None:
    store = open_store("sqlite:dcsentry.db", tmp_path)
    recv = Receiver()
    url = f"webhook+http://localhost:{recv.port}/h?format=ecs"
    sink = open_sink(url, webhook_secret=SECRET, **FAST)
    fwd = Forwarder(store, {url: sink})
    recv.answer[f"{make_alert(1).id}:0"] = 422  # this one the receiver will never take
    recv.answer[f"{make_alert(2).id}:0"] = 503  # this one it takes on a later try
    try:
        for i in range(4):
            store.put_alert(make_alert(i))
        pump_until(fwd, lambda: sink.stats.dead_letter == 1 and sink.stats.failed >= 2)
        assert len(recv.got) == 1 and store.count("outbox") == 4  # in order: #3 waits behind the 503 of #2
        recv.answer.clear()
        pump_until(fwd, lambda: len(recv.got) == 3 and store.count("outbox") == 0)
        assert sorted(b["event"]["id"] for _, b in recv.got) == sorted(make_alert(i).id for i in (0, 2, 3))
        assert all(b["event"]["kind"] == "alert" for _, b in recv.got)
        st = sink.stats
        assert (st.sent, st.dead_letter, st.dropped) == (3, 1, 0) and st.failed >= 1
        store.save_counters("forward", fwd.stats())
        metrics = {m.name: m for m in ServiceCollector(lambda: {}, store).collect()}
        dead = metrics["dcsentry_sink_dead_letter"].samples
        assert [(s.labels["sink"], s.value) for s in dead] == [(url, 1)]
    finally:
        recv.stop()
        sink.close()
        store.close()


@pytest.mark.integration
def test_a_wrong_secret_is_refused_by_the_receiver(tmp_path: Path) -> None:
    recv = Receiver()
    sink = open_sink(f"webhook+http://127.0.0.1:{recv.port}/", webhook_secret="not-the-secret", **FAST)
    try:
        sink.send(make_alert(0))
        assert not sink.flush(force=True)  # 401: kept and retried (an admin fixes the secret), never dropped
        st = sink.stats
        assert recv.bad_signatures == 1 and recv.got == [] and (st.queued, st.failed, st.dead_letter) == (1, 1, 0)
        assert "HTTP 401" in (st.last_error or "")
    finally:
        recv.stop()
        sink.close()


@pytest.mark.integration
def test_https_verifies_the_server_by_default(tmp_path: Path) -> None:
    pki = make_pki(tmp_path)
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(pki["server"], pki["server_key"])
    recv = Receiver(tls=ctx)
    try:
        unknown = open_sink(f"webhook+https://localhost:{recv.port}/h", webhook_secret=SECRET, **FAST)
        unknown.send(make_alert(0))
        assert not unknown.flush(force=True)  # our test CA is not a system CA: refused, kept, counted
        assert unknown.stats.failed == 1 and "CERTIFICATE_VERIFY_FAILED" in (unknown.stats.last_error or "")
        unknown.close()
        trusted = open_sink(f"webhook+https://localhost:{recv.port}/h?ca={pki['ca']}", webhook_secret=SECRET)
        assert isinstance(trusted, JsonSink) and isinstance(trusted.transport, WebhookTransport)
        trusted.send(make_alert(0))
        assert trusted.flush(force=True) and len(recv.got) == 1 and recv.got[0][1]["type"] == "kerberoasting"
        trusted.close()
    finally:
        recv.stop()


@pytest.mark.parametrize("url,why", [
    ("webhook+http://example.com/h", "loopback address only"),
    ("webhook+http://10.0.0.5/h", "loopback address only"),
    ("webhook+https://user:pw@example.com/h", "credentials do not belong"),
    ("webhook+https://example.com/h?format=cef", "format must be one of dcsentry, ocsf, ecs"),
    ("webhook+https://example.com/h?secret=x", "unknown option 'secret'"),
    ("webhook+http://127.0.0.1/h?ca=/x", "unknown option 'ca'"),
])
def test_bad_webhook_urls(url: str, why: str) -> None:
    with pytest.raises(ValueError, match="bad forward URL") as e:
        open_sink(url, webhook_secret=SECRET)
    assert why in str(e.value)


def test_a_webhook_without_a_secret_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DCSENTRY_WEBHOOK_SECRET", raising=False)
    with pytest.raises(ValueError, match="needs a secret"):
        open_sink("webhook+https://example.com/h")
    monkeypatch.setenv("DCSENTRY_WEBHOOK_SECRET", SECRET)
    assert isinstance(open_sink("webhook+https://example.com/h").transport, WebhookTransport)


@pytest.mark.integration
def test_serve_refuses_a_webhook_without_a_secret(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "DCSENTRY_WEBHOOK_SECRET"}
    out = subprocess.run([sys.executable, "-m", "dcsentry.cli", "serve", "--data-dir", str(tmp_path), "--web", "off",
                          "--syslog-udp", "off", "--syslog-tcp", "off", "--forward", "webhook+https://example.com/h"],
                         capture_output=True, timeout=60, env=env)
    assert out.returncode != 0 and b"needs a secret" in out.stderr
