"""JSON lines from log shippers: Winlogbeat (ECS `winlog.*` and the older 6.x layout), NXLog
`im_msvistalog` (flat keys, as in the OTRF Security-Datasets), and the `evtx` parser's own JSON
(`{"Event": ...}` or its `records_json()` wrapper). The layout is decided per line.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import IO, Any

import msgspec

from ..catalogue import CATALOGUE, canonical_channel
from ..model import EPOCH, Origin, WindowsEvent
from .evtx import from_evtx_json
from .stats import ReadStats
from .values import as_int, as_text, flatten_user_data, parse_time

MAX_LINE = 16 << 20
_decode = msgspec.json.decode

# NXLog im_msvistalog and Logstash envelope keys; everything else on a flat line is EventData.
NXLOG_META = frozenset({
    "EventTime", "EventReceivedTime", "SourceModuleName", "SourceModuleType", "Hostname", "Keywords",
    "EventType", "SeverityValue", "Severity", "EventID", "SourceName", "ProviderGuid", "Version", "Task",
    "OpcodeValue", "Opcode", "RecordNumber", "ActivityID", "RelatedActivityID", "ProcessID",
    "ExecutionProcessID", "ThreadID", "Channel", "Domain", "AccountName", "UserID", "AccountType",
    "Category", "Message", "TimeCreated", "Level", "Qualifiers", "ERROR_EVT_UNRESOLVED",
    "@timestamp", "@version", "host", "port", "tags", "type", "beat", "agent", "ecs", "log", "input", "fields",
})

_KEYWORD_NAMES = {"audit failure": "0x8010000000000000", "audit success": "0x8020000000000000"}
_QUARTER_HOUR = 900.0


class JsonShapeError(ValueError):
    pass


def _keywords_hex(v: Any) -> str | None:
    if v is None:
        return None
    if isinstance(v, int):
        return hex(v & 0xFFFFFFFFFFFFFFFF)
    if isinstance(v, list):
        for name in v:
            hx = _KEYWORD_NAMES.get(str(name).lower())
            if hx:
                return hx
        return None
    s = str(v)
    if s.lower() in _KEYWORD_NAMES:
        return _KEYWORD_NAMES[s.lower()]
    n = as_int(s)
    return hex(n & 0xFFFFFFFFFFFFFFFF) if n is not None else None


def _naive(s: Any) -> datetime | None:
    if not isinstance(s, str) or not s:
        return None
    try:
        return datetime.fromisoformat(s.strip().replace(" ", "T", 1))
    except ValueError:
        return None


def _nxlog_time(d: dict) -> datetime:
    """NXLog writes EventTime in the collector's local time without a zone; Logstash adds a UTC
    `@timestamp` at receipt. The collector's offset is `@timestamp - EventReceivedTime`, rounded
    to a quarter hour; without both, the local time is taken as UTC."""
    local = _naive(d.get("EventTime")) or _naive(d.get("TimeCreated"))
    if local is not None and local.tzinfo is not None:
        return parse_time(local.isoformat()) or EPOCH
    stamp = parse_time(d["@timestamp"]) if isinstance(d.get("@timestamp"), str) else None
    if local is None:
        return stamp or EPOCH
    received = _naive(d.get("EventReceivedTime"))
    offset = 0.0
    if stamp is not None and received is not None and received.tzinfo is None:
        delta = (stamp.replace(tzinfo=None) - received).total_seconds()
        offset = round(delta / _QUARTER_HOUR) * _QUARTER_HOUR
    try:
        shifted = local + timedelta(seconds=offset)
    except OverflowError:  # a nonsense EventTime/@timestamp pair: keep what the line says
        shifted = local
    return parse_time(shifted.isoformat()) or EPOCH


def from_nxlog(d: dict, origin: Origin | None) -> WindowsEvent:
    eid = as_int(d.get("EventID"))
    if eid is None:
        raise JsonShapeError("EventID is not a number")
    spec = CATALOGUE.get(eid)
    own = frozenset(spec.fields) if spec else frozenset()
    data = {k: as_text(v) for k, v in d.items() if k not in NXLOG_META or k in own}
    return WindowsEvent(
        event_id=eid, provider=as_text(d.get("SourceName")), channel=canonical_channel(as_text(d.get("Channel"))),
        computer=as_text(d.get("Hostname")), time=_nxlog_time(d), record_id=as_int(d.get("RecordNumber")),
        data=data, origin=origin, keywords=_keywords_hex(d.get("Keywords")),
        level=as_int(d.get("Level")), task=as_int(d.get("Task")),
        user_sid=d["UserID"] if isinstance(d.get("UserID"), str) and d["UserID"].startswith("S-") else None)


def from_winlogbeat(d: dict, origin: Origin | None) -> WindowsEvent:
    w = d.get("winlog")
    if not isinstance(w, dict):  # Winlogbeat 6.x: the same names at top level
        w = d
    eid = as_int(w.get("event_id", (d.get("event") or {}).get("code") if isinstance(d.get("event"), dict) else None))
    if eid is None:
        raise JsonShapeError("winlog.event_id is missing or not a number")
    data: dict[str, str] = {}
    ed = w.get("event_data")
    if isinstance(ed, dict):
        data = {k: as_text(v) for k, v in ed.items()}
    ud = w.get("user_data")
    if isinstance(ud, dict):
        flatten_user_data({k: v for k, v in ud.items() if k != "xml_name"}, "", data)
    user = w.get("user")
    sid = user.get("identifier") if isinstance(user, dict) else None
    t = parse_time(as_text(d.get("@timestamp"))) or EPOCH
    return WindowsEvent(
        event_id=eid, provider=as_text(w.get("provider_name") or w.get("source_name")),
        channel=canonical_channel(as_text(w.get("channel") or w.get("log_name"))),
        computer=as_text(w.get("computer_name")), time=t,
        record_id=as_int(w.get("record_id", w.get("record_number"))), data=data, origin=origin,
        keywords=_keywords_hex(w.get("keywords")), level=None, task=None, user_sid=sid)


def from_json_line(line: bytes, origin: Origin | None) -> WindowsEvent:
    """One JSON object of any supported shipper layout. Raises ValueError on anything else."""
    if line.startswith(b'{"Event":'):
        return from_evtx_json(line, "", origin)
    try:
        d = _decode(line)
    except msgspec.DecodeError as exc:
        raise JsonShapeError(f"malformed JSON: {exc}") from None
    if not isinstance(d, dict):
        raise JsonShapeError(f"expected a JSON object, found {type(d).__name__}")
    if isinstance(d.get("Event"), dict):
        return from_evtx_json(line, "", origin)
    if isinstance(d.get("data"), str) and "event_record_id" in d:
        return from_evtx_json(d["data"], as_text(d.get("timestamp")), origin)
    if isinstance(d.get("winlog"), dict) or ("event_data" in d and "event_id" in d):
        return from_winlogbeat(d, origin)
    if "EventID" in d:
        return from_nxlog(d, origin)
    raise JsonShapeError("not a Windows event in a known JSON layout (Winlogbeat, NXLog, evtx)")


def read_jsonl(stream: IO[bytes], source: str, stats: ReadStats, member: str | None = None) -> Iterator[WindowsEvent]:
    lineno = 0
    while True:
        line = stream.readline(MAX_LINE + 1)
        if not line:
            return
        lineno += 1
        if len(line) > MAX_LINE and not line.endswith(b"\n"):
            stats.problem(Origin(source, lineno, member), f"line longer than {MAX_LINE} bytes skipped", "json-oversize")
            while line and not line.endswith(b"\n"):
                line = stream.readline(MAX_LINE + 1)
            continue
        line = line.strip()
        if not line:
            continue
        origin = Origin(source, lineno, member)
        try:
            yield from_json_line(line, origin)
        except (ValueError, msgspec.ValidationError, TypeError, KeyError, AttributeError) as exc:
            stats.problem(origin, f"line {lineno}: {exc}", "json")
