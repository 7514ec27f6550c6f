"""Forward URLs -> sink objects: where alerts go, one string per destination (config file or `--forward`).

    cef+udp://siem.example.com:514             CEF in RFC 5424 syslog, one datagram per alert
    cef+tcp://siem.example.com:514             the same, octet-counted over TCP (RFC 6587)
    cef+tls://siem.example.com:6514?ca=/etc/dcsentry/siem-ca.pem&cert=/etc/dcsentry/me.pem&key=/etc/dcsentry/me.key
    cef+udp://siem:514?format=rfc3164          the older syslog header
    cef+file:///var/log/dcsentry/alerts.cef    bare CEF lines (`?format=rfc5424` to keep the syslog header)
    jsonl:///var/log/dcsentry/alerts.jsonl     JSON lines of Alert.to_dict(), appended, flushed per alert
    ocsf:///var/log/dcsentry/alerts.ocsf.jsonl OCSF 1.8.0 events, one per line, rotated at 100 MiB (`rotate=`, `keep=`)
    ecs:///var/log/dcsentry/alerts.ecs.jsonl   ECS 9.4 documents, the same way
    ocsf+tcp://collector:5170                  OCSF JSON lines over TCP (newline-delimited); ecs+tcp:// likewise
    ocsf+tls://collector:6514?ca=/etc/dcsentry/ca.pem   the same over TLS (ca, cert, key, verify, servername)
    webhook+https://soar.example.com/hooks/dcsentry?format=ocsf   signed JSON POSTs (sinks/webhook.py)
    webhook+http://127.0.0.1:9000/hook         plain HTTP: loopback only

The split follows the data: a format (cef.py, ocsf.py, ecs.py, or Alert.to_dict) turns an alert into
bytes, a transport (syslog.py's udp/tcp/tls/file, webhook.py) carries them.

Default ports: 514 for udp and tcp (the ATA default), 6514 for tls (RFC 5425), 443/80 for webhooks.
Unknown query options are an error, so a typo (`?cafile=`) cannot silently turn off what the user asked for.
Every sink has the same small interface (`Sink`): `send(alert)`, `flush()`, `close()`, `stats`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable
from urllib.parse import parse_qsl, unquote, urlsplit

import msgspec

from ..alerts import Alert
from ..incidents.model import Incident
from .cef import DEFAULT_CONSOLE_URL, CefFormatter, signature_of
from .ecs import EcsFormatter
from .file import FileTransport
from .ocsf import OcsfFormatter
from .ocsf_incident import incident_finding
from .syslog import SyslogEnvelope, TcpTransport, TlsTransport, Transport, TransportStats, UdpTransport
from .webhook import SECRET_ENV, WebhookTransport, is_loopback

DEFAULT_PORTS = {"udp": 514, "tcp": 514, "tls": 6514, "https": 443, "http": 80}
DEFAULT_ROTATE = 100 * 1024 * 1024  # ocsf:/// and ecs:/// files (cef+file and jsonl rotate only when asked)
FILE_SCHEMES = ("cef+file", "jsonl", "ocsf", "ecs")
WEBHOOK_SCHEMES = ("webhook+https", "webhook+http")
JSON_FORMATS = ("dcsentry", "ocsf", "ecs")
_COMMON = {"queue", "timeout"}
_NET = _COMMON | {"format", "hostname", "app"}
_TLS = {"ca", "cert", "key", "verify", "servername"}
_FILE = _COMMON | {"rotate", "keep"}
_HOOK = _COMMON | {"format", "ca", "verify", "backoff", "backoff_max"}
OPTIONS: dict[str, set[str]] = {
    "cef+udp": _NET,
    "cef+tcp": _NET,
    "cef+tls": _NET | _TLS,
    "cef+file": _FILE | {"format", "hostname", "app"},
    "jsonl": _FILE,
    "ocsf": _FILE, "ecs": _FILE,
    "ocsf+tcp": _COMMON, "ecs+tcp": _COMMON,
    "ocsf+tls": _COMMON | _TLS, "ecs+tls": _COMMON | _TLS,
    "webhook+https": _HOOK, "webhook+http": _HOOK - {"ca", "verify"},
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


class JsonSink(_TransportSink):
    """One JSON object per alert (`shape`: Alert.to_dict, OCSF or ECS), handed to a transport. For a
    webhook the message starts with its idempotency key line (``<alert id>:<revision>``)."""

    def __init__(self, transport: Transport, shape: Callable[[Alert], dict] = Alert.to_dict,
                 keyed: bool = False, incident_shape: Callable[[Incident], dict] | None = None) -> None:
        self.transport = transport
        self.shape = shape
        self.keyed = keyed
        self.incident_shape = incident_shape  # OCSF: incidents go out too, as Incident Findings
        self._enc = msgspec.json.Encoder()

    def send_incident(self, inc: Incident) -> None:
        if self.incident_shape is None:
            return
        body = self._enc.encode(self.incident_shape(inc))
        if self.keyed:
            body = f"{inc.id}:{inc.revision}\n".encode() + body
        self.transport.send(body)

    def send(self, alert: Alert) -> None:
        body = self._enc.encode(self.shape(alert))
        if self.keyed:
            body = f"{alert.id}:{alert.revision}\n".encode() + body
        self.transport.send(body)

    def flush(self, force: bool = False) -> bool:
        """A webhook keeps its backoff even when the forwarder forces a flush: an HTTP endpoint that
        answers 503 or 429 asks to be left alone for a while, unlike a syslog receiver."""
        return self.transport.flush(force and not self.keyed)


class JsonlSink(JsonSink):
    """One JSON object per line (`Alert.to_dict()`, the `hunt --jsonl` shape), appended and flushed per alert."""

    def __init__(self, path: str, **transport_options: Any) -> None:
        super().__init__(FileTransport(path, **transport_options))


def incident_shape(fmt: str, console_url: str = DEFAULT_CONSOLE_URL) -> Callable[[Incident], dict] | None:
    """Incidents are sent where the format has a class for them: OCSF's Incident Finding (2005)."""
    if fmt == "ocsf":
        return lambda inc: incident_finding(inc, console_url)
    return None


def json_shape(fmt: str, console_url: str = DEFAULT_CONSOLE_URL) -> Callable[[Alert], dict]:
    """Alert -> dict for a JSON format name: dcsentry (Alert.to_dict), ocsf or ecs."""
    if fmt == "ocsf":
        return OcsfFormatter(console_url).format
    if fmt == "ecs":
        return EcsFormatter(console_url).format
    if fmt == "dcsentry":
        return Alert.to_dict
    raise ValueError(f"JSON format must be one of {', '.join(JSON_FORMATS)}, not {fmt!r}")


def _bad(url: str, why: str) -> ValueError:
    return ValueError(f"bad forward URL {url!r}: {why} "
                      "(expected cef+udp://host:port, cef+tcp://host:port, cef+tls://host:port, "
                      "cef+file:///path, jsonl:///path, ocsf:///path, ecs:///path, ocsf+tcp://, ocsf+tls://, "
                      "ecs+tcp://, ecs+tls://host:port or webhook+https://host/path)")


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
    if scheme in FILE_SCHEMES:
        if parts.netloc not in ("", "localhost"):
            raise _bad(url, f"a file URL needs an absolute path and three slashes ({scheme}:///path), "
                            f"not host {parts.netloc!r}")
        path = unquote(parts.path)
        if os.name == "nt" and re.match(r"^/[A-Za-z]:", path):
            path = path[1:]
        if not path or path.endswith("/"):
            raise _bad(url, "no file name")
        return ForwardTarget(url, scheme, path=path, options=options)
    if parts.path not in ("", "/") and scheme not in WEBHOOK_SCHEMES:
        raise _bad(url, f"a network URL has no path (got {parts.path!r})")
    if parts.username or parts.password:
        raise _bad(url, "credentials do not belong in a forward URL (a webhook's secret: [serve] webhook_secret "
                        f"or {SECRET_ENV})")
    host = parts.hostname
    if not host:
        raise _bad(url, "no host")
    try:
        port = parts.port
    except ValueError as e:
        raise _bad(url, f"bad port: {e}") from None
    if scheme == "webhook+http" and not is_loopback(host):
        raise _bad(url, "webhook+http:// is for a loopback address only (127.0.0.1, ::1, localhost); "
                        "use webhook+https://")
    return ForwardTarget(url, scheme, host=host, port=port or DEFAULT_PORTS[scheme.split("+")[1]],
                         path=(parts.path or "/") if scheme in WEBHOOK_SCHEMES else None, options=options)


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
        for name in ("backoff", "backoff_max"):
            if name in t.options:
                out[name] = float(t.options[name])
                if not out[name] > 0:
                    raise ValueError
    except ValueError:
        raise _bad(t.url, "queue must be a positive integer; timeout, backoff and backoff_max positive numbers "
                          "of seconds") from None
    if t.scheme in FILE_SCHEMES:
        out["rotate_bytes"] = _size(t, t.options.get("rotate"), DEFAULT_ROTATE if t.scheme in ("ocsf", "ecs") else 0)
        try:
            out["keep"] = int(t.options.get("keep", "5"))
            if out["keep"] < 1:
                raise ValueError
        except ValueError:
            raise _bad(t.url, "keep must be a positive integer (rotated files kept)") from None
    return out


_UNITS = {"": 1, "k": 1024, "m": 1024 ** 2, "g": 1024 ** 3}


def _size(t: ForwardTarget, raw: str | None, default: int) -> int:
    """``rotate=`` as bytes: 500000, 64k, 100M, 1G; 0 turns rotation off."""
    if raw is None:
        return default
    m = re.fullmatch(r"(\d+)\s*([kKmMgG]?)i?[bB]?", raw.strip())
    if not m:
        raise _bad(t.url, f"rotate={raw!r} must be a size like 100M (0: no rotation)")
    return int(m.group(1)) * _UNITS[m.group(2).lower()]


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
              webhook_secret: str | None = None, **transport_options: Any) -> CefSink | JsonSink:
    """Build the sink a forward URL names. Nothing is connected yet: the first `send` does that.

    `console_url` is the base of the alert links in CEF cs1; `hostname` the syslog HOSTNAME (default: this
    machine's name); `transport_options` (queue_size, backoff, backoff_max, timeout) override defaults and
    are overridden by the URL's own `queue`/`timeout`. `webhook_secret` signs webhooks (default: the
    DCSENTRY_WEBHOOK_SECRET environment variable).
    """
    t = parse_forward_url(url)
    opts = {**transport_options, **_transport_options(t)}
    if t.scheme == "jsonl":
        assert t.path is not None
        return JsonlSink(t.path, **opts)
    if t.scheme in ("ocsf", "ecs"):
        assert t.path is not None
        return JsonSink(FileTransport(t.path, **opts), json_shape(t.scheme, console_url),
                        incident_shape=incident_shape(t.scheme, console_url))
    if t.scheme in WEBHOOK_SCHEMES:
        return _webhook(t, console_url, webhook_secret, opts)
    if t.scheme in ("ocsf+tcp", "ecs+tcp", "ocsf+tls", "ecs+tls"):
        fmt, kind = t.scheme.split("+")
        assert t.host is not None and t.port is not None
        net: Transport = (TcpTransport(t.host, t.port, framing="lf", **opts) if kind == "tcp"
                          else _tls(t, framing="lf", **opts))
        return JsonSink(net, json_shape(fmt, console_url), incident_shape=incident_shape(fmt, console_url))
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
        transport = _tls(t, **opts)
    return CefSink(transport, formatter, envelope)


def _tls(t: ForwardTarget, **opts: Any) -> TlsTransport:
    if "key" in t.options and "cert" not in t.options:
        raise _bad(t.url, "key= needs cert=")
    verify = _flag(t, "verify", True)
    assert t.host is not None and t.port is not None
    try:
        return TlsTransport(t.host, t.port, ca=t.options.get("ca") or None, cert=t.options.get("cert") or None,
                            key=t.options.get("key") or None, verify=verify,
                            server_name=t.options.get("servername") or None, **opts)
    except (OSError, ValueError) as e:  # unreadable CA / cert / key: a configuration error, say so now
        raise _bad(t.url, f"TLS setup failed: {e}") from None


def _webhook(t: ForwardTarget, console_url: str, secret: str | None, opts: dict[str, Any]) -> JsonSink:
    fmt = t.options.get("format", "dcsentry").lower()
    if fmt not in JSON_FORMATS:
        raise _bad(t.url, f"format must be one of {', '.join(JSON_FORMATS)}, not {fmt!r}")
    secret = secret or os.environ.get(SECRET_ENV, "")
    if not secret:
        raise _bad(t.url, f"a webhook needs a secret to sign with: [serve] webhook_secret or {SECRET_ENV}")
    assert t.host is not None and t.port is not None and t.path is not None
    try:
        hook = WebhookTransport(t.host, t.port, t.path, secret.encode(), tls=t.scheme == "webhook+https",
                                ca=t.options.get("ca") or None, verify_tls=_flag(t, "verify", True), **opts)
    except (OSError, ValueError) as e:
        raise _bad(t.url, f"webhook setup failed: {e}") from None
    return JsonSink(hook, json_shape(fmt, console_url), keyed=True, incident_shape=incident_shape(fmt, console_url))
