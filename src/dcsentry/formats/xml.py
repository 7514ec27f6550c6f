"""Windows event XML: `wevtutil qe /f:xml`, `Get-WinEvent | % ToXml`, rendered XML, `<Events>` files.

The input is cut into `<Event>...</Event>` pieces by a text scanner and each piece is parsed on
its own, so one malformed event costs one event, and a document-level DTD is never parsed at all.
lxml runs with entity resolution, DTD loading and network access off; a DOCTYPE or ENTITY
declaration found in the stream is reported and ignored.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Iterator
from typing import IO

from lxml import etree

from ..catalogue import canonical_channel
from ..model import EPOCH, Origin, WindowsEvent
from .stats import ReadStats
from .values import as_int, parse_time

MAX_EVENT_CHARS = 4 << 20
_BLOCK = 1 << 20
_START = re.compile(r"<Event[\s>]")
_END = "</Event>"
_DTD = re.compile(r"<!(DOCTYPE|ENTITY)", re.I)
_NOISE = re.compile(r"<\?xml[^>]*\?>|</?Events\s*>|<!--.*?-->|\s+", re.S)
# A pretty-printer's line break + indentation standing where an empty element's text would be
# (evtx_dump writes `<Data>\n    </Data>` for an empty value); a value that is a bare newline stays.
_INDENT = re.compile(r"\r?\n +")
# XML parsers turn CR into LF, but Windows values carry CRLF (PrivilegeList, UserAccountControl): CRs
# in text content are passed as character references so they survive, as they do from EVTX.
_CR_TEXT = re.compile(r"\r(?=[^<>]*<)")  # a CR whose next markup is a `<`: in text, not inside a tag
# Windows writes control characters of binary-ish values raw, which XML 1.0 forbids; they are moved
# to plane-16 private use for the parse and moved back after, so one odd value cannot cost the event.
_UNSAFE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]|&#(?:x([0-9a-fA-F]{1,6})|([0-9]{1,7}));")
_SHIFT = 0x100000
_UNSHIFT = {_SHIFT + c: c for c in (*range(0x20), 0xFFFE, 0xFFFF)}
_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, dtd_validation=False,
                          huge_tree=False, remove_comments=True, remove_pis=True)


def _local(tag: object) -> str:
    if not isinstance(tag, str):
        return ""
    i = tag.rfind("}")
    return tag[i + 1:] if i >= 0 else tag


def _text(el: etree._Element) -> str | None:
    t = el.text
    if t and t[0] in "\r\n" and _INDENT.fullmatch(t):
        return None
    return t


def _shift(m: re.Match[str]) -> str:
    s = m.group(0)
    if len(s) == 1:
        return chr(_SHIFT + ord(s))
    code = int(m.group(1), 16) if m.group(1) else int(m.group(2))
    return chr(_SHIFT + code) if (code < 0x20 and code not in (9, 10, 13)) or code in (0xFFFE, 0xFFFF) else s


def _unshift(ev: WindowsEvent) -> WindowsEvent:
    ev.data = {k.translate(_UNSHIFT): v.translate(_UNSHIFT) for k, v in ev.data.items()}
    ev.provider, ev.channel, ev.computer = (x.translate(_UNSHIFT) for x in (ev.provider, ev.channel, ev.computer))
    if ev.user_sid is not None:
        ev.user_sid = ev.user_sid.translate(_UNSHIFT)
    return ev


def _flatten(el: etree._Element, prefix: str, out: dict[str, str]) -> None:
    for child in el:
        name = _local(child.tag)
        if not name:
            continue
        key = f"{prefix}.{name}" if prefix else name
        if len(child):
            _flatten(child, key, out)
            continue
        attrs = {k: v for k, v in child.attrib.items() if not k.startswith("{")}
        for ak, av in attrs.items():
            out[f"{key}.{ak}"] = av
        text = _text(child)
        if text is not None or not attrs:
            out[key] = text or ""


def element_to_event(root: etree._Element, origin: Origin | None) -> WindowsEvent:
    """An `<Event>` element (any namespace) -> WindowsEvent, the same fields the EVTX reader gives."""
    provider = channel = computer = ""
    eid = 0
    level = task = record_id = None
    keywords = user_sid = None
    t = None
    data: dict[str, str] = {}
    for part in root:
        section = _local(part.tag)
        if section == "System":
            for f in part:
                n = _local(f.tag)
                if n == "Provider":
                    provider = f.get("Name") or f.get("EventSourceName") or ""
                elif n == "EventID":
                    eid = as_int((f.text or "").strip()) or 0
                elif n == "Level":
                    level = as_int((f.text or "").strip())
                elif n == "Task":
                    task = as_int((f.text or "").strip())
                elif n == "Keywords":
                    keywords = (f.text or "").strip() or None
                elif n == "TimeCreated":
                    t = parse_time(f.get("SystemTime") or "")
                elif n == "EventRecordID":
                    record_id = as_int((f.text or "").strip())
                elif n == "Channel":
                    channel = (f.text or "").strip()
                elif n == "Computer":
                    computer = (f.text or "").strip()
                elif n == "Security":
                    user_sid = f.get("UserID")
        elif section == "EventData":
            i = 0
            for d in part:
                n = _local(d.tag)
                if n == "Data":
                    name = d.get("Name")
                    if name is None:
                        i += 1
                        name = f"param{i}"
                    v = d.text  # _text() inlined: this is the hot loop
                    data[name] = "" if not v or (v[0] in "\r\n" and _INDENT.fullmatch(v)) else v
                elif n == "Binary" and _text(d):
                    data["Binary"] = d.text or ""
        elif section == "UserData":
            wrapper = next((c for c in part if _local(c.tag)), None)
            if wrapper is not None:
                _flatten(wrapper, "", data)
    return WindowsEvent(event_id=eid, provider=provider, channel=canonical_channel(channel), computer=computer,
                        time=t or EPOCH, record_id=record_id, data=data, origin=origin, keywords=keywords,
                        level=level, task=task, user_sid=user_sid)


def parse_event_xml(text: str | bytes, origin: Origin | None = None) -> WindowsEvent:
    """One event's XML (the shape WEF deliveries and SIEM layouts embed). Raises ValueError."""
    shifted = False
    if isinstance(text, str) and "\r" in text:
        text = _CR_TEXT.sub("&#13;", text)
    try:
        root = etree.fromstring(text.encode("utf-8") if isinstance(text, str) else text, _PARSER)
    except etree.XMLSyntaxError as exc:
        if not isinstance(text, str) or not _UNSAFE.search(text):
            raise ValueError(f"malformed event XML: {exc}") from None
        try:
            root = etree.fromstring(_UNSAFE.sub(_shift, text).encode("utf-8"), _PARSER)
        except etree.XMLSyntaxError as exc2:
            raise ValueError(f"malformed event XML: {exc2}") from None
        shifted = True
    if _local(root.tag) != "Event":
        raise ValueError(f"expected an <Event> element, found <{_local(root.tag)}>")
    ev = element_to_event(root, origin)
    return _unshift(ev) if shifted else ev


def _decoder_for(head: bytes) -> codecs.IncrementalDecoder:
    if head.startswith(codecs.BOM_UTF8):
        return codecs.getincrementaldecoder("utf-8-sig")("replace")
    # UTF-32 before UTF-16 (FF FE 00 00 starts with UTF-16's BOM): the DOCTYPE check needs the text
    if head.startswith((codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE)):
        return codecs.getincrementaldecoder("utf-32")("replace")
    if head[:4] == b"<\x00\x00\x00":
        return codecs.getincrementaldecoder("utf-32-le")("replace")
    if head[:4] == b"\x00\x00\x00<":
        return codecs.getincrementaldecoder("utf-32-be")("replace")
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return codecs.getincrementaldecoder("utf-16")("replace")
    if head[:2] == b"<\x00":
        return codecs.getincrementaldecoder("utf-16-le")("replace")
    if head[:2] == b"\x00<":
        return codecs.getincrementaldecoder("utf-16-be")("replace")
    return codecs.getincrementaldecoder("utf-8")("replace")


def read_xml(stream: IO[bytes], source: str, stats: ReadStats, member: str | None = None) -> Iterator[WindowsEvent]:
    """Stream `<Event>` elements from XML text of any of the shapes Windows tools export."""
    first = stream.read(_BLOCK)
    dec = _decoder_for(first[:4])
    buf = dec.decode(first)
    base = 0  # character offset of buf[0] in the decoded input
    pos = 0  # scan position inside buf
    eof = not first
    content = False  # any text at all: a file that is only a byte-order mark or blanks says so

    def junk(segment: str, at: int) -> None:
        nonlocal content
        content = content or bool(segment.strip())
        if _DTD.search(segment):
            stats.problem(Origin(source, at, member), "DOCTYPE/ENTITY declarations are refused (not parsed)", "xml-dtd")
        elif _NOISE.sub("", segment):
            stats.problem(Origin(source, at, member), "text outside <Event> elements ignored", "xml")

    def more() -> bool:
        """Drop what was consumed, append the next block; False at end of input."""
        nonlocal buf, base, pos, eof
        if eof:
            return False
        block = stream.read(_BLOCK)
        eof = not block
        base += pos
        buf = buf[pos:] + (dec.decode(block) if block else dec.decode(b"", final=True))
        pos = 0
        return True

    while True:
        m = _START.search(buf, pos)
        if m is None:
            cut = buf.rfind("<", pos)  # a tag may straddle the block boundary: keep it whole for next time
            tail = cut if cut >= 0 and len(buf) - cut <= 4096 else len(buf)
            junk(buf[pos:tail], base + pos)
            pos = tail
            if not more():
                junk(buf[pos:], base + pos)
                if not content:
                    stats.problem(Origin(source, 0, member), "no XML content (empty, or only a byte-order mark)", "xml")
                return
            continue
        content = True
        if m.start() > pos:
            junk(buf[pos:m.start()], base + pos)
        pos = m.start()
        end = buf.find(_END, pos)
        while end < 0 and len(buf) - pos <= MAX_EVENT_CHARS and more():
            end = buf.find(_END, pos)
        origin = Origin(source, base + pos, member)
        if end < 0:
            if len(buf) - pos <= MAX_EVENT_CHARS:
                stats.problem(origin, "unterminated <Event> element (truncated input?)", "xml")
                return
            stats.problem(origin, f"<Event> element longer than {MAX_EVENT_CHARS} characters skipped", "xml-oversize")
            while True:  # drop the element unread up to its end tag (or a next start tag), block by block
                end = buf.find(_END, pos)
                nxt = _START.search(buf, pos + 1, end if end >= 0 else len(buf))
                if nxt is not None or end >= 0:
                    pos = nxt.start() if nxt is not None else end + len(_END)
                    break
                pos = max(pos, len(buf) - len(_END))  # a tag may straddle the block boundary
                if not more():
                    return
            continue
        stop = end + len(_END)
        inner = _START.search(buf, pos + 1, stop)
        if inner is not None:  # a new start tag before the end: the earlier event never closed
            stats.problem(origin, "unterminated <Event> element", "xml")
            pos = inner.start()
            continue
        if stop - pos > MAX_EVENT_CHARS:  # the same limit whether or not the element fit in one read block
            stats.problem(origin, f"<Event> element longer than {MAX_EVENT_CHARS} characters skipped", "xml-oversize")
            pos = stop
            continue
        try:
            yield parse_event_xml(buf[pos:stop], origin)
        except ValueError as exc:
            stats.problem(origin, str(exc), "xml")
        pos = stop


def decode_wef(data: bytes, origin: Origin) -> tuple[str, WindowsEvent]:
    """A WEF-delivered event (its XML, UTF-8) -> ("wef", event). Raises ValueError."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"WEF event is not UTF-8: {exc.reason}") from None
    return "wef", parse_event_xml(text, origin)
