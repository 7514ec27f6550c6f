"""Start the WEF listeners of `[wef]` inside the service's event loop.

HTTPS listeners verify client certificates against `client_ca` (OpenSSL checks chain and expiry;
the subscriptions name those CAs by thumbprint, as Windows requires). HTTP listeners need a keytab:
without Kerberos there would be nobody to trust, so that is a configuration error, not a fallback.
"""

from __future__ import annotations

import ssl
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ...config import Wef, host_port
from ..syslog.tls import server_context
from .collector import BookmarkOf, Collector, Sink
from .server import WefServer
from .subscriptions import thumbprint


def tls_context(cfg: Wef) -> ssl.SSLContext:
    if not cfg.cert:
        raise ValueError("[wef] https listeners need cert (and key): the collector's server certificate")
    if not cfg.client_ca:
        raise ValueError("[wef] https listeners need client_ca: the CA(s) that issued the DCs' client certificates")
    ctx = server_context(cfg.cert, cfg.key or None, client_ca=cfg.client_ca[0])
    for extra in cfg.client_ca[1:]:
        ctx.load_verify_locations(cafile=extra)
    return ctx


def kerberos_acceptor(cfg: Wef) -> tuple[Any, type[Exception]]:
    if not cfg.keytab:
        raise ValueError("[wef] http listeners need keytab: the collector's HTTP/ and HOST/ service keys")
    from .kerberos import AuthError, KerberosAcceptor

    return KerberosAcceptor(cfg.keytab), AuthError


def _address(text: str) -> tuple[str, int]:
    """config.host_port, a bare :PORT on every interface (the DCs are remote)."""
    try:
        return host_port(text, "0.0.0.0")
    except ValueError as exc:
        raise ValueError(f"[wef]: {exc}") from None


@dataclass
class WefIntake:
    """Every WEF listener of the service, sharing one collector (and its counters)."""

    cfg: Wef
    sink: Sink
    bookmark_of: BookmarkOf
    collector: Collector = field(init=False)
    servers: list[WefServer] = field(default_factory=list)

    def __post_init__(self) -> None:
        """Settings are checked here, before the service starts anything: a bad certificate path or
        a missing keytab stops `serve` with its reason."""
        prints = [thumbprint(p) for p in self.cfg.client_ca] if self.cfg.https else []
        self.collector = Collector(self.cfg, self.sink, self.bookmark_of, thumbprints=prints)
        self._tls = tls_context(self.cfg) if self.cfg.https else None
        self._kerberos = kerberos_acceptor(self.cfg) if self.cfg.http else None

    async def start(self, announce: Callable[[str], None]) -> list[tuple[str, str, int]]:
        """Bind every listener; returns (kind, host, port) per listener ("wef-https" / "wef-http")."""
        bound: list[tuple[str, str, int]] = []
        max_request = self.cfg.max_request_bytes
        if self._tls is not None:
            srv = WefServer(self.collector, tls_context=self._tls, max_request=max_request)
            self.servers.append(srv)
            for addr in self.cfg.https:
                host, port = _address(addr)
                bound.append(("wef-https", host, await srv.start(host, port)))
        if self._kerberos is not None:
            acceptor, auth_error = self._kerberos
            srv = WefServer(self.collector, acceptor=acceptor, auth_error=auth_error, max_request=max_request)
            self.servers.append(srv)
            for addr in self.cfg.http:
                host, port = _address(addr)
                bound.append(("wef-http", host, await srv.start(host, port)))
        for kind, host, port in bound:
            announce(f"{kind} listening on {host}:{port}")
        return bound

    async def stop(self) -> None:
        for srv in self.servers:
            await srv.stop()

    def counters(self) -> dict[str, int]:
        out = dict(self.collector.counters)
        out["connections_open"] = sum(s.open_connections for s in self.servers)
        if self._kerberos is not None:  # the acceptor's own reasons for refusing (bad token, wrong key, ...)
            for k, v in getattr(self._kerberos[0], "counters", {}).items():
                out[f"kerberos_{k}"] = int(v)
        return out
