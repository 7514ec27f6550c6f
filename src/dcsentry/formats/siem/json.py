"""JSON inside syslog: QRadar's JSON forwarding (the original syslog line in `payload`, read again
by the layouts), Microsoft Sentinel `SecurityEvent` rows (flat columns), and the shipper JSON
dcsentry already reads from files (Winlogbeat, NXLog, evtx), through `from_json_line`.
An `@cee:` cookie (rsyslog) before the object is skipped.
"""

from __future__ import annotations

from typing import Any

import msgspec

from ...model import WindowsEvent
from ..jsonl import JsonShapeError, from_json_line
from ..values import as_int, as_text
from ..xml import parse_event_xml
from .common import BadMessage, Message, NotWindows, UnknownLayout, build_event, event_time, spec_for

_EVENT_NS = "http://schemas.microsoft.com/win/2004/08/events/event"
MAX_DEPTH = 2


def detect(body: str) -> bool:
    return body.startswith(("{", "@cee:"))


def parse(msg: Message) -> WindowsEvent:
    text = msg.body.removeprefix("@cee:").strip()
    raw = text.encode("utf-8", "surrogatepass")
    try:
        d = msgspec.json.decode(raw)
    except (msgspec.DecodeError, RecursionError) as exc:
        raise BadMessage(f"JSON layout: malformed JSON: {exc}") from None
    return from_record(d, msg, raw)


def _is_sentinel(d: dict[str, Any]) -> bool:
    return "EventID" in d and "Computer" in d and "Hostname" not in d and "SourceModuleName" not in d


def _sentinel(d: dict[str, Any], msg: Message) -> WindowsEvent:
    """A SecurityEvent row: EventData fields are columns (or XML in `EventData` for the rest)."""
    eid = as_int(d.get("EventID"))
    if eid is None or not 0 <= eid <= 0xFFFF:
        raise BadMessage("Sentinel row: EventID is not an event number")
    data: dict[str, str] = {}
    xml = d.get("EventData")
    if isinstance(xml, str) and xml.lstrip().startswith("<EventData"):
        try:
            data = parse_event_xml(f'<Event xmlns="{_EVENT_NS}">{xml}</Event>').data
        except ValueError:
            data = {}
    spec = spec_for(eid)
    for f in spec.fields if spec else ():
        if f in d and d[f] is not None:
            data.setdefault(f, as_text(d[f]))
    stamp = as_text(d.get("TimeGenerated") or d.get("TimeCreated"))
    return build_event(eid, as_text(d.get("EventSourceName") or d.get("Provider")), as_text(d.get("Channel")),
                       as_text(d.get("Computer")), event_time(stamp), data, msg,
                       record_id=d.get("EventRecordId"), task=d.get("Task"))


def from_record(d: Any, msg: Message, raw: bytes | None = None) -> WindowsEvent:
    """One decoded JSON object, of any layout above."""
    if not isinstance(d, dict):
        raise BadMessage(f"JSON layout: expected an object, found {type(d).__name__}")
    payload = d.get("payload")
    if isinstance(payload, str):
        source = as_text(d.get("logSourceType"))
        if msg.depth >= MAX_DEPTH:
            raise BadMessage("JSON layout: payload nested too deep")
        from . import parse_text

        try:
            return parse_text(payload, msg.origin, depth=msg.depth + 1)
        except UnknownLayout:
            if "windows" in source.lower():
                raise BadMessage(f"QRadar JSON: {source} payload in no known layout") from None
            raise NotWindows(f"QRadar JSON from {source or 'an unnamed log source'}") from None
    if _is_sentinel(d):
        return _sentinel(d, msg)
    try:
        return from_json_line(raw if raw is not None else msgspec.json.encode(d), msg.origin)
    except JsonShapeError as exc:
        if "known JSON layout" in str(exc):
            raise UnknownLayout("JSON object of no known Windows layout") from None
        raise BadMessage(f"JSON layout: {exc}") from None
    except (ValueError, msgspec.ValidationError, TypeError, KeyError, AttributeError, RecursionError) as exc:
        raise BadMessage(f"JSON layout: {exc}") from None
