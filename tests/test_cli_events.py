"""`dcsentry events` as users and scripts run it: a real subprocess, real corpus files.

`--jsonl` is a contract other tools parse (keys only ever get added), and the exit status is what
scripts branch on, so both are checked from the outside rather than through the library.
"""

from __future__ import annotations

import gzip
import json
import re
from collections import Counter
from datetime import datetime
from pathlib import Path

import evtx
import pytest

from conftest import corpus, jsonl_objects, manifest, manifest_entry, run_cli
from test_readers_agree import shape_wevtutil

pytestmark = pytest.mark.integration

GROUPS = "evtx/evtx-to-mitre-attack/ID4728-4756-Member added to sensitive domain groups.evtx"
SERVICES = "evtx/evtx-to-mitre-attack/ID7045-New service for Mimikatz +npcap.evtx"
NTLM = "evtx/evtx-attack-samples/privexchange_dirkjan.evtx"
DAMAGED = "evtx/omerbenamram-evtx/sample-with-zero-data-size-event.evtx"
NXLOG = "json/otrf-security-datasets/cmd_psexec_lsa_secrets_dump.zip"
ISO_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,6})?Z$")


def _err(proc: object) -> str:
    return proc.stderr.decode("utf-8", errors="replace")  # type: ignore[attr-defined]


def _counts(objs: list[dict]) -> dict[str, int]:
    return {str(k): v for k, v in Counter(o["event_id"] for o in objs).items()}


@pytest.mark.parametrize("rel", [NTLM, "evtx/omerbenamram-evtx/system.evtx", NXLOG])
def test_jsonl_contract(rel: str) -> None:
    """Every object has the contract keys with the contract types; time is ISO 8601 UTC with a Z."""
    proc = run_cli("events", str(corpus(rel)), "--jsonl")
    assert proc.returncode == 0, _err(proc)
    objs = jsonl_objects(proc.stdout)
    assert len(objs) == manifest_entry(rel)["records"]
    for o in objs:
        assert {"event_id", "provider", "channel", "computer", "time", "record_id", "data"} <= set(o)
        assert type(o["event_id"]) is int
        assert all(type(o[k]) is str for k in ("provider", "channel", "computer", "time"))
        assert ISO_Z.match(o["time"]), o["time"]
        assert o["record_id"] is None or type(o["record_id"]) is int
        assert isinstance(o["data"], dict) and all(type(v) is str for v in o["data"].values())


def test_jsonl_time_is_the_records_utc_time() -> None:
    """`time` is TimeCreated/SystemTime exactly, to the microsecond, and record ids come through."""
    rel = NTLM
    systems = [json.loads(r["data"])["Event"]["System"] for r in evtx.PyEvtxParser(str(corpus(rel))).records_json()]
    want = [(s["EventRecordID"], s["TimeCreated"]["#attributes"]["SystemTime"]) for s in systems]
    objs = jsonl_objects(run_cli("events", str(corpus(rel)), "--jsonl").stdout)
    got = [(o["record_id"], datetime.fromisoformat(o["time"])) for o in objs]
    assert got == [(rid, datetime.fromisoformat(t)) for rid, t in want]
    ntlm = [o for o in objs if o["event_id"] == 4776]
    assert ntlm and all(o["channel"] == "Security" and o["provider"] == "Microsoft-Windows-Security-Auditing"
                        and set(o["data"]) == {"PackageName", "TargetUserName", "Workstation", "Status"}
                        for o in ntlm)


def test_stdin_xml_stream() -> None:
    """`-` reads stdin; a wevtutil XML stream piped in gives the file's events."""
    proc = run_cli("events", "-", "--jsonl", stdin=shape_wevtutil(GROUPS))
    assert proc.returncode == 0, _err(proc)
    objs = jsonl_objects(proc.stdout)
    assert _counts(objs) == manifest_entry(GROUPS)["event_counts"]
    assert all(o["origin"]["source"] == "<stdin>" and o["origin"]["position"] >= 0 for o in objs)
    assert "1 file(s), 4 record(s) read" in _err(proc)


def test_stdin_evtx_file() -> None:
    """EVTX needs random access; piped on stdin it is spooled and read in full."""
    proc = run_cli("events", "-", "--jsonl", stdin=corpus(SERVICES).read_bytes())
    assert proc.returncode == 0, _err(proc)
    assert _counts(jsonl_objects(proc.stdout)) == manifest_entry(SERVICES)["event_counts"]


def _tree(tmp_path: Path) -> Path:
    """A nested folder of corpus files (symlinked, not copied) and derived exports."""
    root = tmp_path / "logs"
    (root / "dc1" / "2024").mkdir(parents=True)
    (root / "dc2").mkdir()
    (root / "dc1" / "2024" / "groups.evtx").symlink_to(corpus(GROUPS))
    (root / "dc1" / "services.evtx").symlink_to(corpus(SERVICES))
    (root / "dc2" / "ntlm.evtx").symlink_to(corpus(NTLM))
    (root / "dc2" / "groups.xml.gz").write_bytes(gzip.compress(shape_wevtutil(GROUPS)))
    (root / "dc2" / "nxlog.zip").symlink_to(corpus(NXLOG))
    return root


def _sum_counts(*rels: str) -> Counter:
    total: Counter = Counter()
    for rel in rels:
        total.update(manifest_entry(rel)["event_counts"])
    return total


def test_directory_is_recursed(tmp_path: Path) -> None:
    """A directory's files, sub-directories included; counts add up (read in parallel by default)."""
    proc = run_cli("events", str(_tree(tmp_path)), "--jsonl")
    assert proc.returncode == 0, _err(proc)
    assert Counter(_counts(jsonl_objects(proc.stdout))) == _sum_counts(GROUPS, SERVICES, NTLM, GROUPS, NXLOG)
    assert re.search(r"^5 file\(s\), \d+ record\(s\) read$", _err(proc), re.M)


def test_directory_order_with_one_job(tmp_path: Path) -> None:
    """With one reader: a folder's own files (sorted) before its sub-folders', each file's events in order."""
    proc = run_cli("events", str(_tree(tmp_path)), "--jsonl", "--jobs", "1")
    assert proc.returncode == 0, _err(proc)
    objs = jsonl_objects(proc.stdout)
    order = list(dict.fromkeys(Path(o["origin"]["source"]).name for o in objs))
    assert order == ["services.evtx", "groups.evtx", "groups.xml.gz", "ntlm.evtx", "nxlog.zip"]
    ntlm = [o["record_id"] for o in objs if o["origin"]["source"].endswith("ntlm.evtx")]
    assert ntlm == sorted(ntlm) and len(ntlm) == manifest_entry(NTLM)["records"]
    assert {o["origin"].get("member") for o in objs if o["origin"]["source"].endswith(".gz")} == {"groups.xml"}


def test_id_filter(tmp_path: Path) -> None:
    """`--id 4776,7045` yields only those ids, all of them; the summary still counts every record."""
    proc = run_cli("events", str(_tree(tmp_path)), "--id", "4776,7045", "--jsonl")
    assert proc.returncode == 0, _err(proc)
    objs = jsonl_objects(proc.stdout)
    total = _sum_counts(GROUPS, SERVICES, NTLM, GROUPS, NXLOG)
    assert _counts(objs) == {k: total[k] for k in ("4776", "7045") if total[k]}
    assert set(_counts(objs)) == {"4776", "7045"}
    assert f"{sum(total.values())} record(s) read" in _err(proc)


@pytest.mark.parametrize("bad", ["abc", "4776,x", "47.76"])
def test_bad_id_is_a_usage_error(bad: str) -> None:
    proc = run_cli("events", str(corpus(GROUPS)), "--id", bad)
    assert proc.returncode == 2
    assert "expected event ids like 4776,7045" in _err(proc)
    assert proc.stdout == b""


def test_usage_errors() -> None:
    """No path, or an unknown --format, is refused by the command line itself."""
    assert run_cli("events").returncode == 2
    assert run_cli("events", str(corpus(GROUPS)), "--format", "csv").returncode == 2


def test_default_table() -> None:
    """Without --jsonl: a header, then one row per event with UTC time, id, computer, record and data."""
    proc = run_cli("events", str(corpus(GROUPS)))
    assert proc.returncode == 0, _err(proc)
    lines = proc.stdout.decode("utf-8").splitlines()
    assert lines[0].split() == ["time", "(UTC)", "id", "computer", "record", "data"]
    assert len(lines) == 1 + manifest_entry(GROUPS)["records"]
    first = lines[1].split()
    assert first[:6] == ["2020-07-12", "06:01:13.758", "4728", "rootdc1.offsec.lan", "16088263",
                         "MemberName=CN=honey-pot1,OU=Test-OU,OU=OFFSEC-COMPANY,DC=offsec,DC=lan"]
    assert [ln.split()[2] for ln in lines[1:]] == ["4728", "4756", "4756", "4756"]


def test_summary_on_stderr() -> None:
    """stderr: files and records, events by id with the catalogue titles; nothing of it on stdout."""
    proc = run_cli("events", str(corpus(GROUPS)), "--jsonl")
    err = _err(proc)
    assert "1 file(s), 4 record(s) read" in err and "skipped" not in err
    assert re.search(r"4728\s*│\s*1\s*│\s*A member was added to a security-enabled global group", err)
    assert re.search(r"4756\s*│\s*3\s*│\s*A member was added to a security-enabled universal group", err)
    assert b"record(s) read" not in proc.stdout


def test_partially_damaged_file_exits_zero() -> None:
    """Good records out, the bad one named on one stderr line, the reason counted in the summary."""
    proc = run_cli("events", str(corpus(DAMAGED)), "--jsonl")
    entry = manifest_entry(DAMAGED)
    assert proc.returncode == 0
    assert _counts(jsonl_objects(proc.stdout)) == entry["event_counts"]
    err = _err(proc)
    problems = [ln for ln in err.splitlines() if ln.startswith("dcsentry: ")]
    assert len(problems) == entry["parse_errors"]
    assert all(ln.startswith(f"dcsentry: {corpus(DAMAGED)}@") for ln in problems)
    assert f"{entry['records']} record(s) read, {entry['parse_errors']} skipped" in err
    assert f"skipped: evtx-record x{entry['parse_errors']}" in err


def test_garbage_only_exits_nonzero(tmp_path: Path) -> None:
    """Nothing readable at all (a garbage file, a missing path) is the one failure exit."""
    junk = tmp_path / "notes.bin"
    junk.write_bytes(b"\x00\x01 this is not an event log \xff" * 50)
    proc = run_cli("events", str(junk))
    assert proc.returncode == 1
    assert f"dcsentry: {junk}: unrecognised format".encode() in proc.stderr
    assert "skipped: format x1" in _err(proc)
    missing = run_cli("events", str(tmp_path / "nope.evtx"))
    assert missing.returncode == 1 and b"no such file or directory" in missing.stderr


def test_garbage_beside_good_input_exits_zero(tmp_path: Path) -> None:
    """One unreadable file among good ones is reported, but the run succeeded."""
    junk = tmp_path / "notes.bin"
    junk.write_bytes(b"\x00garbage" * 10)
    proc = run_cli("events", str(junk), str(corpus(GROUPS)), "--jsonl")
    assert proc.returncode == 0
    assert len(jsonl_objects(proc.stdout)) == 4
    assert "2 file(s), 4 record(s) read, 1 skipped" in _err(proc)


def test_empty_export_is_not_an_error(tmp_path: Path) -> None:
    """`wevtutil qe ... /f:xml > f.xml` with no matching event writes an empty file: no events, exit 0."""
    empty = tmp_path / "none.xml"
    empty.write_bytes(b"")
    proc = run_cli("events", str(empty), "--jsonl")
    assert proc.returncode == 0 and proc.stdout == b""
    assert "1 file(s), 0 record(s) read" in _err(proc) and "skipped" not in _err(proc)


def test_whole_evtx_corpus_directory() -> None:
    """The corpus's EVTX tree in one run: every file found, totals equal the manifest's."""
    root = corpus("evtx/deepbluecli/new-user-security.evtx").parents[1]
    entries = [e for e in manifest() if e["path"].startswith("evtx/")]
    proc = run_cli("events", str(root), "--jsonl")
    assert proc.returncode == 0
    total: Counter = Counter()
    for e in entries:
        total.update(e["event_counts"])
    assert Counter(_counts(jsonl_objects(proc.stdout))) == total
    assert f"{len(entries)} file(s)" in _err(proc)


def test_problem_lines_cannot_inject_into_the_terminal(tmp_path: Path) -> None:
    """A file name with a line break and an ANSI escape, and lxml quoting broken input, stay one
    printable line each on stderr (a forged second line could pass for a real message)."""
    evil = tmp_path / "a\nb\x1b[31mc.xml"
    evil.write_bytes(b"<Event><System><EventID>1</EventID></System>\x00</Evnt>")
    proc = run_cli("events", str(evil), "--jsonl")
    assert proc.returncode == 1
    problems = [ln for ln in _err(proc).splitlines() if ln.startswith("dcsentry: ")]
    assert len(problems) == 1, _err(proc)
    assert "\x1b" not in _err(proc) and "a\\x0ab\\x1b[31mc.xml" in problems[0]


def test_event_without_a_time_is_kept_and_warned(tmp_path: Path) -> None:
    """No TimeCreated: the event is valid otherwise, so it is kept (1970-01-01) and the gap is said."""
    xml = ('<Event xmlns="http://schemas.microsoft.com/win/2004/08/events/event"><System>'
           '<Provider Name="Microsoft-Windows-Security-Auditing"/><EventID>4776</EventID>'
           '<EventRecordID>7</EventRecordID><Channel>Security</Channel><Computer>DC1</Computer></System>'
           '<EventData><Data Name="TargetUserName">bob</Data><Data Name="Status">0x0</Data></EventData></Event>')
    path = tmp_path / "notime.xml"
    path.write_text(xml)
    for jobs in ("1", "2"):
        r = run_cli("events", "--jsonl", "--jobs", jobs, str(path), str(path))
        assert r.returncode == 0, r.stderr
        assert [o["time"] for o in jsonl_objects(r.stdout)] == ["1970-01-01T00:00:00Z"] * 2
        err = r.stderr.decode()
        assert "notime.xml" in err and "event time missing or unreadable" in err
        assert "kept with warnings: time x2" in err
