"""The subscriptions dcsentry hands to each forwarding client, and the GPO string that points the
clients at it (wef-protocol.md §1, §3).

Each subscription has a stable id (from its name: it is in the delivery URL the client keeps) and
a version (from everything the client runs: a changed query, format or interval gives a new
version, and Windows restarts the subscription at its next enumeration).
"""

from __future__ import annotations

import hashlib
import ssl
import uuid
from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import escape, quoteattr

from ...config import Wef, WefSubscription
from .soap import ANONYMOUS, SUBSCRIBE, A, E, N, P, S, W, new_id

_NS = uuid.UUID("5d0e7f5c-3c1e-4a64-9d59-6a1a3f1f2b7e")  # dcsentry's namespace for name-based UUIDs
EVENTLOG_URI = "http://schemas.microsoft.com/wbem/wsman/1/windows/EventLog"
EVENTS_MODE = "http://schemas.dmtf.org/wbem/wsman/1/wsman/Events"
EARLIEST = "http://schemas.dmtf.org/wbem/wsman/1/wsman/bookmark/earliest"
QUERY_DIALECT = "http://schemas.microsoft.com/win/2004/08/events/eventquery"
KERBEROS_PROFILE = "http://schemas.dmtf.org/wbem/wsman/1/wsman/secprofile/http/spnego-kerberos"
MUTUAL_PROFILE = "http://schemas.dmtf.org/wbem/wsman/1/wsman/secprofile/https/mutual"
MANAGER_PATH = "/wsman/SubscriptionManager/WEC"
DELIVERY_PREFIX = "/wsman/subscriptions/"


def duration(seconds: float) -> str:
    """xs:duration the way Windows writes it: PT30.000S."""
    return f"PT{seconds:.3f}S"


def thumbprint(ca_pem: str | Path) -> str:
    """SHA-1 of the first certificate's DER, upper-case hex: what certlm.msc shows as Thumbprint."""
    text = Path(ca_pem).read_text(encoding="ascii", errors="replace")
    start = text.find("-----BEGIN CERTIFICATE-----")
    end = text.find("-----END CERTIFICATE-----", start)
    if start < 0 or end < 0:
        raise ValueError(f"{ca_pem}: no PEM certificate found")
    der = ssl.PEM_cert_to_DER_cert(text[start:end + len("-----END CERTIFICATE-----")] + "\n")
    return hashlib.sha1(der).hexdigest().upper()


def query_list(select: dict[str, str | list[str]]) -> str:
    """`<QueryList>` with one Select per XPath (a channel may have several), as Event Viewer writes a custom view."""
    rows = "".join(f"<Select Path={quoteattr(channel)}>{escape(xpath)}</Select>" for channel, xpaths in select.items()
                   for xpath in ([xpaths] if isinstance(xpaths, str) else xpaths))
    return f'<QueryList><Query Id="0">{rows}</Query></QueryList>'


@dataclass(frozen=True)
class Subscription:
    """One configured subscription as the protocol needs it."""

    conf: WefSubscription
    id: str  # upper-case GUID, stable per name: the delivery URL carries it
    version: str  # upper-case GUID, changes with anything the client runs

    @property
    def name(self) -> str:
        return self.conf.name

    @property
    def channels(self) -> list[str]:
        return list(self.conf.select)


def build(cfg: Wef) -> list[Subscription]:
    out = []
    for sub in cfg.subscriptions:
        sid = str(uuid.uuid5(_NS, "subscription:" + sub.name)).upper()
        run = repr((sub.name, sorted(sub.select.items()), sub.content_format, sub.read_existing, cfg.heartbeat_interval,
                    cfg.max_time, cfg.max_envelope_size, cfg.compression))
        out.append(Subscription(sub, sid, str(uuid.uuid5(_NS, run)).upper()))
    return out


def _policy(thumbprints: list[str], kerberos: bool) -> str:
    auth = 'xmlns:c="http://schemas.xmlsoap.org/ws/2002/12/policy" ' \
           'xmlns:auth="http://schemas.microsoft.com/wbem/wsman/1/authentication"'
    if kerberos:
        alts = f'<c:All><auth:Authentication Profile="{KERBEROS_PROFILE}"></auth:Authentication></c:All>'
    else:
        alts = "".join(f'<c:All><auth:Authentication Profile="{MUTUAL_PROFILE}"><auth:ClientCertificate>'
                       f'<auth:Thumbprint Role="issuer">{t}</auth:Thumbprint></auth:ClientCertificate>'
                       f"</auth:Authentication></c:All>" for t in thumbprints)
    return f"<c:Policy {auth}><c:ExactlyOne>{alts}</c:ExactlyOne></c:Policy>"


def subscribe_envelope(sub: Subscription, cfg: Wef, base_url: str, bookmark: str | None, *,
                       kerberos: bool, thumbprints: list[str]) -> str:
    """The Subscribe message inside an EnumerateResponse item (shape of Windows' own, see
    wef-samples/openwec-enumerate-response.xml). `base_url` is scheme://host:port as the client
    reached us; `bookmark` the stored <BookmarkList> (sent back verbatim) or None."""
    address = escape(f"{base_url}{DELIVERY_PREFIX}{sub.id}/1")
    ref = f"<a:ReferenceProperties><e:Identifier>{sub.version}</e:Identifier></a:ReferenceProperties>"
    options = [f'<w:Option Name="SubscriptionName">{escape(sub.name)}</w:Option>']
    if cfg.compression:
        options.append('<w:Option Name="Compression">SLDC</w:Option>')
    options += ['<w:Option Name="CDATA" xsi:nil="true"/>',
                f'<w:Option Name="ContentFormat">{escape(sub.conf.content_format)}</w:Option>',
                '<w:Option Name="IgnoreChannelError" xsi:nil="true"/>']
    if sub.conf.read_existing:
        options.append('<w:Option Name="ReadExistingEvents" xsi:nil="true"/>')
    locale = '<w:Locale xml:lang="en-US" s:mustUnderstand="false"/><p:DataLocale xml:lang="en-US" ' \
             's:mustUnderstand="false"/>'
    if bookmark:
        mark = f"<w:Bookmark>{bookmark}</w:Bookmark>"
    elif sub.conf.read_existing:
        mark = f"<w:Bookmark>{EARLIEST}</w:Bookmark>"
    else:
        mark = ""
    return (
        f'<s:Envelope xmlns:s="{S}" xmlns:a="{A}" xmlns:e="{E}" xmlns:n="{N}" xmlns:w="{W}" xmlns:p="{P}">'
        f"<s:Header><a:To>{ANONYMOUS}</a:To>"
        f'<w:ResourceURI s:mustUnderstand="true">{EVENTLOG_URI}</w:ResourceURI>'
        f'<a:ReplyTo><a:Address s:mustUnderstand="true">{ANONYMOUS}</a:Address></a:ReplyTo>'
        f'<a:Action s:mustUnderstand="true">{SUBSCRIBE}</a:Action>'
        f'<w:MaxEnvelopeSize s:mustUnderstand="true">{cfg.max_envelope_size}</w:MaxEnvelopeSize>'
        f"<a:MessageID>{new_id()}</a:MessageID>{locale}"
        f'<p:OperationID s:mustUnderstand="false">{new_id()}</p:OperationID>'
        f'<p:SequenceId s:mustUnderstand="false">1</p:SequenceId>'
        f'<w:OptionSet xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">{"".join(options)}</w:OptionSet>'
        f"</s:Header><s:Body><e:Subscribe>"
        f"<e:EndTo><a:Address>{address}</a:Address>{ref}</e:EndTo>"
        f'<e:Delivery Mode="{EVENTS_MODE}"><w:Heartbeats>{duration(cfg.heartbeat_interval)}</w:Heartbeats>'
        f"<e:NotifyTo><a:Address>{address}</a:Address>{ref}{_policy(thumbprints, kerberos)}</e:NotifyTo>"
        f'<w:ConnectionRetry Total="5">PT60.0S</w:ConnectionRetry><w:MaxTime>{duration(cfg.max_time)}</w:MaxTime>'
        f'<w:MaxEnvelopeSize Policy="Notify">{cfg.max_envelope_size}</w:MaxEnvelopeSize>{locale}'
        f"<w:ContentEncoding>UTF-16</w:ContentEncoding></e:Delivery>"
        f'<w:Filter Dialect="{QUERY_DIALECT}">{query_list(sub.conf.select)}</w:Filter>'
        f"{mark}<w:SendBookmarks/></e:Subscribe></s:Body></s:Envelope>")


def gpo_string(host: str, port: int, *, refresh: int, issuer_ca: str | None = None) -> str:
    """The value for "Configure target Subscription Manager": HTTPS with the client certificates'
    issuer CA thumbprint, or HTTP (Kerberos) without one."""
    if issuer_ca:
        return f"Server=HTTPS://{host}:{port}{MANAGER_PATH},Refresh={refresh},IssuerCA={issuer_ca}"
    return f"Server=http://{host}:{port}{MANAGER_PATH},Refresh={refresh}"
