"""Webhooks: each alert revision POSTed as JSON to an HTTPS endpoint, signed, retried, at least once.

Signing (what a receiver checks; docs/outputs.md has a ten-line receiver):

    X-Dcsentry-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>." + body)>

The timestamp is signed with the body so a captured request cannot be replayed later (receivers
reject a ``t`` older than a few minutes), and it is taken at each attempt, so a retry is fresh.
The secret comes from ``[serve] webhook_secret`` or ``DCSENTRY_WEBHOOK_SECRET``, never the URL
(URLs end up in logs, the console and /metrics labels). ``Idempotency-Key: <alert id>:<revision>``
lets the receiver drop the duplicates at-least-once delivery can bring.

Delivery: 2xx is delivered. An answer that refuses this one message for what it is (400, 413, 415,
422) will not get better by retrying: the message is dead-lettered, counted in ``dead_letter``
(/metrics ``dcsentry_sink_dead_letter``) and named in ``last_error``, so one poisoned alert cannot
block every later one. Everything else (no answer, 5xx, 429, but also 401/403/404: a wrong secret or
URL, which an admin fixes) is retried with exponential backoff, the message kept in order (the
forwarder keeps the outbox rows until it goes), so a misconfiguration loses nothing. TLS verification is on
(system CAs, or ``ca=``); plain http is allowed to a loopback address only.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import ipaddress
import ssl
import time
from typing import Any

from .. import __version__
from .syslog import Transport

SIGNATURE_HEADER = "X-Dcsentry-Signature"
DEAD_LETTER = {400, 413, 415, 422}  # "this message, never": everything else is worth another try
SECRET_ENV = "DCSENTRY_WEBHOOK_SECRET"


def sign(secret: bytes, body: bytes, ts: int) -> str:
    """The signature header's value for `body` sent at unix time `ts`."""
    mac = hmac.new(secret, b"%d." % ts + body, hashlib.sha256).hexdigest()
    return f"t={ts},v1={mac}"


def verify(secret: bytes, body: bytes, header: str, tolerance: float = 300.0, now: float | None = None) -> bool:
    """What a receiver does (and the tests): the signature matches and its timestamp is recent."""
    try:
        parts = dict(p.split("=", 1) for p in header.split(","))
        ts = int(parts["t"])
    except (KeyError, ValueError):
        return False
    if abs((time.time() if now is None else now) - ts) > tolerance:
        return False
    want = hmac.new(secret, b"%d." % ts + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(want, parts.get("v1", ""))


def is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class WebhookError(OSError):
    """A retryable failure (no answer, 5xx, 429, 401 ...): the message stays queued."""


class WebhookTransport(Transport):
    """POSTs queued messages one by one over a kept-alive HTTP(S) connection.

    A queued message is ``<idempotency key>\\n<JSON body>`` (the key never holds a newline).
    """

    name = "webhook"

    def __init__(self, host: str, port: int, path: str, secret: bytes, tls: bool = True, ca: str | None = None,
                 verify_tls: bool = True, **kw: Any) -> None:
        super().__init__(**kw)
        if not secret:
            raise ValueError(f"a webhook needs a secret: [serve] webhook_secret or {SECRET_ENV}")
        if not tls and not is_loopback(host):
            raise ValueError("webhook+http:// is for a loopback address only; use webhook+https://")
        self.host, self.port, self.path, self.tls = host, port, path or "/", tls
        self._secret = secret
        self.context: ssl.SSLContext | None = None
        if tls:
            ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=ca)
            ctx.minimum_version = ssl.TLSVersion.TLSv1_2
            if not verify_tls:
                ctx.check_hostname = False
                ctx.verify_mode = ssl.CERT_NONE
            self.context = ctx
        self._conn: http.client.HTTPConnection | None = None
        self._reused = False  # the open connection has carried a request already

    def _open(self) -> None:
        self._reused = False
        if self.tls:
            self._conn = http.client.HTTPSConnection(self.host, self.port, timeout=self.timeout, context=self.context)
        else:
            self._conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        self._conn.connect()

    def _write(self, msg: bytes) -> bool:
        key, _, body = msg.partition(b"\n")
        reused = self._conn is not None and self._reused
        try:
            status, reason = self._post(key, body)
        except ConnectionError:  # http.client.RemoteDisconnected is one
            if not reused:
                raise
            self._shut()  # the receiver closed a kept-alive connection while we were idle: one fresh try
            status, reason = self._post(key, body)
        if 200 <= status < 300:
            return True
        if status not in DEAD_LETTER:
            raise WebhookError(f"HTTP {status} {reason}")
        self._stats.last_error = f"dead-lettered {key.decode()}: HTTP {status} {reason}"
        return False  # will not get better by retrying: counted as a dead letter, the next one goes on

    def _post(self, key: bytes, body: bytes) -> tuple[int, str]:
        if self._conn is None:
            self._open()
        conn = self._conn
        assert conn is not None
        ts = int(time.time())
        headers = {"Content-Type": "application/json", "User-Agent": f"dcsentry/{__version__}",
                   SIGNATURE_HEADER: sign(self._secret, body, ts), "Idempotency-Key": key.decode()}
        try:
            conn.request("POST", self.path, body=body, headers=headers)
            resp = conn.getresponse()
            resp.read()
        except http.client.RemoteDisconnected:
            raise
        except http.client.HTTPException as e:  # a malformed answer: as good as none
            raise WebhookError(f"bad HTTP answer: {e}") from None
        self._reused = True
        if resp.will_close:
            self._shut()
        return resp.status, resp.reason

    def _shut(self) -> None:
        if self._conn is not None:
            conn, self._conn = self._conn, None
            conn.close()
