"""SIEM layouts of forwarded Windows events -> WindowsEvent, one message at a time.

The Defender for Identity standalone sensor takes Windows events from a SIEM in fixed layouts
(../shared/reference/siem-input-formats.md): RSA Security Analytics, ArcSight CEF, QRadar and
Splunk; shippers add Snare, JSON (Winlogbeat, NXLog, QRadar's JSON forwarding, Sentinel rows) and
plain event XML. Each layout is a module with `detect(body) -> bool` and `parse(Message)`; the
layout is chosen per message, so one capture or listener may mix them. Whatever the layout, the
event comes out with the EventData names and spelling of the XML, so detectors never know.

`parse_message` is what a syslog listener calls per datagram or frame; `read_syslog`
(formats/syslog.py) reads capture files with it.
"""

from __future__ import annotations

import codecs
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ...model import Origin, WindowsEvent
from ..syslog import SyslogHeader, split_header
from ..xml import parse_event_xml
from . import cef, qradar, rsa, snare, splunk
from . import json as json_layout
from .common import BadMessage, Message, MessageError, NotWindows, UnknownLayout

__all__ = ["LAYOUTS", "BadMessage", "Layout", "Message", "MessageError", "NotWindows", "UnknownLayout",
           "detect_layout", "parse_message", "parse_record", "parse_text", "parse_with_layout", "register"]


@dataclass(frozen=True, slots=True)
class Layout:
    """A SIEM layout: a cheap test on the message body, and the parser."""

    name: str
    detect: Callable[[str], bool]
    parse: Callable[[Message], WindowsEvent]


def _xml_detect(body: str) -> bool:
    return body.startswith("<Event")


def _xml_parse(msg: Message) -> WindowsEvent:
    try:
        return parse_event_xml(msg.body.rstrip(), msg.origin)
    except ValueError as exc:
        raise BadMessage(f"event XML: {exc}") from None


def _leef_parse(msg: Message) -> WindowsEvent:
    raise NotWindows("LEEF is QRadar's format for other devices, not a Windows layout")


LAYOUTS: dict[str, Layout] = {}  # change it through register() only (detect_layout's shortcut)
_builtin = False  # LAYOUTS holds exactly the built-in layouts, in their order


def register(layout: Layout) -> None:
    """Add (or replace) a layout; layouts are tried in the order they were registered."""
    global _builtin
    _builtin = False
    LAYOUTS[layout.name] = layout


for _layout in (
    Layout("event-xml", _xml_detect, _xml_parse),
    Layout("cef", cef.detect, cef.parse),
    Layout("leef", lambda body: body.startswith("LEEF:"), _leef_parse),
    Layout("rsa", rsa.detect, rsa.parse),
    Layout("snare", snare.detect, snare.parse),
    Layout("json", json_layout.detect, json_layout.parse),
    Layout("qradar", qradar.detect, qradar.parse),
    Layout("splunk", splunk.detect, splunk.parse),
):
    register(_layout)
_builtin = True
_XML, _CEF, _LEEF, _RSA, _SNARE, _JSON = (LAYOUTS[n] for n in ("event-xml", "cef", "leef", "rsa", "snare", "json"))


def detect_layout(body: str) -> Layout | None:
    """The first layout that claims the message body (the text after the syslog header)."""
    if _builtin:  # the same tests in the same order, without a call per layout for the usual ones
        if body.startswith("<Event"):
            return _XML
        if "CEF:" in body[:256]:
            return _CEF
        if body.startswith("LEEF:"):
            return _LEEF
        if "RsaSA" in body[:64]:
            return _RSA
        if "MSWinEventLog" in body[:213] and snare.detect(body):
            return _SNARE
        if body.startswith(("{", "@cee:")):
            return _JSON
    for layout in LAYOUTS.values():
        if layout.detect(body):
            return layout
    return None


def _decode(raw: bytes) -> str:
    """UTF-8 (BOM or not), UTF-16 with a BOM, else Windows-1252 as legacy agents send it."""
    if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return raw.decode("utf-16", "replace")
    try:
        return raw.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError:
        return raw.decode("cp1252", "replace")


def _parse(text: str, origin: Origin | None, now: datetime | None, depth: int) -> tuple[str, WindowsEvent]:
    text = text.strip("\r\n\x00")
    if not text.strip():
        raise BadMessage("empty message")
    header, body = split_header(text, now)
    layout = detect_layout(body)
    if layout is None:
        raise UnknownLayout("no SIEM layout matches (RSA, CEF, QRadar, Splunk, Snare, JSON, event XML)")
    msg = Message(header, body, origin, depth)
    try:
        return layout.name, layout.parse(msg)
    except MessageError:
        raise
    except (ValueError, IndexError, KeyError, TypeError, OverflowError, RecursionError) as exc:  # a blind spot
        raise BadMessage(f"{layout.name} layout: {type(exc).__name__}: {exc}") from None


def parse_text(text: str, origin: Origin | None = None, now: datetime | None = None, depth: int = 0) -> WindowsEvent:
    """One message as text. Raises UnknownLayout (NotWindows for recognisably foreign input) or
    BadMessage, both ValueErrors with a reason fit for a log line."""
    return _parse(text, origin, now, depth)[1]


def parse_message(raw: bytes, origin: Origin | None = None, now: datetime | None = None) -> WindowsEvent:
    """One syslog message (a datagram, a frame, a capture line) -> WindowsEvent.

    `now` places RFC 3164 header times (which have no year) in a year; it defaults to the clock.
    """
    return _parse(_decode(raw), origin, now, 0)[1]


def parse_with_layout(raw: bytes, origin: Origin | None = None,
                      now: datetime | None = None) -> tuple[str, WindowsEvent]:
    """`parse_message`, also naming the layout that read it (for per-layout counters)."""
    return _parse(_decode(raw), origin, now, 0)


def parse_record(row: Any, origin: Origin | None = None) -> WindowsEvent:
    """One already-decoded JSON object (an element of a JSON array export)."""
    return json_layout.from_record(row, Message(SyslogHeader(), "", origin))
