"""The SIEM wire samples of ../shared/siem-samples, checked line by line against its manifest, and
the capture-file side of the syslog input: `dcsentry events` on CRLF and octet-counted captures,
large messages, and fuzzing of `parse_message` / `read_syslog` with random and truncated bytes.

Every manifest line must yield exactly what the manifest says (id, computer, user, ...); lines
marked as not dcsentry's must be read without a problem (an event of that id, or nothing).
"""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import SHARED, jsonl_objects, read_file_events, run_cli
from dcsentry.formats import ReadStats, sniff
from dcsentry.formats.siem import MessageError, parse_message
from dcsentry.formats.syslog import read_syslog
from dcsentry.model import WindowsEvent

SAMPLES = SHARED / "siem-samples"
MANIFEST: list[dict[str, Any]] = json.loads((SAMPLES / "manifest.json").read_text(encoding="utf-8"))
GROUP_IDS = {4728, 4729, 4732, 4733, 4756, 4757}
# Manifest errata, checked by hand against the sample bytes: line 25 is a 4624 logon of S-1-5-20,
# whose rendered "New Logon: Account Name:" is `NETWORK SERVICE`; the manifest cut it at the space.
# (manifest value, value the line really carries)
ERRATA = {("snare/rsyslog-mmsnareparse-windows2022-security.data", 25, "user"): ("NETWORK", "NETWORK SERVICE")}


def _field(ev: WindowsEvent, key: str) -> object:
    """The manifest's names for what a line must yield, looked up in the event."""
    d = ev.data
    if key == "computer":
        return ev.computer
    if key == "time_ms":
        return round(ev.time.timestamp() * 1000)
    if key == "user":
        return d.get("SubjectUserName") if ev.event_id in GROUP_IDS else d.get("TargetUserName")
    if key == "workstation":
        return d.get("Workstation") if ev.event_id == 4776 else d.get("WorkstationName")
    names = {"status": "Status", "logon_type": "LogonType", "source": "IpAddress", "member": "MemberSid",
             "member_name": "MemberName", "group": "TargetUserName", "group_sid": "TargetSid",
             "group_domain": "TargetDomainName"}
    return d.get(names[key])


@pytest.mark.parametrize("entry", MANIFEST, ids=lambda e: e["path"])
def test_manifest_sample(entry: dict[str, Any]) -> None:
    path = SAMPLES / entry["path"]
    assert hashlib.sha256(path.read_bytes()).hexdigest() == entry["sha256"], "sample changed since the manifest"
    assert sniff(path.read_bytes()[:64]) == "syslog"
    events, stats = read_file_events(path)
    assert stats.problems == [], [str(p) for p in stats.problems]
    by_pos: dict[int, list[WindowsEvent]] = {}
    for ev in events:
        assert ev.origin is not None and ev.origin.position is not None
        by_pos.setdefault(ev.origin.position, []).append(ev)
    for want in entry["events"]:
        pos = want["line"] if want.get("line") is not None else want["index"] + 1
        got = by_pos.pop(pos, [])
        where = f"{entry['path']} line/index {pos}"
        if want["event_id"] is None:  # not Windows at all: ignored, only counted
            assert got == [], where
            continue
        if "note" in want and "user" not in want:  # not a dcsentry event: read without error or skipped
            assert all(ev.event_id == want["event_id"] for ev in got), where
            continue
        assert len(got) == 1, f"{where}: expected one event, got {len(got)}"
        ev = got[0]
        assert ev.event_id == want["event_id"], where
        for key, value in want.items():
            if key in ("line", "index", "event_id", "note", "keys"):
                continue
            fixed = ERRATA.get((entry["path"], pos, key))
            if fixed is not None:
                assert value == fixed[0], f"{where}: manifest changed, drop the erratum"
                value = fixed[1]
            assert _field(ev, key) == value, f"{where}: {key}"
    assert by_pos == {}, f"events from lines the manifest does not list: {sorted(by_pos)}"
    not_windows = sum(1 for w in entry["events"] if w["event_id"] is None)
    assert stats.skipped.get("syslog-not-windows", 0) == not_windows


def test_snare_core_events_read_fully() -> None:
    """The real Windows Server 2022 Snare capture: every 4776/4728/4732 with all its fields."""
    events, _ = read_file_events(SAMPLES / "snare/rsyslog-mmsnareparse-windows2022-security.data")
    by_id = {eid: [e for e in events if e.event_id == eid] for eid in (4776, 4728, 4732)}
    assert [len(v) for v in by_id.values()] == [10, 1, 3]
    assert by_id[4728][0].data == {
        "MemberName": "-", "MemberSid": "S-1-5-21-3721521896-794654720-2687577520-504", "TargetUserName": "None",
        "TargetDomainName": "MINWINPC", "TargetSid": "S-1-5-21-3721521896-794654720-2687577520-513",
        "SubjectUserSid": "S-1-5-18", "SubjectUserName": "MINWINPC$", "SubjectDomainName": "",
        "SubjectLogonId": "0x3e7", "PrivilegeList": "-"}
    assert by_id[4776][0].data["PackageName"] == "MICROSOFT_AUTHENTICATION_PACKAGE_V1_0"
    assert all(e.keywords == "0x8020000000000000" and e.channel == "Security" for e in events)


# ---- capture files through the real CLI ----------------------------------------------------------

_CEF = (b"CEF:0|Microsoft|Microsoft Windows||Microsoft-Windows-Security-Auditing:4776|The domain controller "
        b"attempted to validate the credentials for an account.|Low| externalId=4776 cat=Security rt=1709542800123 "
        b"shost=WIN81 dhost=DC01.contoso.local duser=dadmin cs3=Microsoft-Windows-Security-Auditing "
        b"cs4=0xc000006a cs3Label=EventSource cs4Label=Reason or Error Code")
_QRADAR = (b"<13>Mar  4 09:00:01 10.0.0.9 AgentDevice=WindowsLog\tAgentLogFile=Security\tSource=Microsoft-Windows-"
           b"Security-Auditing\tComputer=DC02.contoso.local\tUser=\tDomain=\tEventID=4776\tEventIDCode=4776\tEventType=16"
           b"\tEventCategory=14336\tRecordNumber=77\tTimeGenerated=1709542801456\tTimeWritten=1709542801456\tMessage="
           b"The computer attempted to validate the credentials for an account. Authentication Package: "
           b"MICROSOFT_AUTHENTICATION_PACKAGE_V1_0 Logon Account: eve Source Workstation: KALI Error Code: 0xC0000064")
_SPLUNK = (b"<13>Mar  4 09:00:02 DC03\r\nEventCode=4776\r\nLogfile=Security\r\nSourceName=Microsoft-Windows-Security-"
           b"Auditing\r\nTimeGenerated=20240304090002.789000-000\r\nComputerName=DC03.contoso.local\r\nMessage=The "
           b"computer attempted to validate the credentials for an account.\r\n\r\nAuthentication Package:\t"
           b"MICROSOFT_AUTHENTICATION_PACKAGE_V1_0\r\nLogon Account:\tbob\r\nSource Workstation:\tWS7\r\nError Code:\t0x0")
_WANT = [("DC01.contoso.local", "dadmin", "0xc000006a", "2024-03-04T09:00:00.123000Z"),
         ("DC02.contoso.local", "eve", "0xc0000064", "2024-03-04T09:00:01.456000Z"),
         ("DC03.contoso.local", "bob", "0x0", "2024-03-04T09:00:02.789000Z")]


def _check_cli(path: Path) -> None:
    proc = run_cli("events", str(path), "--jsonl", "--jobs", "1")
    assert proc.returncode == 0, proc.stderr.decode()
    got = jsonl_objects(proc.stdout)
    assert [(o["computer"], o["data"]["TargetUserName"], o["data"]["Status"], o["time"]) for o in got] == _WANT
    assert all(o["event_id"] == 4776 and o["provider"] == "Microsoft-Windows-Security-Auditing" for o in got)
    assert b"dcsentry:" not in proc.stderr, proc.stderr.decode()


@pytest.mark.integration
def test_cli_crlf_capture(tmp_path: Path) -> None:
    """One message per CRLF line, the Splunk one spanning lines (its Message text)."""
    path = tmp_path / "capture.log"
    path.write_bytes(b"\r\n".join([_CEF, _QRADAR, _SPLUNK]) + b"\r\n\r\n")
    _check_cli(path)


@pytest.mark.integration
def test_cli_octet_counted_capture(tmp_path: Path) -> None:
    """RFC 6587 octet counting: `<length> <message>`, no separators between frames."""
    path = tmp_path / "capture.tcp"
    path.write_bytes(b"".join(b"%d %s" % (len(m), m) for m in (b"<13>" + _CEF, _QRADAR, _SPLUNK)))
    _check_cli(path)


@pytest.mark.integration
def test_cli_reports_unknown_layout_with_sample(tmp_path: Path) -> None:
    path = tmp_path / "mixed.log"
    path.write_bytes(b"<13>Mar  4 09:00:00 host sshd[42]: Accepted password for root\n" + _CEF + b"\n")
    proc = run_cli("events", str(path), "--jsonl", "--jobs", "1")
    assert proc.returncode == 0
    assert [o["event_id"] for o in jsonl_objects(proc.stdout)] == [4776]
    err = proc.stderr.decode()
    assert "mixed.log@1" in err and "no SIEM layout matches" in err and "Accepted password" in err
    assert "syslog-layout x1" in err


def test_large_message_is_read(tmp_path: Path) -> None:
    """A message far over a UDP datagram (here 200 KiB of message text) is one message."""
    filler = b" " + b"x" * (200 << 10)
    events, stats = read_file_events(_write(tmp_path, _QRADAR + filler + b"\n" + _CEF + b"\n"))
    assert [e.data["TargetUserName"] for e in events] == ["eve", "dadmin"] and stats.problems == []


def _write(tmp_path: Path, data: bytes) -> Path:
    p = tmp_path / "cap.log"
    p.write_bytes(data)
    return p


def test_oversize_message_is_a_problem() -> None:
    stats = ReadStats()
    big = b"<13>" + b"A" * ((1 << 20) + 10)
    events = list(read_syslog(io.BufferedReader(io.BytesIO(big + b"\n" + _CEF + b"\n")), "mem", stats))
    assert [e.event_id for e in events] == [4776]
    assert stats.skipped["syslog-oversize"] == 1 and stats.problems[0].origin.position == 1


# ---- fuzzing ---------------------------------------------------------------------------------------

_VALID = [_CEF, _QRADAR, _SPLUNK, (SAMPLES / "rsa/ata-docs-rsa-4776.txt").read_bytes(),
          (SAMPLES / "snare/rsyslog-mmsnareparse-sample-events.data").read_bytes().split(b"\n")[0],
          (SAMPLES / "qradar/efi-k-conf20-qradar-json-4624.json").read_bytes()]
_FUZZ = settings(max_examples=300, deadline=2000, suppress_health_check=[HealthCheck.too_slow])


def _parse_or_reason(raw: bytes) -> WindowsEvent | None:
    try:
        ev = parse_message(raw)
    except MessageError as exc:
        assert isinstance(exc, ValueError) and str(exc)
        return None
    assert isinstance(ev, WindowsEvent) and isinstance(ev.data, dict)
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in ev.data.items())
    return ev


@_FUZZ
@given(st.binary(max_size=600))
def test_fuzz_parse_message_random_bytes(raw: bytes) -> None:
    _parse_or_reason(raw)


@_FUZZ
@given(st.sampled_from(_VALID), st.data())
def test_fuzz_parse_message_truncated_and_mutated(valid: bytes, data: st.DataObject) -> None:
    cut = data.draw(st.integers(0, len(valid)))
    _parse_or_reason(valid[:cut])
    pos = data.draw(st.integers(0, len(valid) - 1))
    _parse_or_reason(valid[:pos] + data.draw(st.binary(min_size=1, max_size=8)) + valid[pos + 1:])


_PIECES = st.lists(st.one_of(st.binary(max_size=40), st.sampled_from(_VALID + [b"\n", b"\r\n", b"12 ", b"<13>",
                                                                                 b"[", b"RsaSA\n", b"EventCode="])),
                   max_size=12)


@_FUZZ
@given(_PIECES)
def test_fuzz_read_syslog(pieces: list[bytes]) -> None:
    """Any bytes: no exception, it ends, and each non-blank message is an event or a counted skip."""
    raw = b"".join(pieces)
    stats = ReadStats()
    events = list(read_syslog(io.BufferedReader(io.BytesIO(raw)), "fuzz", stats))
    assert all(isinstance(e, WindowsEvent) for e in events)
    if raw.strip(b" \t\r\n\x0b\x0c"):
        assert events or stats.skipped_total, raw[:80]
    assert stats.skipped_total == sum(stats.skipped.values())


# ---- framing of captures ---------------------------------------------------------------------------

def _read(raw: bytes) -> tuple[list[WindowsEvent], ReadStats]:
    stats = ReadStats()
    return list(read_syslog(io.BufferedReader(io.BytesIO(raw)), "cap", stats)), stats


def test_rsa_with_real_line_feeds_keeps_empty_fields() -> None:
    rsa = (b"<13>Mar  4 09:00:00 siem RsaSA\n2024-03-04 09:00:00.5\n4776\nMicrosoft-Windows-Security-Auditing\n"
           b"Security\nDC1.contoso.local\nsvc_sql\n\n0xC000006A\n")
    events, stats = _read(rsa + _CEF + b"\n")
    assert stats.problems == [] and [e.origin.position for e in events if e.origin] == [1, 10]
    assert events[0].data["Workstation"] == "" and events[0].data["Status"] == "0xc000006a"


def test_header_line_then_splunk_lines_then_next_message() -> None:
    splunk = _SPLUNK.replace(b"\r\n", b"\n")
    events, stats = _read(splunk + b"\n" + splunk.replace(b"bob", b"carol") + b"\n")
    assert stats.problems == [] and [e.data["TargetUserName"] for e in events] == ["bob", "carol"]
    assert [e.origin.position for e in events if e.origin] == [1, 13]


def test_back_to_back_classic_splunk_events() -> None:
    one = (b"LogName=Security\nEventCode=4776\nComputerName=DC1\nSourceName=Microsoft Windows security auditing.\n"
           b"Message=The computer attempted to validate the credentials for an account.\n\nLogon Account:\t%s\n"
           b"Source Workstation:\tWS\nError Code:\t0x0\n")
    events, stats = _read(one % b"ann" + one % b"ben")
    assert stats.problems == [] and [e.data["TargetUserName"] for e in events] == ["ann", "ben"]


def test_garbage_line_costs_only_itself() -> None:
    events, stats = _read(_CEF + b"\r\nthis is not syslog\r\n" + _QRADAR + b"\r\n")
    assert [e.data["TargetUserName"] for e in events] == ["dadmin", "eve"]
    assert [(p.kind, p.origin.position) for p in stats.problems] == [("syslog-layout", 2)]


def test_json_array_with_a_bad_element() -> None:
    rows = b'[{"EventID": 4776, "Computer": "DC1", "Channel": "Security", "TargetUserName": "x", "Status": "0x0",' \
           b' "TimeGenerated": "2024-03-04T09:00:00.123Z"}, 7]'
    events, stats = _read(rows)
    assert [(e.computer, e.data["TargetUserName"], e.provider) for e in events] == \
           [("DC1", "x", "Microsoft-Windows-Security-Auditing")]
    assert [(p.kind, p.origin.position) for p in stats.problems] == [("syslog", 2)]
