"""WS-Management SOAP envelopes of source-initiated Windows Event Forwarding: reading the client's
requests and writing the collector's replies (../shared/reference/wef-protocol.md §2-3, 12).

Reading is namespace-aware (never by prefix) with the safe lxml settings of formats/xml.py, and a
document carrying a DTD is refused before any parser sees it: SOAP forbids DTDs, so one is only
ever an entity attack. Event payloads are carried as CDATA text; characters XML 1.0 forbids
(Windows writes some raw) are shifted out of the way for the parse and restored, as the event
reader does, so one odd value costs nothing. Replies are UTF-16LE with a BOM, as Windows sends.
"""

from __future__ import annotations

import codecs
import re
import uuid
from dataclasses import dataclass, field
from xml.sax.saxutils import escape, quoteattr

from lxml import etree

from ...formats.xml import _UNSAFE, _UNSHIFT, _shift

S = "http://www.w3.org/2003/05/soap-envelope"
A = "http://schemas.xmlsoap.org/ws/2004/08/addressing"
E = "http://schemas.xmlsoap.org/ws/2004/08/eventing"
N = "http://schemas.xmlsoap.org/ws/2004/09/enumeration"
W = "http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd"
P = "http://schemas.microsoft.com/wbem/wsman/1/wsman.xsd"
MACHINE = "http://schemas.microsoft.com/wbem/wsman/1/machineid"
FAULT_NS = "http://schemas.microsoft.com/wbem/wsman/1/wsmanfault"
ANONYMOUS = "http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous"

ENUMERATE = "http://schemas.xmlsoap.org/ws/2004/09/enumeration/Enumerate"
ENUMERATE_RESPONSE = "http://schemas.xmlsoap.org/ws/2004/09/enumeration/EnumerateResponse"
SUBSCRIBE = "http://schemas.xmlsoap.org/ws/2004/08/eventing/Subscribe"
END = "http://schemas.microsoft.com/wbem/wsman/1/wsman/End"
EVENTS = "http://schemas.dmtf.org/wbem/wsman/1/wsman/Events"
HEARTBEAT = "http://schemas.dmtf.org/wbem/wsman/1/wsman/Heartbeat"
ACK = "http://schemas.dmtf.org/wbem/wsman/1/wsman/Ack"
SUBSCRIPTION_END = "http://schemas.xmlsoap.org/ws/2004/08/eventing/SubscriptionEnd"
WSMAN_FAULT = "http://schemas.dmtf.org/wbem/wsman/1/wsman/fault"
CONTENT_TYPE = "application/soap+xml;charset=UTF-16"

_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, dtd_validation=False,
                          huge_tree=False, remove_comments=True, remove_pis=True)
_DECL = re.compile(r"^\s*<\?xml[^>]*\?>")
_DTD = re.compile(r"<!(?:DOCTYPE|ENTITY)", re.I)
_CHARSET = re.compile(r"charset\s*=\s*\"?([\w-]+)", re.I)


class SoapError(ValueError):
    """A request that is not a usable WS-Man envelope; `kind` names the counter it goes to."""

    def __init__(self, reason: str, kind: str = "malformed") -> None:
        super().__init__(reason)
        self.kind = kind


@dataclass
class Envelope:
    """What the collector reads from a client request."""

    action: str
    message_id: str
    to: str = ""
    machine_id: str = ""
    operation_id: str | None = None
    sequence_id: str | None = None
    identifier: str = ""  # e:Identifier (the subscription version we handed out)
    bookmark: str | None = None  # the <BookmarkList> as sent, verbatim
    ack_requested: bool = False
    events: list[str] = field(default_factory=list)  # event XML documents of an Events batch
    end_status: str = ""  # SubscriptionEnd: e:Status and the fault text, for the operator
    end_reason: str = ""


_UTF32 = {"utf-32": "utf-32-le", "utf-32le": "utf-32-le", "utf-32be": "utf-32-be"}


def decode_text(raw: bytes, content_type: str = "") -> str:
    """Bytes -> text: a BOM wins, then the Content-Type charset, then a sniff of `<` in UTF-16."""
    if raw.startswith(codecs.BOM_UTF8):
        return raw[3:].decode("utf-8")
    if raw.startswith((codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE)):  # before UTF-16: FF FE 00 00
        return raw.decode("utf-32")
    if raw[:4] in (b"<\x00\x00\x00", b"\x00\x00\x00<"):
        return raw.decode("utf-32-le" if raw[0] == 0x3C else "utf-32-be")
    if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return raw.decode("utf-16")
    m = _CHARSET.search(content_type or "")
    charset = m.group(1).lower() if m else ""
    if charset in _UTF32:
        return raw.decode(_UTF32[charset])
    if charset in ("utf-16", "utf-16le") or raw[:2] == b"<\x00":
        return raw.decode("utf-16-le")
    if charset == "utf-16be" or raw[:2] == b"\x00<":
        return raw.decode("utf-16-be")
    return raw.decode("utf-8")


def _text(root: etree._Element, path: str) -> str | None:
    el = root.find(path)
    return None if el is None else (el.text or "").strip()


def parse(raw: bytes, content_type: str = "") -> Envelope:
    """Parse one request. Raises SoapError (kind: malformed, dtd, encoding)."""
    try:
        text = decode_text(raw, content_type)
    except UnicodeDecodeError as exc:
        raise SoapError(f"body is not valid text in its charset: {exc.reason}", "encoding") from None
    text = _DECL.sub("", text, count=1)
    if _DTD.search(text[:4096]) or "<!DOCTYPE" in text or "<!ENTITY" in text:
        raise SoapError("DTD/ENTITY declarations are refused in SOAP messages", "dtd")
    shifted = False
    try:
        root = etree.fromstring(text.encode("utf-8"), _PARSER)
    except etree.XMLSyntaxError as exc:
        if not _UNSAFE.search(text):
            raise SoapError(f"malformed XML: {exc}") from None
        try:  # a raw control character in an event: shift it out of the way, as the event reader does
            root = etree.fromstring(_UNSAFE.sub(_shift, text).encode("utf-8"), _PARSER)
        except etree.XMLSyntaxError as exc2:
            raise SoapError(f"malformed XML: {exc2}") from None
        shifted = True
    if root.tag != f"{{{S}}}Envelope":
        raise SoapError(f"not a SOAP 1.2 envelope: <{root.tag!s}>")  # a str (the stub says str | bytes | QName)
    header, body = root.find(f"{{{S}}}Header"), root.find(f"{{{S}}}Body")
    if header is None or body is None:
        raise SoapError("SOAP envelope without Header or Body")
    action = _text(header, f"{{{A}}}Action")
    message_id = _text(header, f"{{{A}}}MessageID")
    if not action or not message_id:
        raise SoapError("request without a:Action or a:MessageID")
    env = Envelope(action=action, message_id=message_id, to=_text(header, f"{{{A}}}To") or "",
                   machine_id=_text(header, f"{{{MACHINE}}}MachineID") or "",
                   operation_id=_text(header, f"{{{P}}}OperationID"), sequence_id=_text(header, f"{{{P}}}SequenceId"),
                   identifier=_text(header, f"{{{E}}}Identifier") or "",
                   ack_requested=header.find(f"{{{W}}}AckRequested") is not None)
    bm = header.find(f"{{{W}}}Bookmark")
    if bm is not None:
        inner = next(iter(bm), None)
        env.bookmark = etree.tostring(inner, encoding="unicode").strip() if inner is not None else None
        if shifted and env.bookmark:
            env.bookmark = env.bookmark.translate(_UNSHIFT)
    if action == EVENTS:
        events = body.find(f"{{{W}}}Events")
        if events is None:
            raise SoapError("Events request without w:Events")
        for ev in events.iterfind(f"{{{W}}}Event"):
            payload = (ev.text or "").strip()
            if not payload and len(ev):  # CDATA option off: the event is an element, not text
                payload = etree.tostring(ev[0], encoding="unicode")
            if payload:
                env.events.append(payload.translate(_UNSHIFT) if shifted else payload)
    elif action == SUBSCRIPTION_END:
        env.end_status = _text(body, f".//{{{E}}}Status") or ""
        fault = body.find(f".//{{{FAULT_NS}}}WSManFault")
        if fault is not None:
            words = " ".join(" ".join(fault.itertext()).split())
            env.end_reason = f"code {fault.get('Code', '?')}: {words}"[:500]
    return env


# -- replies ----------------------------------------------------------------------------------------

def new_id() -> str:
    return f"uuid:{str(uuid.uuid4()).upper()}"


def encode(xml: str) -> bytes:
    """UTF-16LE with a BOM: what Windows sends and expects back."""
    return codecs.BOM_UTF16_LE + xml.encode("utf-16-le")


def _reply_header(action: str, req: Envelope) -> str:
    parts = [f"<a:Action>{escape(action)}</a:Action>", f"<a:MessageID>{new_id()}</a:MessageID>"]
    if req.operation_id is not None:
        parts.append(f'<p:OperationID s:mustUnderstand="false">{escape(req.operation_id)}</p:OperationID>')
    if req.sequence_id is not None:
        parts.append(f"<p:SequenceId>{escape(req.sequence_id)}</p:SequenceId>")
    parts.append(f"<a:To>{ANONYMOUS}</a:To><a:RelatesTo>{escape(req.message_id)}</a:RelatesTo>")
    return "".join(parts)


_ENVELOPE = ('<s:Envelope xml:lang="en-US" xmlns:s="{S}" xmlns:a="{A}" xmlns:n="{N}" xmlns:w="{W}" xmlns:p="{P}">'
             "<s:Header>{header}</s:Header><s:Body>{body}</s:Body></s:Envelope>")


def ack(req: Envelope) -> bytes:
    return encode(_ENVELOPE.format(S=S, A=A, N=N, W=W, P=P, header=_reply_header(ACK, req), body=""))


def enumerate_response(req: Envelope, items: list[tuple[str, str]]) -> bytes:
    """`items`: (version GUID, Subscribe envelope XML) per subscription this client runs."""
    subs = "".join(f'<m:Subscription xmlns:m="http://schemas.microsoft.com/wbem/wsman/1/subscription">'
                   f"<m:Version>uuid:{version}</m:Version>{envelope}</m:Subscription>" for version, envelope in items)
    body = f"<n:EnumerateResponse><n:EnumerationContext></n:EnumerationContext><w:Items>{subs}</w:Items>" \
           f"<w:EndOfSequence/></n:EnumerateResponse>"
    return encode(_ENVELOPE.format(S=S, A=A, N=N, W=W, P=P, header=_reply_header(ENUMERATE_RESPONSE, req), body=body))


def fault(reason: str, subcode: str = "w:InvalidMessageInformationHeader", req: Envelope | None = None,
          code: str = "s:Sender") -> bytes:
    """A SOAP 1.2 / WS-Man fault (Windows logs the reason text in its Forwarding/Operational log)."""
    header = f"<a:Action>{WSMAN_FAULT}</a:Action><a:MessageID>{new_id()}</a:MessageID><a:To>{ANONYMOUS}</a:To>"
    if req is not None:
        header += f"<a:RelatesTo>{escape(req.message_id)}</a:RelatesTo>"
    body = (f"<s:Fault><s:Code><s:Value>{code}</s:Value><s:Subcode><s:Value>{subcode}</s:Value></s:Subcode>"
            f"</s:Code><s:Reason><s:Text xml:lang=\"en-US\">{escape(reason[:500])}</s:Text></s:Reason></s:Fault>")
    return encode(_ENVELOPE.format(S=S, A=A, N=N, W=W, P=P, header=header, body=body))


def attr(value: str) -> str:
    """An XML attribute value, quoted."""
    return quoteattr(value)
