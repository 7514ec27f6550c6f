"""RSA Security Analytics: `RsaSA` and eight positional fields, one per line (siem-input-formats.md 3.1).

    RsaSA \\n time \\n event id \\n provider \\n log \\n computer \\n user \\n workstation \\n status

The separators are real LFs or the two characters `\\n` (the doc does not say which). The log
name never holds a backslash, so one there is the doc's own typo (`Security\\XXXXX`, a `\\n`
missing its `n`) and is read as a separator. The reference defines fields 7-9 for 4776 only; for
the other catalogue events dcsentry reads the fields after the computer as the event's EventData
values in the provider's order (its own extension, documented in docs/siem-input.md).
"""

from __future__ import annotations

import re

from ...model import WindowsEvent
from .common import PACKAGE_V1_0, BadMessage, Message, build_event, event_id_of, event_time, spec_for

_LINES = re.compile(r"\r?\n")


def detect(body: str) -> bool:
    return "RsaSA" in body[:64]


def parse(msg: Message) -> WindowsEvent:
    text = msg.body[msg.body.index("RsaSA"):].rstrip("\r\n")
    parts = [p.strip() for p in (_LINES.split(text) if "\n" in text else text.split("\\n"))]
    while parts and not parts[-1]:
        parts.pop()
    if len(parts) > 4 and "\\" in parts[4]:
        parts[4:5] = parts[4].split("\\", 1)
    if len(parts) < 6:
        raise BadMessage(f"RSA layout: {len(parts)} fields, at least 6 needed "
                         "(RsaSA, time, id, provider, log, computer)")
    eid = event_id_of(parts[2])
    time = event_time(parts[1])
    if time is None:
        raise BadMessage(f"RSA layout: unreadable event time {parts[1][:40]!r}")
    values = parts[6:]
    data: dict[str, str] = {}
    spec = spec_for(eid)
    if eid == 4776:
        if len(values) != 3:
            raise BadMessage("RSA layout: 4776 needs user, workstation and status after the computer, "
                             f"found {len(values)}")
        data = {"PackageName": PACKAGE_V1_0, "TargetUserName": values[0], "Workstation": values[1], "Status": values[2]}
    elif spec is not None:
        if len(values) != len(spec.fields):
            raise BadMessage(f"RSA layout: {eid} needs its {len(spec.fields)} EventData values after the computer, "
                             f"found {len(values)}")
        data = dict(zip(spec.fields, values))
    return build_event(eid, parts[3], parts[4], parts[5], time, data, msg)
