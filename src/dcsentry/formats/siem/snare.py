"""Snare for Windows (`MSWinEventLog`, TAB-separated), the layout of the rsyslog test data:

    MSWinEventLog  criticality  log  counter  "Fri Sep 17 16:37:25 2021"  event id  provider
    user  SID type  "Success Audit"  computer  category  data  message  [counter]

The message text has its CR, LF and TAB turned into spaces, and is read by messagetext.py. Snare's
date has no zone and no fraction: it is read as UTC, to the second. With no record id either, field 4
(Snare's event counter) is kept as the event's `sequence`: without it, identical attempts within one
second would be one event (identity.py).
"""

from __future__ import annotations

from ...model import WindowsEvent
from . import messagetext
from .common import BadMessage, Message, build_event, event_id_of, event_time, keywords_from, spec_for


def detect(body: str) -> bool:
    i = body.find("MSWinEventLog", 0, 200)
    return i >= 0 and (body.startswith("\t", i + 13) or body.startswith("\\t", i + 13))


def parse(msg: Message) -> WindowsEvent:
    text = msg.body[msg.body.index("MSWinEventLog"):].rstrip("\r\n")
    f = text.split("\t") if "\t" in text else text.split("\\t")
    if len(f) < 14:
        raise BadMessage(f"Snare layout: {len(f)} TAB-separated fields, 14 needed")
    eid = event_id_of(f[5])
    time = event_time(f[4])
    if time is None:
        raise BadMessage(f"Snare layout: unreadable date {f[4][:40]!r}")
    data = messagetext.fields_from_text(eid, f[13])
    spec = spec_for(eid)
    if spec is not None and spec.core and not data:
        raise BadMessage(f"Snare layout: {eid} without message text to read its fields from")
    return build_event(eid, f[6], f[2], f[10], time, data, msg, keywords=keywords_from(f[9]), sequence=f[3])
