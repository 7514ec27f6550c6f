"""Forward URLs -> sink objects: where alerts go, one string per destination (config file or `--forward`).

    cef+udp://siem.example.com:514             CEF in RFC 5424 syslog, one datagram per alert
    cef+tcp://siem.example.com:514             the same, octet-counted over TCP (RFC 6587)
    cef+tls://siem.example.com:6514?ca=/etc/dcsentry/siem-ca.pem&cert=/etc/dcsentry/me.pem&key=/etc/dcsentry/me.key
    cef+udp://siem:514?format=rfc3164          the older syslog header
    cef+file:///var/log/dcsentry/alerts.cef    bare CEF lines (`?format=rfc5424` to keep the syslog header)
    jsonl:///var/log/dcsentry/alerts.jsonl     JSON lines of Alert.to_dict(), appended, flushed per alert

Default ports: 514 for udp and tcp (the ATA default), 6514 for tls (RFC 5425). Unknown query options
are an error, so a typo (`?cafile=`) cannot silently turn off what the user asked for.
Every sink has the same small interface (`Sink`): `send(alert)`, `flush()`, `close()`, `stats`.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable
from urllib.parse import parse_qsl, unquote, urlsplit

import msgspec

from ..alerts import Alert
from .cef import DEFAULT_CONSOLE_URL, CefFormatter, signature_of
from .syslog import FileTransport, SyslogEnvelope, TcpTransport, TlsTransport, Transport, TransportStats, UdpTransport

DEFAULT_PORTS = {"udp": 514, "tcp": 514, "tls": 6514}
_COMMON = {"queue", "timeout"}
_NET = _COMMON | {"format", "hostname", "app"}
OPTIONS: dict[str, set[str]] = {
    "cef+udp": _NET,
    "cef+tcp": _NET,
    "cef+tls": _NET | {"ca", "cert", "key", "verify", "servername"},
    "cef+file": _COMMON | {"format", "hostname", "app"},
    "jsonl": _COMMON,
}
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


@runtime_checkable
class Sink(Protocol):
    """What the alert pipeline talks to. `send` never raises for an unreachable destination."""

    def send(self, alert: Alert) -> None: ...

    def flush(self, force: bool = False) -> bool: ...

    def close(self) -> None: ...

    @property
    def stats(self) -> TransportStats: ...


@dataclass(frozen=True)
class ForwardTarget:
    """A parsed forward URL: scheme (``cef+tcp``...), host/port for network sinks, path for files."""

    url: str
    scheme: str
    host: str | None = None
    port: int | None = None
    path: str | None = None
    options: dict[str, str] = field(default_factory=dict)


class _TransportSink:
    """What every sink does the same way: its transport does the flushing, closing and counting."""

    transport: Transport

    def flush(self, force: bool = False) -> bool:
        return self.transport.flush(force)

    def close(self) -> None:
        self.transport.close()

    @property
    def stats(self) -> TransportStats:
        return self.transport.stats


class CefSink(_TransportSink):
    """CEF lines, optionally in a syslog envelope, handed to a transport."""

    def __init__(self, transport: Transport, formatter: CefFormatter | None = None,
                 envelope: SyslogEnvelope | None = None) -> None:
        self.transport = transport
        self.formatter = formatter or CefFormatter()
        self.envelope = envelope

    def encode(self, alert: Alert) -> bytes:
        """The bytes one alert becomes (before transport framing)."""
        line = self.formatter.format(alert)
        if self.envelope is None:
            return line.encode("utf-8")
        return self.envelope.wrap(line, alert.severity, signature_of(alert))

    def send(self, alert: Alert) -> None:
        self.transport.send(self.encode(alert))


class JsonlSink(_TransportSink):
    """One JSON object per line (`Alert.to_dict()`, the `hunt --jsonl` shape), appended and flushed per alert."""

    def __init__(self, path: str, **transport_options: Any) -> None:
        self.transport = FileTransport(path, **transport_options)
        self._enc = msgspec.json.Encoder()

    def send(self, alert: Alert) -> None:
        self.transport.send(self._enc.encode(alert.to_dict()))


def _bad(url: str, why: str) -> ValueError:
    return ValueError(f"bad forward URL {url!r}: {why} "
                      "(expected cef+udp://host:port, cef+tcp://host:port, cef+tls://host:port, "
                      "cef+file:///path or jsonl:///path)")


def parse_forward_url(url: str) -> ForwardTarget:
    """Check and take apart a forward URL; ValueError says what is wrong with it."""
    try:
        parts = urlsplit(url.strip())
    except ValueError as e:
        raise _bad(url, str(e)) from None
    scheme = parts.scheme.lower()
    if scheme not in OPTIONS:
        raise _bad(url, f"unknown scheme {parts.scheme!r}" if scheme else "no scheme")
    if parts.fragment:
        raise _bad(url, "a '#fragment' is not allowed")
    options: dict[str, str] = {}
    for k, v in parse_qsl(parts.query, keep_blank_values=True):
        if k not in OPTIONS[scheme]:
            raise _bad(url, f"unknown option {k!r} for {scheme} (allowed: {', '.join(sorted(OPTIONS[scheme]))})")
        if k in options:
            raise _bad(url, f"option {k!r} given twice")
        options[k] = v
    if scheme in ("cef+file", "jsonl"):
        if parts.netloc not in ("", "localhost"):
            raise _bad(url, f"a file URL needs an absolute path and three slashes ({scheme}:///path), "
                            f"not host {parts.netloc!r}")
        path = unquote(parts.path)
        if os.name == "nt" and re.match(r"^/[A-Za-z]:", path):
            path = path[1:]
        if not path or path.endswith("/"):
            raise _bad(url, "no file name")
        return ForwardTarget(url, scheme, path=path, options=options)
    if parts.path not in ("", "/"):
        raise _bad(url, f"a network URL has no path (got {parts.path!r})")
    host = parts.hostname
    if not host:
        raise _bad(url, "no host")
    try:
        port = parts.port
    except ValueError as e:
        raise _bad(url, f"bad port: {e}") from None
    return ForwardTarget(url, scheme, host=host, port=port or DEFAULT_PORTS[scheme.split("+")[1]],
                         options=options)


def _flag(t: ForwardTarget, name: str, default: bool) -> bool:
    raw = t.options.get(name)
    if raw is None:
        return default
    if raw.lower() in _TRUE:
        return True
    if raw.lower() in _FALSE:
        return False
    raise _bad(t.url, f"option {name}={raw!r} must be true or false")


def _transport_options(t: ForwardTarget) -> dict[str, Any]:
    out: dict[str, Any] = {}
    try:
        if "queue" in t.options:
            out["queue_size"] = int(t.options["queue"])
            if out["queue_size"] < 1:
                raise ValueError
        if "timeout" in t.options:
            out["timeout"] = float(t.options["timeout"])
            if not out["timeout"] > 0:
                raise ValueError
    except ValueError:
        raise _bad(t.url, "queue must be a positive integer and timeout a positive number of seconds") from None
    return out


def _envelope(t: ForwardTarget, default: str, hostname: str | None) -> SyslogEnvelope | None:
    fmt = t.options.get("format", default).lower()
    allowed = ("rfc5424", "rfc3164", "cef") if t.scheme == "cef+file" else ("rfc5424", "rfc3164")
    if fmt not in allowed:
        raise _bad(t.url, f"format must be one of {', '.join(allowed)}, not {fmt!r}")
    if fmt == "cef":
        return None
    return SyslogEnvelope(fmt, hostname=t.options.get("hostname") or hostname,
                          app_name=t.options.get("app") or "CEF")


def open_sink(url: str, console_url: str = DEFAULT_CONSOLE_URL, hostname: str | None = None,
              **transport_options: Any) -> CefSink | JsonlSink:
    """Build the sink a forward URL names. Nothing is connected yet: the first `send` does that.

    `console_url` is the base of the alert links in CEF cs1; `hostname` the syslog HOSTNAME (default: this
    machine's name); `transport_options` (queue_size, backoff, backoff_max, timeout) override defaults and
    are overridden by the URL's own `queue`/`timeout`.
    """
    t = parse_forward_url(url)
    opts = {**transport_options, **_transport_options(t)}
    if t.scheme == "jsonl":
        assert t.path is not None
        return JsonlSink(t.path, **opts)
    formatter = CefFormatter(console_url)
    if t.scheme == "cef+file":
        assert t.path is not None
        return CefSink(FileTransport(t.path, **opts), formatter, _envelope(t, "cef", hostname))
    envelope = _envelope(t, "rfc5424", hostname)
    assert t.host is not None and t.port is not None
    transport: Transport
    if t.scheme == "cef+udp":
        transport = UdpTransport(t.host, t.port, **opts)
    elif t.scheme == "cef+tcp":
        transport = TcpTransport(t.host, t.port, **opts)
    else:
        if "key" in t.options and "cert" not in t.options:
            raise _bad(url, "key= needs cert=")
        verify = _flag(t, "verify", True)
        try:
            transport = TlsTransport(t.host, t.port, ca=t.options.get("ca") or None,
                                     cert=t.options.get("cert") or None, key=t.options.get("key") or None,
                                     verify=verify,
                                     server_name=t.options.get("servername") or None, **opts)
        except (OSError, ValueError) as e:  # unreadable CA / cert / key: a configuration error, say so now
            raise _bad(url, f"TLS setup failed: {e}") from None
    return CefSink(transport, formatter, envelope)
