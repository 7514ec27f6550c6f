"""The same Sigma rules match the same 7045 whatever carried it: the corpus's real PsExec install read
from its EVTX file, as event XML (a file, and a syslog message), as Winlogbeat and NXLog JSON lines,
in every SIEM syslog layout of tests/test_siem_layouts.py, and as WEF delivers it (rendered XML,
through `decode_wef`). Two rules: SigmaHQ's "PsExec Service Installation" (Provider_Name, EventID,
ServiceName, ImagePath) and a site rule naming every EventData field and the computer, so a format
that loses or renames a field the rules read shows here."""

from __future__ import annotations

import json
from pathlib import Path

import evtx
import pytest

from conftest import SHARED, corpus, read_file_events
from dcsentry.config import Detection
from dcsentry.detectors.sigma import SigmaMatcher, load_rules
from dcsentry.formats.siem import parse_message
from dcsentry.model import Origin, WindowsEvent
from dcsentry.formats.xml import decode_wef
from sigmakit import write_rules
from test_siem_layouts import RENDERERS

PSEXEC_EVTX = "evtx/evtx-to-mitre-attack/ID7045-7036 PSexec service installation.evtx"
SIGMAHQ = "sigma:42c575ea-e41e-41f1-b248-8093c3e82a28"
SITE = "sigma:7b0b8a52-63f4-4a3c-9a0e-3d6f0f7045aa"
SITE_RULE = r"""
title: PsExec service, every field
id: 7b0b8a52-63f4-4a3c-9a0e-3d6f0f7045aa
status: test
logsource:
    product: windows
    service: system
detection:
    sel:
        Provider_Name: Service Control Manager
        EventID: 7045
        Computer: jump01.offsec.lan
        ServiceName: PSEXESVC
        ImagePath|endswith: '\PSEXESVC.exe'
        ServiceType: user mode service
        StartType: demand start
        AccountName: LocalSystem
    condition: sel
level: high
"""
# What WEF adds to an event sent in the RenderedText content format (MS-WSMV, the OpenWEC samples).
RENDERING = ("<RenderingInfo Culture='en-US'><Message>A service was installed in the system.</Message>"
             "<Level>Information</Level><Task></Task><Opcode></Opcode><Channel></Channel>"
             "<Provider>Service Control Manager</Provider><Keywords><Keyword>Classic</Keyword></Keywords>"
             "</RenderingInfo>")


def _record_xml() -> str:
    """The 7045 record's XML exactly as the EVTX holds it (the reader's other input path)."""
    for rec in evtx.PyEvtxParser(str(corpus(PSEXEC_EVTX))).records():
        if "<EventID Qualifiers=\"16384\">7045</EventID>" in rec["data"]:
            return rec["data"]
    raise AssertionError("the corpus file has no 7045")


def _from_evtx() -> WindowsEvent:
    events, stats = read_file_events(corpus(PSEXEC_EVTX))
    assert stats.skipped_total == 0
    (ev,) = [e for e in events if e.event_id == 7045]
    return ev


def _one(path: Path) -> WindowsEvent:
    events, stats = read_file_events(path)
    assert stats.skipped_total == 0 and len(events) == 1, (path.name, stats)
    return events[0]


def _carriers(tmp: Path) -> dict[str, WindowsEvent]:
    ref = _from_evtx()
    xml = _record_xml()
    body = xml.split("?>", 1)[1].strip() if xml.startswith("<?xml") else xml
    out = {"evtx": ref}
    (tmp / "event.xml").write_text(xml, encoding="utf-8")
    out["xml-file"] = _one(tmp / "event.xml")
    out["xml-syslog"] = parse_message(b"<13>1 2021-04-21T09:27:57Z wec01 forwarder - - - " + body.encode(),
                                      Origin("syslog"))
    stamp = ref.time.isoformat().replace("+00:00", "Z")
    winlogbeat = {"@timestamp": stamp, "winlog": {"event_id": 7045, "provider_name": ref.provider,
                                                  "channel": ref.channel, "computer_name": ref.computer,
                                                  "record_id": ref.record_id, "keywords": ["Classic"],
                                                  "event_data": ref.data}}
    nxlog = {"EventTime": ref.time.strftime("%Y-%m-%d %H:%M:%S"), "Hostname": ref.computer, "Keywords": ref.keywords,
             "EventType": "INFO", "SeverityValue": 2, "Severity": "INFO", "EventID": 7045, "SourceName": ref.provider,
             "ProviderGuid": "{555908D1-A6D7-4695-8E1E-26931D2012F4}", "Version": 0, "Task": 0, "OpcodeValue": 0,
             "RecordNumber": ref.record_id, "ProcessID": 708, "ThreadID": 10604, "Channel": ref.channel,
             "Message": "A service was installed in the system.", "Opcode": "Info", **ref.data,
             "EventReceivedTime": ref.time.strftime("%Y-%m-%d %H:%M:%S"), "SourceModuleName": "eventlog",
             "SourceModuleType": "im_msvistalog"}
    for name, doc in (("winlogbeat", winlogbeat), ("nxlog", nxlog)):
        (tmp / f"{name}.json").write_text(json.dumps(doc) + "\n", encoding="utf-8")
        out[name] = _one(tmp / f"{name}.json")
    for layout, render in RENDERERS.items():
        if layout != "event-xml":  # that renderer writes the reference sample, not this event: xml-syslog above
            out[f"siem-{layout}"] = parse_message(render(ref), Origin("syslog"))
    wef = body.replace("</Event>", RENDERING + "</Event>")
    _, out["wef"] = decode_wef(wef.encode(), Origin("wef"))
    return out


@pytest.fixture(scope="module")
def carriers(tmp_path_factory: pytest.TempPathFactory) -> dict[str, WindowsEvent]:
    return _carriers(tmp_path_factory.mktemp("formats"))


@pytest.fixture(scope="module")
def ruleset(tmp_path_factory: pytest.TempPathFactory):
    site = write_rules(tmp_path_factory.mktemp("site"), site=SITE_RULE)
    rs = load_rules([str(SHARED / "sigma" / "rules" / "windows" / "builtin" / "system" / "service_control_manager"), str(site)])
    assert not rs.problems, rs.report()
    assert {f"sigma:{r.meta.uid}" for r in rs.rules} >= {SIGMAHQ, SITE}
    return rs


FORMATS = ["evtx", "xml-file", "xml-syslog", "winlogbeat", "nxlog", "wef",
           *(f"siem-{k}" for k in sorted(RENDERERS) if k != "event-xml")]


@pytest.mark.parametrize("fmt", FORMATS)
def test_the_same_7045_matches_the_same_rules_in_every_format(fmt: str, carriers, ruleset) -> None:
    ev = carriers[fmt]
    assert (ev.event_id, ev.provider, ev.channel, ev.computer) == \
           (7045, "Service Control Manager", "System", "jump01.offsec.lan"), fmt
    hits = {a.type for a in SigmaMatcher(ruleset, Detection()).feed(ev)}
    assert {SIGMAHQ, SITE} <= hits, (fmt, sorted(hits), ev)
