"""Transports against real receivers on 127.0.0.1 ephemeral ports (no socket mocks), file sinks, forward URLs.

Every wait is bounded: receivers use socket timeouts, `Receiver.take` gives up after a few seconds, and
each test has a pytest-timeout.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import queue
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pycef
import pytest
from pki import make_pki
from servekit import wait_for

from dcsentry.alerts import ALERT_TYPES, Alert
from dcsentry.sinks.forward import JsonlSink, Sink, open_sink
from dcsentry.sinks.syslog import TcpTransport, TlsTransport, UdpTransport

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]  # most tests run a loopback receiver
T0 = dt.datetime(2024, 3, 5, 14, 19, 2, 604541, tzinfo=dt.timezone.utc)
FAST: dict[str, Any] = {"backoff": 0.05, "backoff_max": 0.2, "timeout": 2.0}


def make_alert(n: int = 0, type_: str = "brute-force", **kw: object) -> Alert:
    at = ALERT_TYPES[type_]
    base: dict[str, object] = {
        "type": type_, "key": f"client{n}", "title": at.title, "description": f"alert {n}: a=b | c\\d\nnext é",
        "severity": at.severity, "technique": at.technique, "start": T0 + dt.timedelta(seconds=n), "end": T0,
        "accounts": ["jdoe"], "hosts": [f"client{n}.contoso.com"]}
    base.update(kw)
    return Alert(**base)  # type: ignore[arg-type]


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Receiver:
    """A syslog receiver in a thread: UDP datagrams, or TCP/TLS with RFC 6587 octet-counted frames."""

    def __init__(self, proto: str, port: int = 0, tls: ssl.SSLContext | None = None) -> None:
        self.proto, self.port, self.tls = proto, port, tls
        self.messages: queue.Queue[bytes] = queue.Queue()
        self.errors: list[str] = []
        self._sock: socket.socket | None = None
        self._conns: list[socket.socket] = []
        self._threads: list[threading.Thread] = []
        self._stopping = False

    def start(self) -> Receiver:
        kind = socket.SOCK_DGRAM if self.proto == "udp" else socket.SOCK_STREAM
        s = socket.socket(socket.AF_INET, kind)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", self.port))
        self.port = s.getsockname()[1]
        s.settimeout(0.1)
        if kind == socket.SOCK_STREAM:
            s.listen(16)
        self._sock = s
        self._spawn(self._udp_loop if self.proto == "udp" else self._accept_loop, s)
        return self

    def _spawn(self, fn: object, *args: object) -> None:
        t = threading.Thread(target=fn, args=args, daemon=True)  # type: ignore[arg-type]
        t.start()
        self._threads.append(t)

    def _udp_loop(self, s: socket.socket) -> None:
        while self._sock is s:
            try:
                self.messages.put(s.recv(70000))
            except TimeoutError:
                continue
            except OSError:
                return

    def _accept_loop(self, s: socket.socket) -> None:
        while self._sock is s:
            try:
                conn, _ = s.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self._conns.append(conn)
            self._spawn(self._conn_loop, conn)

    def _conn_loop(self, conn: socket.socket) -> None:
        conn.settimeout(5)
        try:
            if self.tls is not None:
                conn = self.tls.wrap_socket(conn, server_side=True)
                self._conns.append(conn)
            buf = b""
            while True:
                while b" " not in buf[:12]:
                    chunk = conn.recv(65536)
                    if not chunk:
                        return
                    buf += chunk
                head, _, rest = buf.partition(b" ")
                n = int(head)  # a malformed frame raises: the test sees it in `errors`
                while len(rest) < n:
                    chunk = conn.recv(65536)
                    if not chunk:
                        self.errors.append("truncated frame")
                        return
                    rest += chunk
                self.messages.put(rest[:n])
                buf = rest[n:]
        except (OSError, ValueError) as e:
            if not self._stopping:  # errors from our own stop() are not the sender's fault
                self.errors.append(f"{type(e).__name__}: {e}")
        finally:
            conn.close()

    def stop(self) -> None:
        """Go away like a crashed receiver: listener and every connection closed now."""
        self._stopping = True
        s, self._sock = self._sock, None
        if s is not None:
            s.close()
        for c in self._conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            c.close()
        self._conns.clear()
        for t in self._threads:
            t.join(timeout=5)
        self._threads.clear()

    def take(self, n: int, timeout: float = 5.0) -> list[bytes]:
        deadline = time.monotonic() + timeout
        out = []
        for _ in range(n):
            out.append(self.messages.get(timeout=max(0.01, deadline - time.monotonic())))
        return out

    def assert_empty(self, wait: float = 0.2) -> None:
        with pytest.raises(queue.Empty):
            self.messages.get(timeout=wait)


@pytest.fixture
def receivers() -> Iterator[list[Receiver]]:
    started: list[Receiver] = []
    yield started
    for r in started:
        r.stop()


def start(receivers: list[Receiver], proto: str, port: int = 0, tls: ssl.SSLContext | None = None) -> Receiver:
    r = Receiver(proto, port, tls).start()
    receivers.append(r)
    return r


# --- certificates -------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Two CAs; a server cert (127.0.0.1 / localhost) and a client cert from the first."""
    files = {k: str(v) for k, v in make_pki(tmp_path_factory.mktemp("pki")).items()}
    files["client_cert"] = files["client"]
    return files


def server_context(pki: dict[str, str], require_client: bool = False) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(pki["server"], pki["server_key"])
    if require_client:
        ctx.load_verify_locations(pki["ca"])
        ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


# --- network transports -------------------------------------------------------------------------------

def test_udp_one_datagram_per_alert(receivers: list[Receiver]) -> None:
    r = start(receivers, "udp")
    sink = open_sink(f"cef+udp://127.0.0.1:{r.port}", hostname="DC1", **FAST)
    alerts = [make_alert(i) for i in range(3)]
    for a in alerts:
        sink.send(a)
    got = r.take(3)
    for a, raw in zip(alerts, got):
        assert raw.startswith(b"<36>1 ") and b" DC1 CEF " in raw and b" BruteForceSecurityAlert - CEF:0|" in raw
        rec = pycef.parse(raw.decode())
        assert rec["url"].endswith(a.id) and rec["shost"] == "client" + a.key[-1]
    sink.close()
    assert sink.stats.sent == 3 and sink.stats.failed == 0 and sink.stats.dropped == 0


def test_udp_port_unreachable_is_counted_and_retried(receivers: list[Receiver]) -> None:
    port = free_port(socket.SOCK_DGRAM)
    t = UdpTransport("127.0.0.1", port, **FAST)
    for i in range(4):
        t.send(b"m%d" % i)
    s = t.stats
    assert s.failed >= 1 and s.last_error and "Refused" in s.last_error  # ICMP port unreachable came back
    assert s.sent + s.queued == 4 and s.queued >= 1
    r = start(receivers, "udp", port)
    assert t.flush(force=True)
    assert r.take(s.queued) == [b"m%d" % i for i in range(4 - s.queued, 4)]
    t.close()


def test_tcp_octet_counting_and_receiver_restart(receivers: list[Receiver]) -> None:
    r = start(receivers, "tcp")
    sink = open_sink(f"cef+tcp://127.0.0.1:{r.port}?format=rfc3164", hostname="DC1", **FAST)
    sink.send(make_alert(0, severity="high"))
    (first,) = r.take(1)
    assert first.startswith(b"<35>") and b" DC1 CEF[" in first and b"]: CEF:0|dcsentry|" in first
    assert sink.stats.sent == 1 and sink.stats.connects == 1

    r.stop()  # the SIEM goes down: the idle connection is dead and new ones are refused
    sink.send(make_alert(1))
    sink.send(make_alert(2))
    s = sink.stats
    assert (s.sent, s.queued, s.dropped) == (1, 2, 0)
    assert s.failed == 1  # one failed attempt; the second alert was queued behind the backoff
    assert s.down_since is not None and "Refused" in (s.last_error or "")

    r2 = start(receivers, "tcp", r.port)  # ...and comes back on the same port
    assert wait_for(sink.flush, timeout=10, what="a flush past the backoff", every=0.02)  # then it tries again
    got = r2.take(2)
    assert [pycef.parse(m.decode())["url"][-24:] for m in got] == [make_alert(1).id, make_alert(2).id]
    s = sink.stats
    assert (s.sent, s.queued, s.dropped, s.connects, s.down_since) == (3, 0, 0, 2, None)
    sink.close()
    r2.assert_empty()
    assert not r.errors and not r2.errors


def test_tcp_bounded_queue_drops_oldest(receivers: list[Receiver]) -> None:
    port = free_port()
    t = TcpTransport("127.0.0.1", port, queue_size=3, **FAST)
    for i in range(5):
        t.send(b"msg %d" % i)
    assert (t.stats.queued, t.stats.dropped, t.stats.sent) == (3, 2, 0)
    r = start(receivers, "tcp", port)
    assert t.flush(force=True)
    assert r.take(3) == [b"msg 2", b"msg 3", b"msg 4"]
    t.send(b"x" * 200_000)  # large frame: length prefix must cover all of it
    assert r.take(1) == [b"x" * 200_000]
    t.close()
    assert (t.stats.sent, t.stats.dropped, t.stats.queued) == (4, 2, 0)


def test_close_counts_what_could_not_be_sent() -> None:
    t = TcpTransport("127.0.0.1", free_port(), **FAST)
    for i in range(3):
        t.send(b"m")
    t.close()
    t.send(b"after close")
    s = t.stats
    assert (s.sent, s.queued, s.dropped) == (0, 0, 4)
    assert s.failed == 2  # one on send, one final attempt at close


def test_tcp_many_threads_frames_stay_intact(receivers: list[Receiver]) -> None:
    r = start(receivers, "tcp")
    t = TcpTransport("127.0.0.1", r.port, **FAST)

    def worker(w: int) -> None:
        for i in range(50):
            t.send(f"w{w} m{i} ".encode() + b"y" * (i * 37))

    threads = [threading.Thread(target=worker, args=(w,)) for w in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout=20)
    got = r.take(200)
    for w in range(4):
        mine = [m for m in got if m.startswith(f"w{w} ".encode())]
        assert mine == [f"w{w} m{i} ".encode() + b"y" * (i * 37) for i in range(50)]
    t.close()
    assert t.stats.sent == 200 and not r.errors


def test_tls_with_ca_file_and_client_certificate(receivers: list[Receiver], pki: dict[str, str]) -> None:
    r = start(receivers, "tcp", tls=server_context(pki, require_client=True))
    url = (f"cef+tls://127.0.0.1:{r.port}?ca={pki['ca']}&cert={pki['client_cert']}&key={pki['client_key']}")
    sink = open_sink(url, hostname="DC1", **FAST)
    alert = make_alert(5, type_="honeytoken-activity")
    sink.send(alert)
    (raw,) = r.take(1)
    rec = pycef.parse(raw.decode())
    assert rec["externalId"] == "2014" and rec["url"].endswith(alert.id)
    assert b" HoneytokenActivitySecurityAlert - CEF:0|" in raw

    r.stop()  # TLS receiver restarts: reconnect + new handshake, queued alert delivered
    sink.send(make_alert(6))
    assert sink.stats.queued == 1 and sink.stats.failed == 1
    r2 = start(receivers, "tcp", r.port, tls=server_context(pki, require_client=True))
    assert wait_for(sink.flush, timeout=10, what="a flush past the backoff", every=0.02)
    (raw2,) = r2.take(1)
    assert pycef.parse(raw2.decode())["url"].endswith(make_alert(6).id)
    sink.close()
    s = sink.stats
    assert (s.sent, s.dropped, s.connects) == (2, 0, 2)


def test_tls_refuses_server_certificate_from_another_ca(receivers: list[Receiver], pki: dict[str, str]) -> None:
    r = start(receivers, "tcp", tls=server_context(pki))
    t = TlsTransport("127.0.0.1", r.port, ca=pki["other_ca"], **FAST)
    t.send(b"secret alert")
    s = t.stats
    assert s.sent == 0 and s.queued == 1 and s.failed == 1
    assert "CERTIFICATE_VERIFY_FAILED" in (s.last_error or "")
    r.assert_empty()
    t.close()
    assert t.stats.dropped == 1


def test_tls_verifies_by_default_and_checks_the_name(receivers: list[Receiver], pki: dict[str, str]) -> None:
    r = start(receivers, "tcp", tls=server_context(pki))
    default = TlsTransport("127.0.0.1", r.port, **FAST)  # system CAs do not know our test CA
    default.send(b"a")
    assert "CERTIFICATE_VERIFY_FAILED" in (default.stats.last_error or "")
    default.close()
    wrong_name = TlsTransport("127.0.0.1", r.port, ca=pki["ca"], server_name="siem.example.com", **FAST)
    wrong_name.send(b"b")
    assert wrong_name.stats.sent == 0 and "mismatch" in (wrong_name.stats.last_error or "").lower()
    wrong_name.close()
    by_name = open_sink(f"cef+tls://localhost:{r.port}?ca={pki['ca']}", **FAST)
    by_name.send(make_alert(1))
    assert len(r.take(1)) == 1
    by_name.close()


# --- files --------------------------------------------------------------------------------------------

def test_cef_file_lines_and_rotation(tmp_path: Path) -> None:
    path = tmp_path / "alerts.cef"
    sink = open_sink(f"cef+file://{path}")
    alerts = [make_alert(i) for i in range(3)]
    for a in alerts[:2]:
        sink.send(a)
    lines = path.read_text("utf-8").splitlines()  # flushed per alert: readable before close
    assert len(lines) == 2 and all(line.startswith("CEF:0|dcsentry|") for line in lines)
    assert pycef.parse(lines[1])["url"].endswith(alerts[1].id)
    os.rename(path, tmp_path / "alerts.cef.1")  # logrotate
    sink.send(alerts[2])
    sink.close()
    assert len(path.read_text("utf-8").splitlines()) == 1
    assert sink.stats.sent == 3


def test_cef_file_with_syslog_header(tmp_path: Path) -> None:
    path = tmp_path / "a b.log"
    sink = open_sink(f"cef+file://{str(path).replace(' ', '%20')}?format=rfc5424&hostname=DC9")
    sink.send(make_alert(1))
    sink.close()
    (line,) = path.read_text("utf-8").splitlines()
    assert line.startswith("<36>1 ") and " DC9 CEF " in line


def test_file_sink_queues_until_the_directory_exists(tmp_path: Path) -> None:
    path = tmp_path / "later" / "alerts.jsonl"
    sink = open_sink(f"jsonl://{path}", **FAST)
    sink.send(make_alert(1))
    assert sink.stats.queued == 1 and sink.stats.failed == 1
    path.parent.mkdir()
    assert sink.flush(force=True)
    sink.close()
    assert len(path.read_text().splitlines()) == 1


def test_jsonl_appends_to_dict(tmp_path: Path) -> None:
    path = tmp_path / "alerts.jsonl"
    path.write_text('{"existing": true}\n')
    sink = open_sink(f"jsonl://{path}")
    assert isinstance(sink, JsonlSink) and isinstance(sink, Sink)
    alerts = [make_alert(i, details={"guessed": ["a", "b"]}, revision=i) for i in range(2)]
    for a in alerts:
        sink.send(a)
    assert len(path.read_text().splitlines()) == 3  # flushed per alert
    sink.close()
    rows = [json.loads(line) for line in path.read_text("utf-8").splitlines()]
    assert rows[0] == {"existing": True}
    assert rows[1:] == [json.loads(json.dumps(a.to_dict())) for a in alerts]
