"""The WS-Management message layer of tests/wefclient.py: namespaces and the envelope head, SLDC
(ECMA-321) compression, events read from EVTX as the one-line XML a WEF client sends, the
subscriptions parsed from an EnumerateResponse, and a collector's reply.

Written from the specifications (DSP0226 WS-Management, MS-WSMV, WS-Eventing/Enumeration, ECMA-321)
and from the real messages in ../shared/reference/wef-samples, not from dcsentry's server code.
The tests import these names from wefclient, which re-exports them.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field

import evtx
from lxml import etree

NS = {"s": "http://www.w3.org/2003/05/soap-envelope", "a": "http://schemas.xmlsoap.org/ws/2004/08/addressing",
      "e": "http://schemas.xmlsoap.org/ws/2004/08/eventing", "n": "http://schemas.xmlsoap.org/ws/2004/09/enumeration",
      "w": "http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd", "p": "http://schemas.microsoft.com/wbem/wsman/1/wsman.xsd",
      "m": "http://schemas.microsoft.com/wbem/wsman/1/subscription",
      "c": "http://schemas.xmlsoap.org/ws/2002/12/policy",
      "auth": "http://schemas.microsoft.com/wbem/wsman/1/authentication"}
ANON = "http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous"
_HEAD = ('<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" '
         'xmlns:a="http://schemas.xmlsoap.org/ws/2004/08/addressing" '
         'xmlns:e="http://schemas.xmlsoap.org/ws/2004/08/eventing" '
         'xmlns:n="http://schemas.xmlsoap.org/ws/2004/09/enumeration" '
         'xmlns:w="http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd" '
         'xmlns:p="http://schemas.microsoft.com/wbem/wsman/1/wsman.xsd">')
_SAFE = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, remove_blank_text=True)


def msg_id() -> str:
    return f"uuid:{str(uuid.uuid4()).upper()}"


# -- SLDC (ECMA-321) encoding, scheme 1 with a greedy 1024-byte history search ------------------------

class _Bits:
    def __init__(self) -> None:
        self.acc, self.n, self.out = 0, 0, bytearray()

    def put(self, value: int, width: int) -> None:
        self.acc = (self.acc << width) | value
        self.n += width
        while self.n >= 8:
            self.n -= 8
            self.out.append((self.acc >> self.n) & 0xFF)
        self.acc &= (1 << self.n) - 1

    def flush(self) -> bytes:
        if self.n:
            self.put(0, 8 - self.n)
        return bytes(self.out)


def _count_field(k: int) -> tuple[int, int]:
    """ECMA-321 match count field for k in 2..271: (bits, width)."""
    if k < 4:
        return 0b0 << 1 | (k - 2), 2
    if k < 8:
        return 0b10 << 2 | (k - 4), 4
    if k < 16:
        return 0b110 << 3 | (k - 8), 6
    if k < 32:
        return 0b1110 << 4 | (k - 16), 8
    return 0b1111 << 8 | (k - 32), 12


def sldc_compress(data: bytes) -> bytes:
    """Reset-1, scheme-1 literals and copy pointers, End-of-Record, byte padding, then the uint32
    LE length trailer Windows appends."""
    b = _Bits()
    b.put(0x1FF5, 13)  # Reset 1: empty history, scheme 1
    index: dict[bytes, list[int]] = {}
    i, n = 0, len(data)
    while i < n:
        best_len, best_at = 0, 0
        for j in reversed(index.get(data[i:i + 3], [])[-16:]):
            if i - j > 1023:
                break
            k = 0
            while k < 239 and i + k < n and data[j + k] == data[i + k]:  # 239: keeps the 8-bit field below 0xF0
                k += 1
            if k > best_len:
                best_len, best_at = k, j
        step = best_len if best_len >= 3 else 1
        if best_len >= 3:
            bits, width = _count_field(best_len)
            b.put(1, 1)
            b.put(bits, width)
            b.put(best_at % 1024, 10)  # displacement = absolute position in the history buffer
        else:
            b.put(data[i], 9)  # `0` + the byte
        for p in range(i, i + step):
            index.setdefault(data[p:p + 3], []).append(p)
        i += step
    b.put(0x1FF4, 13)  # End of Record
    return b.flush() + len(data).to_bytes(4, "little")


# -- events from the corpus ----------------------------------------------------------------------------

@dataclass
class Event:
    channel: str
    record_id: int
    computer: str
    xml: str


def evtx_events(path: str, computer: str | None = None) -> list[Event]:
    """Each record as the one-line event XML a WEF client sends (`computer` overrides <Computer>)."""
    out = []
    for rec in evtx.PyEvtxParser(str(path)).records():
        root = etree.fromstring(re.sub(r"^<\?xml[^>]*\?>", "", rec["data"]).encode(), _SAFE)
        sysinfo = root.find("{*}System")
        comp = sysinfo.find("{*}Computer")
        if computer is not None:
            comp.text = computer
        out.append(Event(sysinfo.findtext("{*}Channel"), int(sysinfo.findtext("{*}EventRecordID")), comp.text,
                         etree.tostring(root, encoding="unicode")))
    return out


# -- the subscription as the collector described it --------------------------------------------------

@dataclass
class Subscription:
    version: str
    name: str
    address: str  # NotifyTo
    identifier: str  # ReferenceProperties e:Identifier, echoed in every delivery
    end_to: str
    heartbeat: str
    max_time: str
    max_envelope: int
    channels: dict[str, str]  # Select Path -> XPath
    bookmark: str | None  # <BookmarkList> the collector stored, or the "earliest" URI, or None
    options: dict[str, str | None]
    profiles: list[str]
    issuer_thumbprints: list[str]
    positions: dict[str, int] = field(default_factory=dict)  # channel -> last acknowledged RecordId

    @property
    def compressed(self) -> bool:
        return self.options.get("Compression") == "SLDC"


def _selects(sub: etree._Element) -> dict[str, str]:
    """Select Path -> XPath; a channel's several Selects (as many as Windows' clause limit needs) joined by newlines."""
    out: dict[str, str] = {}
    for s in sub.iterfind("w:Filter/QueryList/Query/Select", NS):
        path = s.get("Path")
        out[path] = f"{out[path]}\n{s.text}" if path in out else s.text
    return out


def parse_subscriptions(body: bytes) -> list[Subscription]:
    root = etree.fromstring(body, _SAFE)  # UTF-16 with BOM: lxml honours the BOM
    assert root.findtext("s:Header/a:Action", namespaces=NS) == \
        "http://schemas.xmlsoap.org/ws/2004/09/enumeration/EnumerateResponse"
    subs = []
    for item in root.iterfind("s:Body/n:EnumerateResponse/w:Items/m:Subscription", NS):
        env = item.find("s:Envelope", NS)
        sub = env.find("s:Body/e:Subscribe", NS)
        delivery = sub.find("e:Delivery", NS)
        assert delivery.get("Mode") == "http://schemas.dmtf.org/wbem/wsman/1/wsman/Events"
        notify = delivery.find("e:NotifyTo", NS)
        opts = {o.get("Name"): o.text for o in env.iterfind("s:Header/w:OptionSet/w:Option", NS)}
        mark = sub.find("w:Bookmark", NS)
        bookmark = None
        if mark is not None:
            bookmark = etree.tostring(mark[0], encoding="unicode") if len(mark) else (mark.text or "").strip()
        sub_obj = Subscription(
            version=item.findtext("m:Version", namespaces=NS), name=opts.get("SubscriptionName") or "",
            address=notify.findtext("a:Address", namespaces=NS).strip(),
            identifier=notify.findtext("a:ReferenceProperties/e:Identifier", namespaces=NS).strip(),
            end_to=sub.findtext("e:EndTo/a:Address", namespaces=NS).strip(),
            heartbeat=delivery.findtext("w:Heartbeats", namespaces=NS), max_time=delivery.findtext("w:MaxTime", namespaces=NS),
            max_envelope=int(delivery.findtext("w:MaxEnvelopeSize", namespaces=NS)),
            channels=_selects(sub),
            bookmark=bookmark, options=opts,
            profiles=[a.get("Profile") for a in notify.iterfind(".//auth:Authentication", NS)],
            issuer_thumbprints=[t.text.strip() for t in notify.iterfind(".//auth:Thumbprint[@Role='issuer']", NS)])
        if bookmark and bookmark.startswith("<"):
            for bm in etree.fromstring(bookmark.encode()).iterfind("Bookmark"):
                sub_obj.positions[bm.get("Channel")] = int(bm.get("RecordId"))
        subs.append(sub_obj)
    return subs


# -- the collector's reply -----------------------------------------------------------------------------

@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    def xml(self) -> etree._Element:
        return etree.fromstring(self.body, _SAFE)

    def relates_to(self) -> str | None:
        return self.xml().findtext("s:Header/a:RelatesTo", namespaces=NS)

    def action(self) -> str | None:
        return self.xml().findtext("s:Header/a:Action", namespaces=NS)
