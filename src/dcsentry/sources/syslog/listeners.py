"""asyncio syslog listeners (UDP, TCP, TLS) that hand messages in batches to an awaited consumer.

Flow control is the point of this module. Each TCP/TLS connection has one `_Flow`: messages wait in
its list until `batch_max` are there or `batch_delay` has passed, then the consumer is awaited with
the connection's reading paused, so a slow consumer (a spool over its bound) fills the kernel buffers
and pushes back on the sender; nothing read from a socket is ever dropped. UDP cannot push back: its
datagrams share one bounded flow, and what does not fit (or arrives while `udp_accept()` is False) is
dropped and counted, as are the kernel's own drops (receive buffer full; SO_MEMINFO, Linux).

If the consumer raises, the batch is retried with backoff (reading stays paused): the consumer is a
durable spool, and an error there (disk full) must slow senders down, not lose events.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
import sys
from collections.abc import Callable, Sequence

from ...slots import PeerSlots
from .protocols import Consumer, Received, _endpoint, _Flow, _Stream, _TlsAccept, _Udp

__all__ = ["COUNTERS", "Consumer", "ListenerSet", "Received"]

log = logging.getLogger(__name__)

COUNTERS = ("received_messages_udp", "received_bytes_udp", "received_messages_tcp", "received_bytes_tcp",
            "received_messages_tls", "received_bytes_tls", "delivered_messages", "batches", "consumer_errors",
            "udp_dropped", "udp_dropped_refused", "udp_dropped_queue_full", "udp_dropped_kernel", "udp_errors",
            "oversized", "framing_errors", "connections_open", "connections_total", "connections_refused",
            "idle_timeouts", "tls_handshake_failures", "dropped_at_stop")
SO_RCVBUFFORCE = getattr(socket, "SO_RCVBUFFORCE", 33 if sys.platform.startswith("linux") else 0)
MAX_PEERS = 65536  # per_peer entries; beyond that (spoofed UDP sources) counts go to "(other)"


class ListenerSet:
    """UDP, TCP and TLS syslog listeners feeding one consumer (see the module docstring).

    `idle_timeout` closes connections that sent nothing for that long (slow-loris, half-open);
    `handshake_timeout` bounds a TLS handshake; `udp_queue` bounds UDP messages waiting for the
    consumer; `udp_rcvbuf` is the socket receive buffer asked for (bursts wait there).
    """

    def __init__(self, consumer: Consumer, *, max_message: int = 65536 * 4, batch_max: int = 1000,
                 batch_delay: float = 0.005, udp_accept: Callable[[], bool] = lambda: True,
                 tls_context: ssl.SSLContext | None = None, max_connections: int = 10000,
                 max_per_peer: int | None = None,
                 idle_timeout: float = 600.0, handshake_timeout: float = 30.0, udp_queue: int = 100_000,
                 udp_rcvbuf: int = 32 << 20) -> None:
        self.consumer, self.max_message = consumer, max_message
        self.batch_max, self.batch_delay = batch_max, batch_delay
        self.udp_accept, self.tls_context, self.max_connections = udp_accept, tls_context, max_connections
        self.slots = PeerSlots(max_connections, max_per_peer or max_connections)
        self.idle_timeout, self.handshake_timeout = idle_timeout, handshake_timeout
        self.udp_queue, self.udp_rcvbuf = udp_queue, udp_rcvbuf
        self.counters: dict[str, int] = dict.fromkeys(COUNTERS, 0)
        self.per_peer: dict[str, dict[str, int]] = {}
        self._key_bytes = {k: f"received_bytes_{k}" for k in ("udp", "tcp", "tls")}
        self._key_messages = {k: f"received_messages_{k}" for k in ("udp", "tcp", "tls")}
        self._streams: set[_Stream] = set()
        self._flows: set[_Flow] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._handshakes: set[asyncio.Task[None]] = set()
        self._servers: list[asyncio.Server] = []
        self._udp: list[_Udp] = []
        self._sweeper: asyncio.Task[None] | None = None
        self._closing = False

    async def start(self, udp: Sequence[tuple[str, int]] = (), tcp: Sequence[tuple[str, int]] = (),
                    tls: Sequence[tuple[str, int]] = ()) -> list[tuple[str, str, int]]:
        """Binds every listener (port 0 = any free port); returns (transport, host, bound port) for each."""
        if tls and self.tls_context is None:
            raise ValueError("TLS listeners need a tls_context (see tls.server_context)")
        self._loop = loop = asyncio.get_running_loop()
        if not hasattr(self, "_udp_flow"):
            self._udp_flow = _Flow(self)
        bound: list[tuple[str, str, int]] = []
        try:
            for host, port in udp:
                sock = self._udp_socket(host, port)
                u = _Udp(self, sock)
                self._udp.append(u)
                loop.add_reader(sock.fileno(), u.read)
                bound.append(("udp", host, sock.getsockname()[1]))
            for kind, addrs in (("tcp", tcp), ("tls", tls)):
                for host, port in addrs:
                    factory: Callable[[], asyncio.Protocol] = (
                        (lambda: _Stream(self, "tcp")) if kind == "tcp" else (lambda: _TlsAccept(self)))
                    srv = await loop.create_server(factory, host, port, backlog=1024, reuse_address=True)
                    self._servers.append(srv)
                    bound.append((kind, host, srv.sockets[0].getsockname()[1]))
        except BaseException:
            await self.stop(drain=False)
            raise
        if self._sweeper is None:
            self._sweeper = loop.create_task(self._sweep())
        return bound

    async def stop(self, drain: bool = True, timeout: float = 30.0) -> None:
        """Stops accepting and reading; with `drain`, waits (up to `timeout`) until every message
        already read has been through the consumer. What is still pending after that, or was inside a
        cancelled consumer call, is counted in `dropped_at_stop` (so after stop, received = delivered +
        dropped_at_stop). Data the kernel holds but nobody read yet is not ours and is not counted."""
        self._closing = True
        loop = self._loop if hasattr(self, "_loop") else asyncio.get_running_loop()
        for srv in self._servers:
            srv.close()
        for u in self._udp:
            loop.remove_reader(u.sock.fileno())
            u.sync_kernel_drops()
            u.sock.close()
        self._servers, self._udp = [], []
        for t in [*self._handshakes, *([self._sweeper] if self._sweeper else [])]:
            t.cancel()
        self._sweeper = None
        for s in list(self._streams):
            s._finish()
            if s.transport is not None:
                s.transport.close()
        if hasattr(self, "_udp_flow"):
            self._udp_flow.closed = True
            self._udp_flow.flush()
        deadline = loop.time() + (timeout if drain else 0.0)
        while drain and self._tasks and loop.time() < deadline:
            await asyncio.wait(set(self._tasks), timeout=deadline - loop.time())
        for f in list(self._flows):
            self.counters["dropped_at_stop"] += len(f.pending)
            f.pending.clear()
            if f.task is not None:
                f.task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    # -- internals shared by the protocols

    def _admit(self, stream: _Stream, transport: asyncio.Transport) -> bool:
        """A slot for this connection (in all and for its address), or it is closed at once: counted,
        logged once a minute, never a descriptor held by a peer over its share."""
        c = self.counters
        host = _endpoint(transport.get_extra_info("peername") or ("?", 0))[0].strip("[]")
        if self._closing or not self.slots.take(host):
            c["connections_refused"] += 1
            transport.abort()
            return False
        stream.slot = host
        stream.admitted = True
        c["connections_open"] += 1
        c["connections_total"] += 1
        return True

    def _release(self, stream: _Stream) -> None:
        self._streams.discard(stream)
        if stream.admitted:
            stream.admitted = False
            self.counters["connections_open"] -= 1
            self.slots.give(stream.slot)

    def _peer_stats(self, host: str) -> dict[str, int]:
        st = self.per_peer.get(host)
        if st is None:
            if len(self.per_peer) >= MAX_PEERS:
                host = "(other)"
                st = self.per_peer.get(host)
            if st is None:
                st = self.per_peer[host] = {"messages": 0, "bytes": 0, "errors": 0}
        return st

    async def _deliver(self, batch: list[Received]) -> None:
        backoff = 0.05
        try:
            while True:
                try:
                    await self.consumer(batch)
                    break
                except Exception:
                    self.counters["consumer_errors"] += 1
                    log.exception("syslog consumer failed on %d messages; retrying in %.2f s", len(batch), backoff)
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, 5.0)
        except asyncio.CancelledError:  # stop(drain=False) or a drain timeout: maybe never written
            self.counters["dropped_at_stop"] += len(batch)
            raise
        self.counters["delivered_messages"] += len(batch)
        self.counters["batches"] += 1

    async def _handshake(self, raw: asyncio.Transport, stream: _Stream) -> None:
        assert self.tls_context is not None
        try:
            tr = await self._loop.start_tls(raw, stream, self.tls_context, server_side=True,
                                            ssl_handshake_timeout=self.handshake_timeout, ssl_shutdown_timeout=5.0)
        except asyncio.CancelledError:
            raw.abort()
            self._release(stream)
            raise
        except Exception as exc:  # ssl.SSLError, reset, timeout: the peer's problem, not the server's
            self.counters["tls_handshake_failures"] += 1
            host = _endpoint(raw.get_extra_info("peername") or ("?", 0))[0].strip("[]")
            self._peer_stats(host)["errors"] += 1
            log.info("TLS handshake with %s failed: %s", host, exc)
            raw.abort()
            self._release(stream)
            return
        assert tr is not None  # typeshed: Transport | None; asyncio returns the new TLS transport
        stream.connection_made(tr)

    async def _sweep(self) -> None:
        """Closes connections idle longer than idle_timeout (not those paused by a slow consumer)."""
        while True:
            await asyncio.sleep(max(0.05, min(self.idle_timeout / 4, 5.0)))
            limit = self._loop.time() - self.idle_timeout
            for s in [s for s in self._streams if s.last < limit and s.flow is not None and s.flow.task is None]:
                self.counters["idle_timeouts"] += 1
                s.stats["errors"] += 1
                if s.transport is not None:
                    s.transport.abort()

    def _udp_socket(self, host: str, port: int) -> socket.socket:
        family, _, _, _, addr = socket.getaddrinfo(host or None, port, type=socket.SOCK_DGRAM,
                                                   flags=socket.AI_PASSIVE)[0]
        sock = socket.socket(family, socket.SOCK_DGRAM)
        try:
            sock.bind(addr)  # no SO_REUSEADDR: a second listener on the port would silently share it
            sock.setblocking(False)
            for opt in (SO_RCVBUFFORCE, socket.SO_RCVBUF):
                try:
                    if opt:
                        sock.setsockopt(socket.SOL_SOCKET, opt, self.udp_rcvbuf)
                        break
                except OSError:
                    continue
            got = sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)
            if got < self.udp_rcvbuf:  # Linux reports twice what it was asked for
                log.warning("UDP %s:%d: receive buffer %d bytes, not %d (raise net.core.rmem_max or run with "
                            "CAP_NET_ADMIN): bursts will be dropped sooner", host, port, got, self.udp_rcvbuf)
        except BaseException:
            sock.close()
            raise
        return sock
