"""Every DC-log alert type comes out of every input format the same way: each DC-log recording that
must raise something is re-carried, record by record, as an XML file (the records exactly as the
EVTX holds them), as Winlogbeat JSON lines, as a syslog capture of RFC 5424 messages with the event
XML as body (octet-counted, what a WEF-to-syslog relay sends), and as RFC 5424 messages with a
Winlogbeat JSON body; `hunt` on each must raise the same alert types as on the EVTX itself.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import evtx
import pytest

from conftest import CORPUS, corpus
from dcsentry.config import Detection
from dcsentry.formats import ReadStats
from dcsentry.hunt import hunt
from dcsentry.model import WindowsEvent
from conftest import read_file_events

EXPECTED: list[dict[str, Any]] = json.loads((CORPUS / "expected-dc-log.json").read_text(encoding="utf-8"))
FILES = [e["path"] for e in EXPECTED if e["must"] and e["path"].endswith(".evtx")]


def _types(path: Path, fmt: str | None = None) -> set[str]:
    stats = ReadStats()
    alerts, _ = hunt([str(path)], Detection(), stats, fmt)
    assert stats.skipped_total == 0, (path.name, stats)
    return {a.type for a in alerts}


def _winlogbeat(ev: WindowsEvent) -> dict[str, Any]:
    """Winlogbeat's document: EventData under event_data, UserData (1102, 104) under user_data."""
    win: dict[str, Any] = {"event_id": ev.event_id, "provider_name": ev.provider, "channel": ev.channel,
                           "computer_name": ev.computer, "record_id": ev.record_id}
    if ev.keywords:
        win["keywords"] = ["Audit Failure" if ev.is_failure_audit else "Audit Success"]
    if ev.provider == "Microsoft-Windows-Eventlog":
        win["user_data"] = {"xml_name": "LogFileCleared", **ev.data}
    else:
        win["event_data"] = ev.data
    return {"@timestamp": ev.time.isoformat().replace("+00:00", "Z"), "winlog": win}


def _syslog(body: str, ev_time: str) -> bytes:
    msg = f"<13>1 {ev_time} wec01 forwarder - - - {body}".encode()
    return str(len(msg)).encode() + b" " + msg


def _carriers(src: Path, tmp: Path) -> dict[str, Path]:
    records = [r["data"] for r in evtx.PyEvtxParser(str(src)).records()]
    events, stats = read_file_events(src)
    assert stats.skipped_total == 0 and len(events) == len(records)
    out = {}
    xml_bodies = [r.split("?>", 1)[1].strip() if r.startswith("<?xml") else r for r in records]
    out["xml"] = tmp / "events.xml"
    out["xml"].write_text("<Events>" + "".join(xml_bodies) + "</Events>", encoding="utf-8")
    docs = [_winlogbeat(ev) for ev in events]
    out["winlogbeat"] = tmp / "winlogbeat.json"
    out["winlogbeat"].write_text("".join(json.dumps(d) + "\n" for d in docs), encoding="utf-8")
    stamps = [ev.time.isoformat().replace("+00:00", "Z") for ev in events]
    out["syslog-xml"] = tmp / "xml.syslog"
    out["syslog-xml"].write_bytes(b"".join(_syslog(b, s) for b, s in zip(xml_bodies, stamps)))
    out["syslog-json"] = tmp / "json.syslog"
    out["syslog-json"].write_bytes(b"".join(_syslog(json.dumps(d), s) for d, s in zip(docs, stamps)))
    return out


@pytest.mark.parametrize("rel", FILES)
def test_dc_log_alerts_are_the_same_in_every_format(rel: str, tmp_path: Path) -> None:
    src = corpus(rel)
    want = _types(src)
    must = {t for m in next(e for e in EXPECTED if e["path"] == rel)["must"] for t in (m if isinstance(m, list) else [m])}
    assert must <= want, (rel, sorted(want))
    for fmt, path in _carriers(src, tmp_path).items():
        assert _types(path) == want, (fmt, rel)


@pytest.mark.parametrize("rel", FILES)
def test_every_carrier_gives_the_same_events(rel: str, tmp_path: Path) -> None:
    """Field for field, multi-line values (Properties, AccessList, SidList) and UserData included."""
    def key(e: WindowsEvent) -> tuple:
        return (e.record_id, e.event_id, e.computer, e.channel, e.time, e.data)

    ref = sorted(map(key, read_file_events(corpus(rel))[0]))
    for fmt, path in _carriers(corpus(rel), tmp_path).items():
        events, stats = read_file_events(path)
        assert stats.skipped_total == 0, (fmt, stats)
        assert sorted(map(key, events)) == ref, fmt
