"""Syslog envelopes (RFC 5424 / RFC 3164) and the transports that carry them: UDP, TCP, TLS, a file.

A transport never raises on delivery failure: an alert pipeline must not stop because the SIEM is down.
Instead it keeps unsent messages in a bounded queue (oldest dropped first when full), retries with
exponential backoff, and counts what happened (`TransportStats`), which feeds the "sink unreachable"
health alert and the metrics. Everything is synchronous: delivery is attempted on `send()` and on
`flush()`, which the service calls on its housekeeping tick so a backlog drains even when no new alert
comes. One lock per transport makes it safe to share between threads; socket operations have timeouts
so the lock is never held unboundedly.
"""

from __future__ import annotations

import abc
import os
import select
import socket
import ssl
import threading
import time
from collections import deque
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

FACILITY_AUTH = 4
SEV_ERROR = 3
SEV_WARNING = 4
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
UDP_MAX = 65507  # largest IPv4 UDP payload; bigger messages are cut (RFC 5426 allows truncation)


def pri(severity: str) -> int:
    """PRI for an alert severity: facility auth; error for high, warning otherwise (as in the MDI samples)."""
    return FACILITY_AUTH * 8 + (SEV_ERROR if severity == "high" else SEV_WARNING)


def _ascii_token(value: str, limit: int) -> str:
    """RFC 5424 header tokens are PRINTUSASCII without spaces; anything else becomes `_`. Empty -> `-`."""
    tok = "".join(c if 33 <= ord(c) <= 126 else "_" for c in value)[:limit]
    return tok or "-"


class SyslogEnvelope:
    """Wraps a CEF line in a syslog header. `rfc5424` (default, what MDI samples show) or `rfc3164`.

    RFC 5424: ``<PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID - MSG`` with MSGID = the signature cut to
    32 characters, TIMESTAMP in UTC with microseconds. RFC 3164: ``<PRI>Mmm dd hh:mm:ss HOSTNAME TAG[PID]: MSG``
    in local time (3164 has no zone; receivers read it as local). APP-NAME defaults to ``CEF``, as MDI sends.
    """

    def __init__(self, fmt: str = "rfc5424", hostname: str | None = None, app_name: str = "CEF",
                 procid: int | None = None) -> None:
        if fmt not in ("rfc5424", "rfc3164"):
            raise ValueError(f"syslog format must be rfc5424 or rfc3164, not {fmt!r}")
        self.fmt = fmt
        self.hostname = _ascii_token(hostname or socket.gethostname(), 255)
        self.app_name = _ascii_token(app_name, 48)
        self.procid = os.getpid() if procid is None else procid

    def wrap(self, msg: str, severity: str, msgid: str, now: datetime | None = None) -> bytes:
        """The full syslog message as UTF-8 bytes (no framing, no trailing newline)."""
        now = now or datetime.now(UTC)
        if now.tzinfo is None:
            now = now.replace(tzinfo=UTC)
        p = pri(severity)
        if self.fmt == "rfc5424":
            ts = now.astimezone(UTC).isoformat(timespec="microseconds")
            head = f"<{p}>1 {ts} {self.hostname} {self.app_name} {self.procid} {_ascii_token(msgid, 32)} - "
        else:
            t = now.astimezone()
            ts = f"{_MONTHS[t.month - 1]} {t.day:2d} {t:%H:%M:%S}"
            head = f"<{p}>{ts} {self.hostname} {self.app_name[:32]}[{self.procid}]: "
        return (head + msg).encode("utf-8")


@dataclass
class TransportStats:
    """Counters of one transport. sent + dead_letter + dropped + queued == messages given, once nothing is
    in flight."""

    sent: int = 0  # messages handed to the peer (or file)
    failed: int = 0  # failed delivery attempts (connect or write); the message stays queued
    dropped: int = 0  # messages lost: queue full (oldest first), or still queued at close
    dead_letter: int = 0  # messages the peer refused for good (a webhook's 4xx): not retried, counted
    queued: int = 0  # messages waiting now
    connects: int = 0  # successful (re)connections
    last_error: str | None = None
    down_since: float | None = None  # epoch seconds of the first failure in the current outage; None when up

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class _Backoff:
    initial: float
    maximum: float
    delay: float = 0.0
    next_try: float = field(default=0.0)

    def failed(self, now: float) -> None:
        self.delay = self.initial if self.delay == 0 else min(self.delay * 2, self.maximum)
        self.next_try = now + self.delay

    def reset(self) -> None:
        self.delay = 0.0
        self.next_try = 0.0


class Transport(abc.ABC):
    """Base: queue, backoff, counters, lock. Subclasses implement `_open`, `_write` and `_shut`."""

    name = "transport"

    def __init__(self, queue_size: int = 10_000, backoff: float = 1.0, backoff_max: float = 60.0,
                 timeout: float = 5.0) -> None:
        if queue_size < 1:
            raise ValueError("queue_size must be at least 1")
        self._queue: deque[bytes] = deque()
        self._queue_size = queue_size
        self._backoff = _Backoff(backoff, backoff_max)
        self.timeout = timeout
        self._lock = threading.Lock()
        self._stats = TransportStats()
        self._connected = False
        self._closed = False

    @property
    def stats(self) -> TransportStats:
        """A snapshot (a copy: safe to read while other threads send)."""
        with self._lock:
            self._stats.queued = len(self._queue)
            return TransportStats(**asdict(self._stats))

    def send(self, msg: bytes) -> None:
        """Queue one message and try to deliver the queue (unless waiting out a backoff)."""
        with self._lock:
            if self._closed:
                self._stats.dropped += 1
                return
            if len(self._queue) >= self._queue_size:
                self._queue.popleft()
                self._stats.dropped += 1
            self._queue.append(msg)
            self._deliver(force=False)

    def flush(self, force: bool = False) -> bool:
        """Try to deliver what is queued; `force` ignores the backoff. True when the queue is empty."""
        with self._lock:
            if not self._closed:
                self._deliver(force)
            return not self._queue

    def close(self) -> None:
        """One last delivery attempt, then drop (and count) what is left and release the connection."""
        with self._lock:
            if self._closed:
                return
            self._deliver(force=True)
            self._stats.dropped += len(self._queue)
            self._queue.clear()
            self._disconnect()
            self._closed = True

    def _deliver(self, force: bool) -> None:
        now = time.monotonic()
        if not self._queue or (not force and now < self._backoff.next_try):
            return
        try:
            if self._connected and not self._alive():
                self._disconnect()
            if not self._connected:
                self._open()
                self._connected = True
                self._stats.connects += 1
            while self._queue:
                delivered = self._write(self._queue[0])
                self._queue.popleft()
                if delivered is False:  # refused for good by the peer (a webhook's 4xx): a dead letter
                    self._stats.dead_letter += 1
                else:
                    self._stats.sent += 1
            self._commit()
        except (OSError, ValueError) as e:  # ssl.SSLError is an OSError
            self._stats.failed += 1
            self._stats.last_error = f"{type(e).__name__}: {e}"
            if self._stats.down_since is None:
                self._stats.down_since = time.time()
            self._disconnect()
            self._backoff.failed(now)
        else:
            self._backoff.reset()
            self._stats.down_since = None

    def _disconnect(self) -> None:
        if self._connected:
            try:
                self._shut()
            except OSError:
                pass
        self._connected = False

    def _alive(self) -> bool:
        """Whether the open connection still works (checked before each batch). Default: assume yes."""
        return True

    def _commit(self) -> None:  # noqa: B027 - an optional hook: a no-op unless a transport overrides it
        """Make what was written durable (after each delivered batch). Default: nothing to do."""

    @abc.abstractmethod
    def _open(self) -> None:
        """What a subclass does for its medium."""

    @abc.abstractmethod
    def _write(self, msg: bytes) -> bool | None:
        """What a subclass does for its medium; False when the peer refused the message for good."""

    @abc.abstractmethod
    def _shut(self) -> None:
        """What a subclass does for its medium."""


class _SocketTransport(Transport):
    def __init__(self, host: str, port: int, **kw: Any) -> None:
        super().__init__(**kw)
        self.host = host
        self.port = port
        self._sock: socket.socket | None = None

    def _shut(self) -> None:
        if self._sock is not None:
            sock, self._sock = self._sock, None
            sock.close()


class UdpTransport(_SocketTransport):
    """One datagram per message (RFC 5426). A connected socket, so ICMP port-unreachable shows up as an
    error on a later send; a datagram sent before that is lost unnoticed, which is UDP's nature."""

    name = "udp"

    def _open(self) -> None:
        af, kind, proto, _, addr = socket.getaddrinfo(self.host, self.port, type=socket.SOCK_DGRAM)[0]
        sock = socket.socket(af, kind, proto)
        try:
            sock.settimeout(self.timeout)
            sock.connect(addr)
        except OSError:
            sock.close()
            raise
        self._sock = sock

    def _write(self, msg: bytes) -> None:
        assert self._sock is not None
        if len(msg) > UDP_MAX:
            msg = msg[:UDP_MAX]
        self._sock.send(msg)


class TcpTransport(_SocketTransport):
    """Octet-counted frames (RFC 6587 ``LEN SP MSG``) over one long-lived connection; ``framing="lf"``
    ends each message with a newline instead (JSON lines: what Logstash's json_lines and Vector read)."""

    name = "tcp"

    def __init__(self, host: str, port: int, framing: str = "octet", **kw: Any) -> None:
        if framing not in ("octet", "lf"):
            raise ValueError(f"framing must be octet or lf, not {framing!r}")
        super().__init__(host, port, **kw)
        self.framing = framing

    def _connect(self) -> socket.socket:
        return socket.create_connection((self.host, self.port), timeout=self.timeout)

    def _open(self) -> None:
        self._sock = self._connect()

    def _write(self, msg: bytes) -> None:
        assert self._sock is not None
        if self.framing == "lf":
            self._sock.sendall(msg.rstrip(b"\r\n") + b"\n")
        else:
            self._sock.sendall(b"%d %s" % (len(msg), msg))

    def _alive(self) -> bool:
        """A syslog receiver never talks back, so a readable socket means EOF or reset: the peer is gone.

        Checking before writing catches a receiver that went away while we were idle; otherwise the first
        message after its restart would vanish into the dead connection's send buffer.
        """
        sock = self._sock
        if sock is None:
            return False
        try:
            if not _readable(sock):
                return True
        except (OSError, ValueError):
            return False
        sock.setblocking(False)
        try:
            return sock.recv(1) != b""  # data (unexpected) means alive; b"" means orderly close
        except (ssl.SSLWantReadError, ssl.SSLWantWriteError, BlockingIOError):
            return True  # TLS housekeeping (e.g. a TLS 1.3 session ticket), no application data
        except OSError:
            return False
        finally:
            sock.settimeout(self.timeout)


def _readable(sock: socket.socket) -> bool:
    """Non-blocking readability; poll() where it exists (select() fails on descriptors >= 1024)."""
    if hasattr(select, "poll"):
        p = select.poll()
        p.register(sock, select.POLLIN | select.POLLERR | select.POLLHUP)
        return bool(p.poll(0))
    return bool(select.select([sock], [], [], 0)[0])


class TlsTransport(TcpTransport):
    """RFC 5425: octet-counted frames over TLS. The server certificate and name are verified by default
    (system CAs, or `ca`); `cert`/`key` give a client certificate for mutual TLS."""

    name = "tls"

    def __init__(self, host: str, port: int, ca: str | None = None, cert: str | None = None,
                 key: str | None = None, verify: bool = True, server_name: str | None = None,
                 **kw: Any) -> None:
        super().__init__(host, port, **kw)
        ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=ca)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        if not verify:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        if cert:
            ctx.load_cert_chain(cert, key)
        self.context = ctx
        self.server_name = server_name or host

    def _connect(self) -> socket.socket:
        raw = super()._connect()
        try:
            return self.context.wrap_socket(raw, server_hostname=self.server_name)
        except BaseException:
            raw.close()
            raise

    def _shut(self) -> None:
        if self._sock is not None:
            sock, self._sock = self._sock, None
            try:
                sock.setblocking(False)  # send close_notify, do not wait for the peer's
                if isinstance(sock, ssl.SSLSocket):
                    sock.unwrap()  # so the receiver sees a clean end, not a truncation
            except (OSError, ValueError):
                pass
            finally:
                sock.close()
