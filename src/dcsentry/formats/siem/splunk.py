"""Splunk WinEventLog key=value (siem-input-formats.md 3.3): `EventCode=`, `Logfile=`,
`SourceName=`, `TimeGenerated=`, `ComputerName=`, then `Message=` and the rendered text to the end.

Both the MDI layout and Splunk's own classic WinEventLog spelling are read (`LogName=`,
`SourceName=Microsoft Windows security auditing.`, a leading `MM/dd/yyyy hh:mm:ss AM` line,
`Keywords=Audit Success`, `RecordNumber=`). Pairs are separated by CRLF, LF or the literal
characters `\\r\\n` of the doc sample (its `\\r\\ComputerName` typo included). `ComputerName`
is the DC (the docs call it "source host name"; in a Windows event it is the logging computer);
the source workstation is read from the message text.
"""

from __future__ import annotations

import re

from ...model import WindowsEvent
from . import messagetext
from .common import BadMessage, Message, build_event, event_id_of, event_time, keywords_from, spec_for, split_kv

_LEADING_DATE = re.compile(r"\s*(\d\d?/\d\d?/\d{4} \d\d?:\d\d:\d\d(?: [AP]M)?)")


def detect(body: str) -> bool:
    return "EventCode=" in body or ("LogName=" in body and "SourceName=" in body)


def parse(msg: Message) -> WindowsEvent:
    kv, text = split_kv(msg.body)
    eid = event_id_of(kv.get("EventCode"), kv.get("EventID"))
    computer = kv.get("ComputerName", "")
    if not computer:
        raise BadMessage("Splunk layout: ComputerName= is missing or empty")
    stamp = kv.get("TimeGenerated")
    if not stamp:
        m = _LEADING_DATE.match(msg.body)
        stamp = m.group(1) if m else None
    time = event_time(stamp) if stamp else None
    if stamp and time is None:
        raise BadMessage(f"Splunk layout: unreadable TimeGenerated {stamp[:40]!r}")
    data = messagetext.fields_from_text(eid, text or "")
    spec = spec_for(eid)
    if spec is not None and spec.core and not data:
        raise BadMessage(f"Splunk layout: {eid} without a Message= text to read its fields from")
    keywords = keywords_from(kv.get("Keywords")) or keywords_from(kv.get("Type"))
    return build_event(eid, kv.get("SourceName", ""), kv.get("Logfile") or kv.get("LogName", ""), computer, time,
                       data, msg, record_id=kv.get("RecordNumber"), keywords=keywords)
