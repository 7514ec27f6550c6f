"""The same events give the same WindowsEvents whatever format carried them.

Every other shape is derived from a real corpus EVTX with the `evtx` package's own XML and JSON
output, in the forms Windows tools and shippers really write, and read back through the public
`read_stream`. The EVTX reader on the original file is the reference: detectors must never be able
to tell which format an event came in.
"""

from __future__ import annotations

import codecs
import gzip
import io
import json
import re
import zipfile
from collections.abc import Callable
from datetime import datetime, timezone
from functools import cache
from typing import Any

import evtx
import pytest

from dcsentry.formats import ReadStats, read_stream
from dcsentry.model import WindowsEvent

from conftest import corpus, read_bytes, read_file_events

FILES = [
    "evtx/omerbenamram-evtx/system.evtx",  # UserData, unnamed <Data>, empty values
    "evtx/omerbenamram-evtx/security.evtx",  # 2261 Security events, one with a control character
    "evtx/omerbenamram-evtx/Security_with_size_t.evtx",  # UserData with attributes, CRLF in values
    "evtx/omerbenamram-evtx/Application_no_crc32.evtx",  # a value that is a lone newline
    "evtx/evtx-to-mitre-attack/ID7045-New service for Mimikatz +npcap.evtx",
    "evtx/evtx-to-mitre-attack/ID4728-4756-Member added to sensitive domain groups.evtx",
    "evtx/evtx-attack-samples/dicovery_4661_net_group_domain_admins_target.evtx",  # \x02 in values
    "evtx/deepbluecli/new-user-security.evtx",
]
ALL = ("event_id", "provider", "channel", "computer", "time", "record_id", "data", "keywords", "level", "task",
       "user_sid")
AUDIT_NAMES = {"0x8020000000000000": "Audit Success", "0x8010000000000000": "Audit Failure"}
_DECL = re.compile(r"<\?xml[^>]*\?>\s*")
_TAG = re.compile(r"<[^<>]+>")
_DQ_ATTR = re.compile(r"""(\s[\w:.-]+)="([^"']*)\"""")
_EMPTY = re.compile(r"<([\w:]+)([^<>]*)></\1>")


@cache
def evtx_output(rel: str) -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]:
    """The evtx package's XML strings, JSON strings and records_json() wrappers (as JSON lines)."""
    path = str(corpus(rel))
    xml = tuple(r["data"] for r in evtx.PyEvtxParser(path).records())
    recs = list(evtx.PyEvtxParser(path).records_json())
    return xml, tuple(r["data"] for r in recs), tuple(json.dumps(r) for r in recs)


@cache
def reference(rel: str) -> tuple[WindowsEvent, ...]:
    events, stats = read_file_events(corpus(rel))
    assert stats.skipped_total == 0 and events
    return tuple(events)


def compact(xml: str) -> str:
    """One event as EvtRender writes it (wevtutil, ToXml): one line, no declaration,
    single-quoted attributes, `<X/>` for empty elements. Only the evtx pretty-printer's
    indentation (newline + spaces between tags) is removed; a value that is a bare newline stays."""
    s = _DECL.sub("", xml).strip()
    s = re.sub(r">\n +<", "><", s)
    s = _EMPTY.sub(r"<\1\2/>", s)
    return _TAG.sub(lambda m: _DQ_ATTR.sub(r"\1='\2'", m.group(0)), s)


def rendering_info(event_xml: str) -> str:
    """Add the <RenderingInfo> that `wevtutil qe /f:RenderedXml` and WEF's rendered mode append."""
    info = ("<RenderingInfo Culture='en-US'><Message>An event happened.\r\n\r\nSubject:\r\n\tAccount Name:\t"
            "x &amp; &lt;y&gt;</Message><Level>Information</Level><Task>Other</Task><Opcode>Info</Opcode>"
            "<Channel>Rendered-Channel</Channel><Provider>Rendered provider</Provider>"
            "<Keywords><Keyword>Audit Success</Keyword></Keywords></RenderingInfo>")
    assert event_xml.count("</Event>") == 1
    return event_xml.replace("</Event>", info + "</Event>")


# --- the shapes -------------------------------------------------------------------------------

def shape_evtx_xml(rel: str) -> bytes:
    """(a) evtx_dump / PyEvtxParser.records(): pretty-printed, one declaration per record."""
    return "".join(evtx_output(rel)[0]).encode("utf-8")


def shape_wevtutil(rel: str) -> bytes:
    """(b) `wevtutil qe Security /f:xml`: events back to back, no root, no declaration."""
    return "".join(compact(x) for x in evtx_output(rel)[0]).encode("utf-8")


def shape_powershell(rel: str) -> bytes:
    """(c) `Get-WinEvent ... | ForEach-Object ToXml > f.xml` in Windows PowerShell: UTF-16LE, BOM, CRLF."""
    text = "".join(compact(x) + "\r\n" for x in evtx_output(rel)[0])
    return codecs.BOM_UTF16_LE + text.encode("utf-16-le")


def shape_events_root(rel: str) -> bytes:
    """(d) `wevtutil qe /e:Events`: a declaration and an <Events> root around the events."""
    body = "\n".join(compact(x) for x in evtx_output(rel)[0])
    return ('<?xml version="1.0" encoding="UTF-8"?>\n<Events>\n' + body + "\n</Events>\n").encode("utf-8")


def shape_rendered(rel: str) -> bytes:
    """(e) rendered XML: a <RenderingInfo> after EventData whose Channel/Level/Provider must not win."""
    return "".join(rendering_info(compact(x)) for x in evtx_output(rel)[0]).encode("utf-8")


def shape_evtx_json(rel: str) -> bytes:
    """(f) `evtx_dump -o jsonl`: one {"Event": ...} object per line."""
    return "\n".join(json.dumps(json.loads(j), separators=(",", ":")) for j in evtx_output(rel)[1]).encode()


def shape_evtx_wrappers(rel: str) -> bytes:
    """(f) PyEvtxParser.records_json() wrappers ({"event_record_id", "timestamp", "data"}) as lines."""
    return ("\n".join(evtx_output(rel)[2]) + "\n").encode()


def _text(v: Any) -> str:
    """How Winlogbeat renders an XML value: always a string."""
    if isinstance(v, dict):
        return _text(v.get("#text"))
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


def _strings(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: (v if k == "#attributes" else _strings(v)) for k, v in node.items()}
    return _text(node)


def winlogbeat(evtx_json: str) -> dict[str, Any]:
    """An ECS document as Winlogbeat 8 ships it, built from the evtx JSON of the same record
    (field names from the Winlogbeat exported-fields reference: winlog.*, @timestamp)."""
    ev = json.loads(evtx_json)["Event"]
    s = ev["System"]
    eid = s["EventID"]["#text"] if isinstance(s["EventID"], dict) else s["EventID"]
    t = datetime.fromisoformat(s["TimeCreated"]["#attributes"]["SystemTime"].replace("Z", "+00:00"))
    w: dict[str, Any] = {
        "api": "wineventlog", "event_id": str(eid), "provider_name": s["Provider"]["#attributes"]["Name"],
        "channel": s.get("Channel"), "computer_name": s.get("Computer"), "record_id": s.get("EventRecordID"),
        "opcode": "Info", "process": {"pid": 4, "thread": {"id": 8}},
    }
    kw = s.get("Keywords")
    if kw:
        w["keywords"] = [AUDIT_NAMES.get(kw, "Classic")]
    sid = ((s.get("Security") or {}).get("#attributes") or {}).get("UserID")
    if sid:
        w["user"] = {"identifier": sid, "domain": "NT AUTHORITY", "name": "SYSTEM", "type": "Well Known Group"}
    ed = ev.get("EventData")
    if isinstance(ed, dict):
        data = {k: _text(v) for k, v in ed.items() if k not in ("#attributes", "Data", "Binary")}
        unnamed = ed.get("Data")
        unnamed = unnamed.get("#text") if isinstance(unnamed, dict) else unnamed
        unnamed = [] if unnamed is None else unnamed if isinstance(unnamed, list) else [unnamed]
        data.update({f"param{i}": _text(v) for i, v in enumerate(unnamed, 1)})
        if ed.get("Binary") is not None:
            data["Binary"] = _text(ed["Binary"])
        w["event_data"] = data
    elif isinstance(ev.get("UserData"), dict):
        name, content = next(iter(ev["UserData"].items()))
        w["user_data"] = {"xml_name": name, **{k: _strings(v) for k, v in content.items() if k != "#attributes"}}
    return {
        "@timestamp": t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z",
        "event": {"code": str(eid), "kind": "event", "provider": w["provider_name"], "module": "security"},
        "log": {"level": "information"}, "host": {"name": (s.get("Computer") or "").lower()},
        "agent": {"type": "winlogbeat", "version": "8.13.0"}, "ecs": {"version": "8.0.0"},
        "message": "An event happened.", "winlog": w,
    }


def shape_winlogbeat(rel: str) -> bytes:
    """(g) Winlogbeat ECS JSON lines (the file or Logstash output)."""
    return ("\n".join(json.dumps(winlogbeat(j)) for j in evtx_output(rel)[1]) + "\n").encode()


SHAPES: dict[str, tuple[Callable[[str], bytes], str]] = {
    "evtx-xml": (shape_evtx_xml, "xml"),
    "wevtutil": (shape_wevtutil, "xml"),
    "powershell-utf16": (shape_powershell, "xml"),
    "events-root": (shape_events_root, "xml"),
    "rendered": (shape_rendered, "xml"),
    "evtx-json": (shape_evtx_json, "jsonl"),
    "evtx-wrappers": (shape_evtx_wrappers, "jsonl"),
    "winlogbeat": (shape_winlogbeat, "jsonl"),
}


def winlogbeat_view(e: WindowsEvent) -> WindowsEvent:
    """What a Winlogbeat document can carry of an event: milliseconds, audit keywords by name, no level/task."""
    t = e.time.replace(microsecond=e.time.microsecond // 1000 * 1000)
    kw = e.keywords if e.keywords in AUDIT_NAMES else None
    return WindowsEvent(e.event_id, e.provider, e.channel, e.computer, t, e.record_id, e.data, keywords=kw,
                        user_sid=e.user_sid)


def assert_same(expected: list[WindowsEvent] | tuple[WindowsEvent, ...], got: list[WindowsEvent],
                label: str) -> None:
    """Event-for-event equality on every normalised field, with the first difference spelled out."""
    assert len(got) == len(expected), f"{label}: {len(got)} events, want {len(expected)}"
    for i, (want, have) in enumerate(zip(expected, got)):
        for f in ALL:
            a, b = getattr(want, f), getattr(have, f)
            if a != b:
                if f == "data":
                    diff = {k: (a.get(k), b.get(k)) for k in set(a) | set(b) if a.get(k) != b.get(k)}
                    raise AssertionError(f"{label} event #{i} record {want.record_id}: data differs {diff}")
                raise AssertionError(f"{label} event #{i} record {want.record_id}: {f} {a!r} != {b!r}")


@pytest.mark.parametrize("shape", list(SHAPES))
@pytest.mark.parametrize("rel", FILES, ids=[f.rsplit("/", 1)[-1][:40] for f in FILES])
def test_shape_agrees_with_evtx(rel: str, shape: str) -> None:
    """Each shape, sniffed (no --format), yields the EVTX reader's events with nothing skipped."""
    build, kind = SHAPES[shape]
    events, stats = read_bytes(build(rel), f"{shape}.txt")
    assert stats.skipped_total == 0, [str(p) for p in stats.problems[:3]]
    assert dict(stats.formats) == {kind: 1}
    want = reference(rel)
    assert_same([winlogbeat_view(e) for e in want] if shape == "winlogbeat" else want, events, shape)
    assert all(e.origin is not None and e.origin.source == f"{shape}.txt" for e in events)


def test_reference_covers_the_hard_cases() -> None:
    """The file list must keep exercising UserData, unnamed Data, CRLF and control characters."""
    sysev = reference(FILES[0])
    assert any("param1" in e.data for e in sysev)
    assert any(e.event_id == 10001 and "Service.name" in e.data for e in sysev)
    assert any("\r\n" in v for e in reference(FILES[2]) for v in e.data.values())
    assert any(v == "\n" for e in reference(FILES[3]) for v in e.data.values())
    assert any(re.search("[\x00-\x08]", v) for e in reference(FILES[6]) for v in e.data.values())
    assert any(e.event_id == 7045 for e in reference(FILES[4]))
    assert {e.event_id for e in reference(FILES[5])} == {4728, 4756}


def test_gzip_and_zip_members_are_read_in_turn(tmp_path: Any) -> None:
    """Containers are unwrapped member by member; each event names its member; order is kept."""
    sec, svc, grp = FILES[1], FILES[4], FILES[5]
    gz = tmp_path / "security.xml.gz"
    gz.write_bytes(gzip.compress(shape_wevtutil(sec)))
    events, stats = read_file_events(gz)
    assert stats.skipped_total == 0 and stats.formats["gz"] == 1 and stats.formats["xml"] == 1
    assert_same(reference(sec), events, "gz")
    assert {e.origin.member for e in events if e.origin} == {"security.xml"}

    zpath = tmp_path / "export.zip"
    with zipfile.ZipFile(zpath, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("logs/", b"")
        z.writestr("logs/a-groups.xml", shape_powershell(grp))
        z.writestr("logs/b-services.jsonl", shape_winlogbeat(svc))
        z.write(corpus(svc), "logs/c-services.evtx")
        z.writestr("logs/d-groups.jsonl.gz", gzip.compress(shape_evtx_wrappers(grp)))
    events, stats = read_file_events(zpath)
    assert stats.skipped_total == 0, [str(p) for p in stats.problems]
    parts: dict[str, list[WindowsEvent]] = {}
    for e in events:
        assert e.origin is not None and e.origin.source == str(zpath)
        parts.setdefault(e.origin.member or "", []).append(e)
    assert list(parts) == ["logs/a-groups.xml", "logs/b-services.jsonl", "logs/c-services.evtx", "d-groups.jsonl"]
    assert_same(reference(grp), parts["logs/a-groups.xml"], "zip xml")
    assert_same([winlogbeat_view(e) for e in reference(svc)], parts["logs/b-services.jsonl"], "zip winlogbeat")
    assert_same(reference(svc), parts["logs/c-services.evtx"], "zip evtx")
    assert_same(reference(grp), parts["d-groups.jsonl"], "zip gz jsonl")


def test_rendering_info_does_not_override_system() -> None:
    """RenderingInfo repeats Channel/Level/Provider/Keywords as display text; System stays authoritative."""
    rel = FILES[5]
    events, _ = read_bytes(shape_rendered(rel))
    assert {e.channel for e in events} == {"Security"}
    assert {e.provider for e in events} == {"Microsoft-Windows-Security-Auditing"}
    assert all("Message" not in e.data for e in events)


NXLOG_ZIP = "json/otrf-security-datasets/purplesharp_ad_playbook_I.zip"


@cache
def purplesharp() -> tuple[WindowsEvent, ...]:
    events, stats = read_file_events(corpus(NXLOG_ZIP))
    assert stats.skipped_total == 0
    return tuple(events)


def test_nxlog_flat_layout_4776() -> None:
    """A known failed NTLM validation of the PurpleSharp spray, read from NXLog's flat JSON in the real zip.

    The line says EventTime "2020-10-22 04:29:53" (collector local time, no zone), EventReceivedTime
    04:29:55 and @timestamp 08:29:55.357Z, so the collector ran at UTC-4 and the event is 08:29:53Z.
    """
    ev = next(e for e in purplesharp() if e.event_id == 4776 and e.record_id == 537223)
    assert ev.data == {"PackageName": "MICROSOFT_AUTHENTICATION_PACKAGE_V1_0", "TargetUserName": "lrodriguez",
                       "Workstation": "WORKSTATION5", "Status": "0xc000006a"}
    assert ev.computer == "MORDORDC.theshire.local"
    assert ev.channel == "Security" and ev.provider == "Microsoft-Windows-Security-Auditing"
    assert ev.time == datetime(2020, 10, 22, 8, 29, 53, tzinfo=timezone.utc)
    assert ev.keywords == "0x8010000000000000" and ev.is_failure_audit
    assert ev.task == 14336
    assert ev.origin is not None and ev.origin.member == "purplesharp_ad_playbook_I_2020-10-22042947.json"


def test_nxlog_spray_is_seven_accounts_one_failure_each() -> None:
    """The corpus README's 4776 spray: 7 accounts, one 0xC000006A each, all from WORKSTATION5."""
    fails = [e for e in purplesharp() if e.event_id == 4776 and e.data["Status"].lower() == "0xc000006a"]
    assert len(fails) == 7
    assert len({e.data["TargetUserName"] for e in fails}) == 7
    assert {e.data["Workstation"] for e in fails} == {"WORKSTATION5"}
    assert all(e.is_failure_audit for e in fails)


def test_nxlog_metadata_is_not_event_data() -> None:
    """NXLog envelope keys (Message, EventTime, Hostname, Keywords...) never leak into `data`."""
    for e in purplesharp():
        assert not {"Message", "EventTime", "EventReceivedTime", "Hostname", "@timestamp", "SourceModuleName",
                    "Keywords", "Channel"} & set(e.data), (e.event_id, sorted(e.data))
        assert e.time.tzinfo is not None and e.time.utcoffset() is not None
    stamps = sorted(e.time for e in purplesharp() if e.channel == "Security")
    assert stamps[0].date() == stamps[-1].date() == datetime(2020, 10, 22).date()


def test_read_stream_accepts_a_non_seekable_pipe() -> None:
    """EVTX from a pipe (stdin, a zip member) is spooled: same events as from the file."""
    rel = FILES[4]

    class Pipe(io.RawIOBase):
        def __init__(self, data: bytes) -> None:
            self._b = io.BytesIO(data)

        def readable(self) -> bool:
            return True

        def readinto(self, buf: Any) -> int:
            chunk = self._b.read(min(len(buf), 4096))
            buf[: len(chunk)] = chunk
            return len(chunk)

    stats = ReadStats()
    events = list(read_stream(Pipe(corpus(rel).read_bytes()), "pipe", stats))
    assert_same(reference(rel), events, "pipe")
