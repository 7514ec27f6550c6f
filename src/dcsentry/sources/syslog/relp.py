"""RELP, the Reliable Event Logging Protocol (rsyslog's omrelp/imrelp; librelp's relp.html):
syslog with an acknowledgement per message, so a sender keeps what was not acknowledged and sends
it again after a reconnect. Plain TCP syslog cannot do that (docs/security.md: what each transport
can lose).

A frame is ``TXNR SP COMMAND SP DATALEN [SP DATA] LF``. The client opens with ``open`` (offers:
``relp_version``, ``relp_software``, ``commands``), sends ``syslog`` commands (several in flight,
up to its window), and ends with ``close``. Each command is answered by ``TXNR rsp LEN 200 OK``
in the order received. Here the answer to a ``syslog`` command is sent only after the consumer
returned, i.e. after the message is durable in the spool (or acknowledged by JetStream on an
ingest node): a crash before that leaves the message unacknowledged at the sender, which re-sends
it. The re-sent copy of a message that was stored but whose answer was lost is removed downstream
(the store's event key; docs/security.md).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import ssl
import time
from collections.abc import Sequence
from typing import Any

from ...slots import PeerSlots
from .protocols import Consumer, Received, _endpoint
from .tls import peer_common_name

log = logging.getLogger("dcsentry.relp")
SOFTWARE = "dcsentry"
MAX_DATA = 256 * 1024  # a syslog message as large as the TCP listener takes
MAX_HEADER = 32  # "TXNR SP COMMAND SP DATALEN SP": 9 + 1 + 32 + 1 + 9 + 1 at most
BATCH = 1024  # messages handed to the consumer at once (rsyslog's default window is 128)
COUNTERS = ("connections_open", "connections_total", "connections_refused", "messages", "acknowledged",
            "framing_errors", "consumer_errors", "tls_handshake_failures")


class RelpError(ValueError):
    """The peer broke the framing: the session ends (RELP has no resynchronisation)."""


class Frame:
    __slots__ = ("txnr", "command", "data")

    def __init__(self, txnr: int, command: str, data: bytes) -> None:
        self.txnr, self.command, self.data = txnr, command, data


def parse_frames(buf: bytearray, max_data: int = MAX_DATA) -> list[Frame]:
    """Complete frames at the start of `buf` (removed from it); an incomplete tail stays."""
    out: list[Frame] = []
    pos = 0
    n = len(buf)
    while pos < n:
        sp1 = buf.find(b" ", pos, pos + 10)
        sp2 = buf.find(b" ", sp1 + 1, sp1 + 34) if sp1 > 0 else -1
        if sp1 < 0 or sp2 < 0:
            if n - pos > 45:  # no room left for a valid header: garbage
                raise RelpError("malformed frame header")
            break
        head_end = sp2
        # DATALEN is followed by SP DATA or, for 0, by the LF trailer
        i = sp2 + 1
        j = i
        while j < n and j - i < 10 and 48 <= buf[j] <= 57:
            j += 1
        if j >= n:
            break
        try:
            txnr = int(buf[pos:sp1])
            command = buf[sp1 + 1:head_end].decode("ascii")
            datalen = int(buf[i:j])
        except (ValueError, UnicodeDecodeError):
            raise RelpError("malformed frame header") from None
        if txnr < 0 or txnr > 999_999_999 or not command.isalnum() or datalen > max_data:
            raise RelpError(f"bad frame (txnr {txnr}, command {command[:20]!r}, length {datalen})")
        if datalen == 0:
            if buf[j] != 0x0A:
                raise RelpError("missing frame trailer")
            out.append(Frame(txnr, command, b""))
            pos = j + 1
            continue
        if buf[j] != 0x20:
            raise RelpError("missing space before frame data")
        end = j + 1 + datalen
        if end >= n:
            break
        if buf[end] != 0x0A:
            raise RelpError("missing frame trailer")
        out.append(Frame(txnr, command, bytes(buf[j + 1:end])))
        pos = end + 1
    del buf[:pos]
    return out


def response(txnr: int, text: str = "200 OK") -> bytes:
    body = text.encode()
    return b"%d rsp %d %s\n" % (txnr, len(body), body) if body else b"%d rsp 0\n" % txnr


class RelpServer:
    """RELP listeners (plain or TLS) feeding the same consumer as the syslog listeners."""

    def __init__(self, consumer: Consumer, *, tls_context: ssl.SSLContext | None = None, max_connections: int = 1000,
                 max_per_peer: int | None = None, idle_timeout: float = 600.0) -> None:
        self.consumer, self.tls_context, self.idle_timeout = consumer, tls_context, idle_timeout
        self.slots = PeerSlots(max_connections, max_per_peer or max_connections)
        self.counters: dict[str, int] = dict.fromkeys(COUNTERS, 0)
        self._servers: list[asyncio.Server] = []
        self._sessions: set[asyncio.StreamWriter] = set()

    async def start(self, plain: Sequence[tuple[str, int]] = (),
                    tls: Sequence[tuple[str, int]] = ()) -> list[tuple[str, str, int]]:
        if tls and self.tls_context is None:
            raise ValueError("RELP over TLS needs a tls_context")
        bound = []
        for kind, addrs in (("relp", plain), ("relp-tls", tls)):
            for host, port in addrs:
                ssl_args: dict[str, Any] = (
                    {"ssl": self.tls_context, "ssl_handshake_timeout": 30.0} if kind == "relp-tls" else {})
                srv = await asyncio.start_server(
                    functools.partial(self._session, kind=kind), host, port, backlog=512, reuse_address=True,
                    **ssl_args)
                self._servers.append(srv)
                bound.append((kind, host, srv.sockets[0].getsockname()[1]))
        return bound

    async def stop(self) -> None:
        """Stop accepting; tell open sessions the server is going (`serverclose`); what they had
        in flight and unacknowledged they send again to the next server."""
        for srv in self._servers:
            srv.close()
        for w in list(self._sessions):
            try:
                w.write(b"0 serverclose 0\n")
                w.close()
            except (ConnectionError, RuntimeError):
                pass
        for srv in self._servers:
            await srv.wait_closed()
        self._servers = []

    async def _session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, kind: str) -> None:
        host, port = _endpoint(writer.get_extra_info("peername") or ("?", 0))
        host = host.strip("[]")
        if not self.slots.take(host):
            self.counters["connections_refused"] += 1
            writer.transport.abort()
            return
        peer = f"{kind}://{host}:{port}"
        name = _client_name(writer)
        self.counters["connections_open"] += 1
        self.counters["connections_total"] += 1
        self._sessions.add(writer)
        buf = bytearray()
        opened = False
        try:
            while True:
                chunk = await asyncio.wait_for(reader.read(1 << 16), self.idle_timeout)
                if not chunk:
                    return
                buf += chunk
                frames = parse_frames(buf)
                if len(buf) > MAX_DATA + MAX_HEADER + 64:
                    raise RelpError("frame larger than the limit")
                replies: list[bytes] = []
                batch: list[Received] = []
                txns: list[int] = []
                now = time.time()
                for f in frames:
                    if f.command == "syslog":
                        if not opened:
                            raise RelpError("syslog before open")
                        batch.append(Received(f.data, peer, kind, now, name))
                        txns.append(f.txnr)
                        if len(batch) >= BATCH:
                            replies += await self._deliver(batch, txns)
                            batch, txns = [], []
                        continue
                    if batch:  # answers go out in the order the commands came
                        replies += await self._deliver(batch, txns)
                        batch, txns = [], []
                    if f.command == "open":
                        reply = _open_reply(f.data)
                        replies.append(response(f.txnr, reply))
                        opened = reply.startswith("200")
                    elif f.command == "close":
                        replies.append(response(f.txnr, ""))
                        writer.write(b"".join(replies))
                        await writer.drain()
                        return
                    else:  # RELP says: an unknown command is answered with an error, the session goes on
                        replies.append(response(f.txnr, "500 unknown command"))
                if batch:
                    replies += await self._deliver(batch, txns)
                if replies:
                    writer.write(b"".join(replies))
                    await writer.drain()
        except RelpError as exc:
            self.counters["framing_errors"] += 1
            log.info("RELP session from %s ended: %s", peer, exc)
        except (TimeoutError, ConnectionError, ssl.SSLError, OSError):
            pass
        finally:
            self._sessions.discard(writer)
            self.counters["connections_open"] -= 1
            self.slots.give(host)
            writer.close()

    async def _deliver(self, batch: list[Received], txns: list[int]) -> list[bytes]:
        """Hand the messages on; answer 200 only once the consumer returned (durable)."""
        try:
            await self.consumer(batch)
        except Exception as exc:  # noqa: BLE001 - the sender keeps the messages and tries again
            self.counters["consumer_errors"] += 1
            log.warning("RELP: %d message(s) not stored (%s); the sender will send them again", len(batch), exc)
            raise ConnectionError("consumer failed") from exc
        self.counters["messages"] += len(batch)
        self.counters["acknowledged"] += len(batch)
        return [response(t) for t in txns]


def _open_reply(offers: bytes) -> str:
    """Accept the session with the one command we serve; refuse a client that cannot speak syslog."""
    wanted = {}
    for line in offers.decode("utf-8", "replace").splitlines():
        key, _, value = line.partition("=")
        wanted[key.strip()] = value.strip()
    commands = {c.strip() for c in wanted.get("commands", "syslog").split(",")}
    if "syslog" not in commands:
        return "500 no common command (this server offers syslog)"
    return f"200 OK\nrelp_version=0\nrelp_software={SOFTWARE}\ncommands=syslog"


def _client_name(writer: asyncio.StreamWriter) -> str | None:
    """RELP over TLS with client certificates: the verified subject's CN, as the TLS listener does."""
    return peer_common_name(writer.get_extra_info("peercert"))
