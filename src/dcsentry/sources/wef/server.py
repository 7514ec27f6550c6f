"""The collector's HTTP/1.1 server: asyncio streams + h11, one task per TCP connection.

Not an ASGI app on purpose: WinRM binds its security to the TCP connection (Kerberos message
encryption uses the context established by the connection's first request; with HTTPS the client
certificate is the connection's), so each connection object owns its security context and the
requests on it are answered in order on that connection.

Limits, each refused with its HTTP status and counted: a body over `max_request` (413, before
it is read), a method other than POST (405), no credentials or failed Kerberos (401 with
`WWW-Authenticate: Negotiate` / `Kerberos`), a TLS handshake without an acceptable client
certificate (closed), malformed HTTP (400), idle connections (closed after `idle_timeout`).
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from typing import Any

import h11

from ..syslog.tls import peer_common_name
from .collector import Collector, Identity, Reply, Request

log = logging.getLogger(__name__)

CHALLENGE = [("WWW-Authenticate", "Negotiate"), ("WWW-Authenticate", "Kerberos")]
_READ = 65536


class _Refused(Exception):
    def __init__(self, status: int, counter: str) -> None:
        super().__init__(counter)
        self.status, self.counter = status, counter


class WefServer:
    """Serves one collector on any number of listeners of one kind (HTTPS or Kerberos HTTP)."""

    def __init__(self, collector: Collector, *, tls_context: ssl.SSLContext | None = None,
                 acceptor: Any = None, max_request: int = 4 << 20, idle_timeout: float = 300.0,
                 handshake_timeout: float = 30.0, max_connections: int = 10000,
                 auth_error: type[Exception] | None = None) -> None:
        if (tls_context is None) == (acceptor is None):
            raise ValueError("a WEF listener needs either TLS with client certificates or a Kerberos keytab")
        self.collector = collector
        self.counters = collector.counters
        self.tls_context, self.acceptor = tls_context, acceptor
        self.auth_error: tuple[type[Exception], ...] = (auth_error,) if auth_error else ()
        self.scheme = "https" if tls_context is not None else "http"
        self.max_request, self.idle_timeout = max_request, idle_timeout
        self.handshake_timeout, self.max_connections = handshake_timeout, max_connections
        self._servers: list[asyncio.Server] = []
        self._conns: set[asyncio.Task[None]] = set()
        self._busy: set[asyncio.Task[None]] = set()  # connections inside a request
        self._handshakes: set[asyncio.Task[None]] = set()
        self._closing = False

    async def start(self, host: str, port: int) -> int:
        if self.tls_context is None:
            server = await asyncio.start_server(self._client, host, port, limit=_READ, backlog=512)
        else:  # TLS taken over per connection, so a failed handshake is seen (and counted) here
            server = await asyncio.get_running_loop().create_server(lambda: _TlsAccept(self), host, port, backlog=512)
        self._servers.append(server)
        return int(server.sockets[0].getsockname()[1])

    async def _tls_client(self, transport: asyncio.Transport) -> None:
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader(limit=_READ, loop=loop)
        protocol = asyncio.StreamReaderProtocol(reader, loop=loop)
        assert self.tls_context is not None  # _TlsAccept is only created for a TLS listener (start)
        try:
            tls = await loop.start_tls(transport, protocol, self.tls_context, server_side=True,
                                       ssl_handshake_timeout=self.handshake_timeout)
        except (TimeoutError, ssl.SSLError, OSError):
            self.counters["tls_handshake_failures"] += 1
            transport.abort()
            return
        if tls is None:
            transport.abort()
            return
        protocol.connection_made(tls)
        await self._client(reader, asyncio.StreamWriter(tls, protocol, reader, loop))

    async def stop(self, grace: float = 10.0) -> None:
        """Stop accepting; requests in flight finish (their events are spooled and acked), idle
        connections are closed."""
        self._closing = True
        for s in self._servers:
            s.close()
        for task in list(self._handshakes):
            task.cancel()
        for task in list(self._conns - self._busy):
            task.cancel()
        if self._busy:
            await asyncio.wait(list(self._busy), timeout=grace)
        for task in list(self._conns):
            task.cancel()
        if self._conns:
            await asyncio.wait(list(self._conns), timeout=grace)

    # -- one connection -------------------------------------------------------------------------------
    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        c = self.counters
        task = asyncio.current_task()
        assert task is not None
        if self._closing or len(self._conns) >= self.max_connections:
            c["connections_refused"] += 1
            writer.close()
            return
        self._conns.add(task)
        c["connections_total"] += 1
        try:
            await self._connection(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError, ssl.SSLError, TimeoutError):
            c["connections_reset"] += 1
        except asyncio.CancelledError:
            pass
        except Exception:  # a bug must cost one connection, never the listener
            c["internal_errors"] += 1
            log.exception("WEF connection failed")
        finally:
            self._conns.discard(task)
            self._busy.discard(task)
            writer.close()

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        c = self.counters
        peername = writer.get_extra_info("peername") or ("?", 0)
        host = str(peername[0])
        peer = f"[{host}]:{peername[1]}" if ":" in host else f"{host}:{peername[1]}"
        ident: Identity | None = None
        if self.tls_context is not None:
            cn = peer_common_name(writer.get_extra_info("peercert"))
            if not cn:
                c["unauthenticated"] += 1
                return
            ident = Identity(cn, "certificate")
        sec = self.acceptor.new_context() if self.acceptor is not None else None
        conn = h11.Connection(h11.SERVER, max_incomplete_event_size=32768)
        task = asyncio.current_task()
        assert task is not None  # runs inside the connection's task (_client)
        while True:
            try:
                got = await self._read_request(conn, reader)
            except _Refused as r:
                c[r.counter] += 1
                await self._send(conn, writer, Reply(r.status), close=True)
                return
            except h11.RemoteProtocolError:
                c["refused_http"] += 1
                if conn.our_state in (h11.IDLE, h11.SEND_RESPONSE):
                    await self._send(conn, writer, Reply(400), close=True)
                return
            if got is None:
                return
            self._busy.add(task)
            try:
                req, body = got
                reply, ident = await self._answer(req, body, peer, sec, ident)
                await self._send(conn, writer, reply)
            finally:
                self._busy.discard(task)
            if self._closing or conn.our_state is not h11.DONE or conn.their_state is not h11.DONE:
                return
            conn.start_next_cycle()

    async def _read_request(self, conn: h11.Connection, reader: asyncio.StreamReader
                            ) -> tuple[h11.Request, bytes] | None:
        req: h11.Request | None = None
        body = bytearray()
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                try:
                    data = await asyncio.wait_for(reader.read(_READ), self.idle_timeout if req is None else 60.0)
                except TimeoutError:
                    self.counters["idle_timeouts"] += 1
                    return None
                conn.receive_data(data)
                if not data and conn.their_state is h11.IDLE:
                    return None
                continue
            if isinstance(event, h11.Request):
                req = event
                if event.method != b"POST":
                    raise _Refused(405, "refused_method")
                for name, value in event.headers:
                    if name == b"content-length" and value.isdigit() and int(value) > self.max_request:
                        raise _Refused(413, "refused_oversized")
            elif isinstance(event, h11.Data):
                body += event.data
                if len(body) > self.max_request:
                    raise _Refused(413, "refused_oversized")
            elif isinstance(event, h11.EndOfMessage):
                assert req is not None
                return req, bytes(body)
            elif isinstance(event, h11.ConnectionClosed):
                return None

    async def _answer(self, req: h11.Request, body: bytes, peer: str, sec: Any,
                      ident: Identity | None) -> tuple[Reply, Identity | None]:
        c = self.counters
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in req.headers}
        path = req.target.decode("latin-1")
        host = headers.get("host", "")
        ctype, encoding = headers.get("content-type", ""), headers.get("content-encoding", "")
        extra: list[tuple[str, str]] = []
        if sec is not None:
            refused: tuple[type[Exception], ...] = (*self.auth_error, ValueError)
            auth = headers.get("authorization")
            if auth:
                try:
                    token = sec.step(auth)
                except refused:
                    c["refused_auth"] += 1
                    return Reply(401, headers=list(CHALLENGE)), ident
                if token:
                    extra.append(("WWW-Authenticate", token))
            if not sec.complete or not sec.principal:
                c["refused_unauthenticated"] += 1
                return Reply(401, headers=list(CHALLENGE)), ident
            ident = Identity(sec.principal, "kerberos")
            if not body:
                return Reply(200, headers=extra), ident
            if not ctype.lower().startswith("multipart/encrypted"):
                c["refused_unencrypted"] += 1
                return Reply(400, headers=extra), ident
            try:
                inner = sec.unwrap(body, ctype)
            except refused:
                c["refused_decrypt"] += 1
                return Reply(400, headers=extra), ident
            reply = await self.collector.handle(Request(path, inner, "", encoding, peer, "http", host), ident)
            if reply.body:
                wrapped, wrapped_type = sec.wrap(reply.body)
                reply = Reply(reply.status, wrapped, reply.headers, ctype=wrapped_type)
            reply.headers += extra
            return reply, ident
        assert ident is not None
        if not body:
            return Reply(200), ident
        return await self.collector.handle(Request(path, body, ctype, encoding, peer, "https", host), ident), ident

    async def _send(self, conn: h11.Connection, writer: asyncio.StreamWriter, reply: Reply,
                    close: bool = False) -> None:
        headers = [("Server", "dcsentry")]
        if reply.status != 204:
            headers.append(("Content-Length", str(len(reply.body))))
        if reply.body:
            headers.append(("Content-Type", reply.content_type or ""))
        if close:
            headers.append(("Connection", "close"))
        headers += reply.headers
        try:
            out = conn.send(h11.Response(status_code=reply.status, headers=headers, reason=b""))
            if reply.body:
                out += conn.send(h11.Data(data=reply.body))
            out += conn.send(h11.EndOfMessage())
        except h11.LocalProtocolError:
            self.counters["internal_errors"] += 1
            return
        writer.write(out)
        await writer.drain()

    @property
    def open_connections(self) -> int:
        return len(self._conns)



class _TlsAccept(asyncio.Protocol):
    """The plain-TCP side of a connection until `start_tls` takes it over."""

    def __init__(self, server: WefServer) -> None:
        self.server = server

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        transport.pause_reading()  # the ClientHello must go to the TLS protocol, not here
        task = asyncio.get_running_loop().create_task(self.server._tls_client(transport))
        self.server._handshakes.add(task)
        task.add_done_callback(self.server._handshakes.discard)
