"""ArcSight CEF (siem-input-formats.md 3.2): `CEF:0|Microsoft|Microsoft Windows||<provider>:<id>|
<name>|<severity>|<extension>`.

Read, in order of trust (a later source never overrides an earlier one):
1. `ad.<Name>=` keys: the Windows SmartConnector's raw EventData, by its own names.
2. custom fields by their label (`cs4Label=Reason or Error Code`, `cn1Label=Logon Type`), the
   label matched against the event's message labels; the `cs` number is not significant.
3. standard CEF keys with a fixed meaning per event (`duser`, `shost`, `src`, ...).
The event id is `externalId` (else the signature's `:<id>`), the time `rt` (epoch ms, or CEF's
`MMM dd yyyy HH:mm:ss`), the computer `dvchost` (the reporting Windows host, when the connector
sets it) else `dhost` (the DC, in the MDI layout).
"""

from __future__ import annotations

import re
from functools import lru_cache

from ...model import WindowsEvent
from . import messagetext
from .common import (
    PACKAGE_V1_0,
    BadMessage,
    Message,
    NotWindows,
    build_event,
    event_id_of,
    event_time,
    keywords_from,
    spec_for,
)

_FIELD = re.compile(r"[^|\\]*(?:\\.[^|\\]*)*\|", re.S)  # up to an unescaped pipe, in linear time
_EXT_KEY = re.compile(r"(?:^|(?<=\s))([A-Za-z0-9_.\[\]-]{1,64})=")
_UNESCAPE = re.compile(r"\\(.)", re.S)
_ESCAPES = {"n": "\n", "r": "\r"}
_LONG = {
    "destinationHostName": "dhost", "sourceHostName": "shost", "destinationUserName": "duser",
    "sourceUserName": "suser", "destinationNtDomain": "dntdom", "sourceNtDomain": "sntdom",
    "destinationUserId": "duid", "sourceUserId": "suid", "receiptTime": "rt", "deviceHostName": "dvchost",
    "sourceAddress": "src", "sourcePort": "spt", "deviceEventCategory": "cat", "endTime": "end", "startTime": "start",
    **{f"deviceCustomString{i}": f"cs{i}" for i in range(1, 7)},
    **{f"deviceCustomString{i}Label": f"cs{i}Label" for i in range(1, 7)},
    **{f"deviceCustomNumber{i}": f"cn{i}" for i in range(1, 4)},
    **{f"deviceCustomNumber{i}Label": f"cn{i}Label" for i in range(1, 4)},
}
# The custom fields that carry a label (`cs4` + `cs4Label`): a set, tested once per extension key.
_CUSTOM = frozenset([*(f"cs{i}" for i in range(1, 7)), *(f"cn{i}" for i in range(1, 4)),
                     *(f"c6a{i}" for i in range(1, 5)), *(f"cfp{i}" for i in range(1, 5)),
                     "flexString1", "flexString2", "flexNumber1", "flexNumber2", "deviceCustomDate1",
                     "deviceCustomDate2"])
_HEADER = re.compile(r"([^|\\]*(?:\\.[^|\\]*)*)\|" * 7, re.S)  # _FIELD seven times, in one match
# Labels ArcSight uses that are not the message's own wording.
_EXTRA_LABELS = {"reason or error code": "Status", "error code": "Status", "logon guid": "LogonGuid",
                 "authentication package name": "AuthenticationPackageName", "process id": "ProcessId",
                 "restricted admin mode": "RestrictedAdminMode"}
_GROUP_STD = {"suser": "SubjectUserName", "sntdom": "SubjectDomainName", "duser": "MemberName"}
_LOGON_STD = {"duser": "TargetUserName", "dntdom": "TargetDomainName", "src": "IpAddress", "spt": "IpPort",
              "suser": "SubjectUserName", "sntdom": "SubjectDomainName", "shost": "WorkstationName"}
_STANDARD: dict[int, dict[str, str]] = {
    4776: {"duser": "TargetUserName", "shost": "Workstation"},
    8004: {"duser": "UserName", "dntdom": "DomainName", "shost": "WorkstationName"},
    **dict.fromkeys((4728, 4729, 4732, 4733, 4756, 4757), _GROUP_STD),
    4624: _LOGON_STD, 4625: _LOGON_STD,
    **{eid: {"duser": "TargetUserName", "dntdom": "TargetDomainName", "src": "IpAddress", "spt": "IpPort"}
       for eid in (4768, 4769, 4771)},
}
_STANDARD[8005] = _STANDARD[8006] = _STANDARD[8004]
_AD_META = frozenset({"ProcessID", "ThreadID", "Version", "Opcode", "EventRecordID", "geid", "Keywords", "Level",
                      "Task", "Channel", "Computer", "EventID"})


def detect(body: str) -> bool:
    return "CEF:" in body[:256]


def _unescape_one(m: re.Match[str]) -> str:
    return _ESCAPES.get(m.group(1), m.group(1))


def _unescape(v: str) -> str:
    return _UNESCAPE.sub(_unescape_one, v) if "\\" in v else v


def split_cef(text: str) -> tuple[list[str], dict[str, str]]:
    """The seven header fields (unescaped) and the extension as key -> value (unescaped)."""
    m = _HEADER.match(text)
    if m is None:
        cuts: list[int] = []
        while len(cuts) < 7:
            f = _FIELD.match(text, cuts[-1] if cuts else 0)
            if f is None:
                break
            cuts.append(f.end())
        raise BadMessage(f"CEF: header has {len(cuts) + 1} of its 8 pipe-separated parts")
    header = [_unescape(f) for f in m.groups()]
    # re.split gives [before the first key, key, value, key, value, ...]: each value runs to the next key
    parts = _EXT_KEY.split(text[m.end():])
    ext: dict[str, str] = {}
    for key, v in zip(parts[1::2], parts[2::2]):
        name = _LONG.get(key, key)
        if name not in ext:
            v = v.rstrip()
            ext[name] = _UNESCAPE.sub(_unescape_one, v) if "\\" in v else v
    return header, ext


@lru_cache(maxsize=1024)
def _tables(eid: int) -> tuple[bool, frozenset[str], dict[str, str]]:
    """Per event id (the catalogue is fixed): is it known, its EventData names, field by label."""
    spec = spec_for(eid)
    fields = frozenset(spec.fields) if spec else frozenset()
    return spec is not None, fields, {**{k: f for k, f in _EXTRA_LABELS.items() if f in fields},
                                      **messagetext.label_fields(eid)}


def parse(msg: Message) -> WindowsEvent:
    text = msg.body[msg.body.index("CEF:"):].rstrip("\r\n")
    header, ext = split_cef(text)
    vendor, product, signature = header[1], header[2], header[4]
    if "microsoft" not in vendor.lower() and "windows" not in product.lower():
        raise NotWindows(f"CEF from {vendor} {product}, not Windows")
    sig_provider, _, sig_id = signature.rpartition(":")
    eid = event_id_of(ext.get("externalId"), sig_id, signature)
    labels = {ext[f"{k}Label"].strip().lower(): v for k, v in ext.items()
              if k in _CUSTOM and f"{k}Label" in ext}
    known, fields, by_label = _tables(eid)
    data: dict[str, str] = {}
    for k, v in ext.items():  # 1. raw EventData
        if k.startswith("ad."):
            f = k[3:]
            if (f in fields or (not known and f not in _AD_META)) and f not in data:
                data[f] = v
    for label, v in labels.items():  # 2. labelled custom fields
        field = by_label.get(label)
        if field is not None:
            data.setdefault(field, v)
    for key, field in _STANDARD.get(eid, {}).items():  # 3. standard keys
        if key in ext:
            data.setdefault(field, ext[key])
    if eid in (4728, 4729, 4732, 4733, 4756, 4757):
        if ext.get("suid", "").lower().startswith("0x"):
            data.setdefault("SubjectLogonId", ext["suid"])
        if ext.get("duid", "").startswith("S-1-"):
            data.setdefault("MemberSid", ext["duid"])
    elif eid == 4624 and ext.get("duid", "").lower().startswith("0x"):
        data.setdefault("TargetLogonId", ext["duid"])
    if eid == 4776 and data:
        data.setdefault("PackageName", PACKAGE_V1_0)
    provider = sig_provider or labels.get("eventsource", "")
    channel = ext.get("cat", "")
    if channel.startswith("/"):  # an ArcSight categorisation path, not the log name
        channel = ""
    time = None
    for key in ("rt", "end", "start"):
        if ext.get(key):
            time = event_time(ext[key])
            if time is None:
                raise BadMessage(f"CEF: unreadable {key} {ext[key][:40]!r}")
            break
    keywords = keywords_from(ext.get("categoryOutcome", "").strip("/")) or keywords_from(ext.get("deviceSeverity"))
    computer = ext.get("dvchost") or ext.get("dhost") or ""
    return build_event(eid, provider, channel, computer, time, data, msg,
                       record_id=ext.get("ad.EventRecordID"), keywords=keywords)
