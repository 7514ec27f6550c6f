"""IBM QRadar agentless (MSRPC) Windows forwarding (siem-input-formats.md 3.4): a syslog header,
then `AgentDevice=WindowsLog`, `AgentLogFile=<log>`, `Source=<provider>`, `Computer=<DC>`,
`EventID=`, `TimeGenerated=`, ... and `Message=<rendered text>` last.

Pairs may be separated by TABs (as the docs require), spaces (as the doc sample shows) or the two
characters `\\t` (as a published example prints them). `TimeGenerated` is epoch milliseconds or
`yyyyMMddHHmmss.FFFFFF`. The EventData comes from the message text (messagetext.py).
The `Original Address=` prefix QRadar puts before a re-forwarded header is taken by the header
parser; QRadar's JSON forwarding (the line inside `payload`) is read by json.py.
"""

from __future__ import annotations

from ...model import WindowsEvent
from . import messagetext
from .common import (
    BadMessage,
    Message,
    NotWindows,
    build_event,
    event_id_of,
    event_time,
    keywords_from,
    spec_for,
    split_kv,
)

_EVENT_TYPES = {"8": "Audit Success", "16": "Audit Failure"}  # EVENTLOG_AUDIT_SUCCESS / _FAILURE


def detect(body: str) -> bool:
    return "AgentDevice=" in body[:512] or ("EventIDCode=" in body and "AgentLogFile=" in body)


def parse(msg: Message) -> WindowsEvent:
    kv, text = split_kv(msg.body)
    device = kv.get("AgentDevice", "WindowsLog")
    if device.lower() != "windowslog":
        raise NotWindows(f"QRadar AgentDevice={device[:40]}, not WindowsLog")
    eid = event_id_of(kv.get("EventID"), kv.get("EventIDCode"))
    computer = kv.get("Computer", "")
    if not computer:
        raise BadMessage("QRadar layout: Computer= (the DC) is missing or empty")
    time = None
    if kv.get("TimeGenerated"):
        time = event_time(kv["TimeGenerated"])
        if time is None:
            raise BadMessage(f"QRadar layout: unreadable TimeGenerated {kv['TimeGenerated'][:40]!r}")
    data = messagetext.fields_from_text(eid, text or "")
    spec = spec_for(eid)
    if spec is not None and spec.core and not data:
        raise BadMessage(f"QRadar layout: {eid} without a Message= text to read its fields from")
    return build_event(eid, kv.get("Source", ""), kv.get("AgentLogFile", ""), computer, time, data, msg,
                       record_id=kv.get("RecordNumber"), task=kv.get("EventCategory"),
                       keywords=keywords_from(_EVENT_TYPES.get(kv.get("EventType", ""))))
