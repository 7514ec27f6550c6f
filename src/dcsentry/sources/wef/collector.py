"""The Windows Event Collector's conversation, independent of HTTP and of how the client
authenticated: Enumerate -> EnumerateResponse (our subscriptions, with the stored bookmarks),
End -> 204, Events -> spool then Ack, Heartbeat -> Ack, SubscriptionEnd -> noted, Ack.

Ordering is the guarantee (wef-protocol.md §4): a batch's events and its bookmark go to the spool
in one durable transaction, and only then is the Ack sent. A failure there answers 503 without an
Ack, so the client re-sends from its last acknowledged bookmark and nothing is lost; what it
re-sends twice is removed downstream by (computer, channel, record id).
"""

from __future__ import annotations

import asyncio
import re
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from ...config import Wef
from ..spool import WefUpdate
from . import soap
from .sldc import decompress
from .subscriptions import DELIVERY_PREFIX, Subscription, build, subscribe_envelope

Sink = Callable[[list[tuple[float, str, str, bytes]], WefUpdate], Awaitable[None]]  # the return is not used
BookmarkOf = Callable[[str, str], Awaitable[str | None]]

# EventID 111 of Microsoft-Windows-EventForwarder: the client's "subscription started without a
# bookmark" marker (no record id, no channel). Acknowledged, never spooled as a security event.
_FORWARDER_MARK = re.compile(r"""Name\s*=\s*['"]Microsoft-Windows-EventForwarder['"]""")
_GUID = re.compile(r"[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}")
_BASE = re.compile(r"^(https?)://([^/\s]+)", re.I)


@dataclass
class Identity:
    """Who is on the other end, as authentication proved it."""

    name: str  # certificate subject CN or Kerberos principal, as presented
    kind: str  # "certificate" | "kerberos"

    @property
    def key(self) -> str:
        """The bookmark/status key: case never makes two clients."""
        return self.name.lower()


@dataclass
class Reply:
    status: int
    body: bytes = b""
    headers: list[tuple[str, str]] = field(default_factory=list)
    ctype: str | None = None  # set when the body is wrapped (Kerberos multipart/encrypted)

    @property
    def content_type(self) -> str | None:
        return self.ctype or (soap.CONTENT_TYPE if self.body else None)


@dataclass
class Request:
    path: str
    body: bytes
    content_type: str
    content_encoding: str
    peer: str  # ip:port
    scheme: str  # "https" | "http"
    host: str  # the Host header, for the delivery URLs when a:To is unusable


class Collector:
    def __init__(self, cfg: Wef, sink: Sink, bookmark_of: BookmarkOf, *, thumbprints: list[str]) -> None:
        self.cfg = cfg
        self.sink = sink
        self.bookmark_of = bookmark_of
        self.thumbprints = thumbprints
        self.subscriptions = build(cfg)
        self._by_id = {s.id: s for s in self.subscriptions}
        self._by_version = {s.version: s for s in self.subscriptions}
        self.counters: Counter[str] = Counter()

    # -- entry point ---------------------------------------------------------------------------------
    async def handle(self, req: Request, who: Identity) -> Reply:
        c = self.counters
        c["requests"] += 1
        path = req.path.split("?", 1)[0]
        low = path.lower()
        delivery = low.startswith(DELIVERY_PREFIX)
        if not delivery and not low.startswith("/wsman/subscriptionmanager/"):
            c["not_found"] += 1
            return Reply(404)
        body = await self._inflate(req)
        try:
            env = soap.parse(body, req.content_type)
        except soap.SoapError as exc:
            c[f"refused_{exc.kind}"] += 1
            return Reply(400, soap.fault(str(exc)))
        if not delivery:
            if env.action == soap.ENUMERATE:
                return await self._enumerate(req, env, who)
            if env.action == soap.END:
                c["ends"] += 1
                return Reply(204)
        else:
            if env.action == soap.END:
                c["ends"] += 1
                return Reply(204)
            sub = self._subscription(path, env.identifier)
            if sub is None:
                c["not_found"] += 1
                return Reply(404, soap.fault("unknown subscription", "w:InvalidSelectors", env))
            if env.action == soap.EVENTS:
                return await self._events(req, env, who, sub)
            if env.action == soap.HEARTBEAT:
                c["heartbeats"] += 1
                update = WefUpdate(who.key, sub.name, req.peer, env.machine_id or None, "active", heartbeat=True)
                return await self._note(req, env, who, sub, update)
            if env.action == soap.SUBSCRIPTION_END:
                c["subscription_ends"] += 1
                detail = " ".join(x for x in (env.end_status.rsplit("/", 1)[-1], env.end_reason) if x)
                update = WefUpdate(who.key, sub.name, req.peer, env.machine_id or None, "ended",
                                   detail=detail or "SubscriptionEnd")
                return await self._note(req, env, who, sub, update)
        c["refused_action"] += 1
        return Reply(400, soap.fault(f"action not supported here: {env.action[:200]}", "a:ActionNotSupported", env))

    # -- steps ---------------------------------------------------------------------------------------
    async def _inflate(self, req: Request) -> bytes:
        """SLDC when the header says so; Windows sets the header on some uncompressed bodies, so a
        body that does not decode as SLDC but is already XML text is taken as it is. Large bodies
        are decoded in a thread, so the other connections' small requests are not held up."""
        if "sldc" not in req.content_encoding.lower() or not req.body:
            return req.body
        try:
            limit = self.cfg.max_request_bytes * 4
            out = (await asyncio.to_thread(decompress, req.body, limit) if len(req.body) > 65536
                   else decompress(req.body, limit))
            self.counters["sldc_decoded"] += 1
            return out
        except ValueError:
            self.counters["sldc_not_compressed"] += 1
            return req.body

    def _subscription(self, path: str, identifier: str) -> Subscription | None:
        m = _GUID.search(path)
        if m and m.group(0).upper() in self._by_id:
            return self._by_id[m.group(0).upper()]
        return self._by_version.get(identifier.strip().removeprefix("uuid:").upper())

    def base_url(self, req: Request, env: soap.Envelope) -> str:
        """scheme://host:port as the client reached us: the delivery URLs must work from there."""
        m = _BASE.match(env.to.strip())
        if m and m.group(1).lower() == req.scheme:
            return f"{req.scheme}://{m.group(2)}"
        return f"{req.scheme}://{req.host}"

    async def _enumerate(self, req: Request, env: soap.Envelope, who: Identity) -> Reply:
        self.counters["enumerations"] += 1
        base = self.base_url(req, env)
        items = []
        for sub in self.subscriptions:
            bookmark = await self.bookmark_of(who.key, sub.name)
            items.append((sub.version, subscribe_envelope(sub, self.cfg, base, bookmark, kerberos=req.scheme == "http",
                                                          thumbprints=self.thumbprints)))
        try:
            for sub in self.subscriptions:
                await self.sink([], WefUpdate(who.key, sub.name, req.peer, env.machine_id or None, "enumerated"))
        except Exception:  # the status row is bookkeeping: the client must still get its subscriptions
            self.counters["status_write_errors"] += 1
        return Reply(200, soap.enumerate_response(env, items))

    async def _events(self, req: Request, env: soap.Envelope, who: Identity, sub: Subscription) -> Reply:
        c = self.counters
        c["deliveries"] += 1
        now = time.time()
        peer = f"{req.scheme}://{req.peer}#{who.name}"
        rows = []
        for text in env.events:
            if _FORWARDER_MARK.search(text[:600]):
                c["forwarder_markers"] += 1
                continue
            rows.append((now, peer, "wef", text.encode("utf-8", "surrogatepass")))
        c["events"] += len(rows)
        update = WefUpdate(who.key, sub.name, req.peer, env.machine_id or None, "active", bookmark=env.bookmark)
        return await self._note(req, env, who, sub, update, rows)

    async def _note(self, req: Request, env: soap.Envelope, who: Identity, sub: Subscription, update: WefUpdate,
                    rows: list | None = None) -> Reply:
        try:
            await self.sink(rows or [], update)
        except Exception as exc:  # not durable: no Ack, the client sends it again
            self.counters["spool_unavailable"] += 1
            return Reply(503, soap.fault(f"events not stored: {exc}"[:300], "w:InternalError", env, code="s:Receiver"))
        return Reply(200, soap.ack(env))
