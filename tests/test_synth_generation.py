"""The synthetic traffic generator: it is deterministic, its labels are true, the everyday mix has
what false-positive measurement needs, and it streams in bounded memory.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tracemalloc
from collections import Counter, defaultdict
from datetime import datetime, timedelta, timezone

import pytest
from click.testing import CliRunner

from dcsentry.cli.synth import synth
from dcsentry.formats import ReadStats, read_stream
from dcsentry.model import WindowsEvent
from dcsentry.synth import ATTACK_TYPES, DEFAULT_START, demo_sample, generate
from dcsentry.synth.attacks import CHAINS, SCENARIOS, select
from synthkit import MORNING, as_bytes, day_run


# -- determinism, ordering ------------------------------------------------------------------------
def test_same_seed_same_bytes_other_seed_other_bytes():
    def run(seed: int, fmt: str) -> bytes:
        return as_bytes(generate(seed=seed, hours=1, users=30, start=MORNING)[0], fmt)

    assert run(5, "xml") == run(5, "xml")
    assert run(5, "jsonl") == run(5, "jsonl")
    assert run(5, "xml") != run(6, "xml")


def test_sorted_by_time_and_records_increase_per_dc_and_channel():
    events, _ = day_run("all")
    assert all(a.time <= b.time for a, b in zip(events, events[1:]))
    last: dict[tuple[str, str], int] = {}
    for e in events:
        key = (e.computer, e.channel)
        assert e.record_id > last.get(key, 0)
        last[key] = e.record_id
    assert {c for c, _ in last} == {"DC01.corp.contoso.com", "DC02.corp.contoso.com", "CA01.corp.contoso.com"}


# -- labels -----------------------------------------------------------------------------------------
def test_labels_match_the_stream():
    events, labels = day_run("all")
    assert {lb.type for lb in labels} == set(ATTACK_TYPES)
    tagged: dict[str, list[WindowsEvent]] = defaultdict(list)
    for e in events:
        if e.origin is not None and e.origin.member:
            tagged[e.origin.member].append(e)
    assert set(tagged) == {lb.id for lb in labels}
    for lb in labels:
        mine = tagged[lb.id]
        assert len(mine) == lb.events and lb.events > 0
        assert dict(Counter(e.event_id for e in mine)) == lb.event_ids
        assert all(lb.contains(e.time) for e in mine)
        assert mine[0].time == lb.start and mine[-1].time == lb.end
        assert lb.records == [(e.computer, e.channel, e.record_id) for e in mine]
        assert lb.technique.startswith("T")
        d = lb.to_dict()
        assert json.loads(json.dumps(d))["id"] == lb.id


@pytest.mark.parametrize("hours", [0.02, 0.3])
def test_short_runs_squeeze_every_attack_inside(hours):
    events, labels = generate(seed=8, hours=hours, users=20)
    end = DEFAULT_START + timedelta(hours=hours)
    seen = Counter(e.origin.member for e in events if e.origin is not None)
    assert len(labels) == len(SCENARIOS) + sum(len(c) - 1 for c in CHAINS.values())
    assert all(seen[lb.id] == lb.events for lb in labels)
    assert all(DEFAULT_START <= lb.start <= lb.end < end for lb in labels)


def test_attack_shapes():
    events, labels = day_run("all")
    by = {(lb.type, lb.variant): lb for lb in labels}
    assert set(by) >= {("brute-force", "ntlm"), ("brute-force", "kerberos"), ("password-spray", "ntlm"),
                       ("password-spray", "ntlm-slow"), ("password-spray", "kerberos"),
                       ("account-enumeration", "ntlm"), ("account-enumeration", "kerberos"),
                       ("honeytoken-activity", "ntlm+kerberos"), ("sensitive-group-addition", "domain-admins"),
                       ("sensitive-group-addition", "enterprise-admins-add-remove"),
                       ("sensitive-group-addition", "dnsadmins"), ("remote-code-execution", "psexec")}
    assert 30 <= len(by["password-spray", "ntlm"].entities["accounts"]) <= 300
    slow = by["password-spray", "ntlm-slow"]
    assert slow.end - slow.start >= timedelta(hours=1)
    assert by["password-spray", "kerberos"].event_ids.get(4771, 0) >= 29
    assert by["account-enumeration", "kerberos"].event_ids == {4768: by["account-enumeration", "kerberos"].events}
    assert by["sensitive-group-addition", "enterprise-admins-add-remove"].event_ids.keys() >= {4720, 4756, 4757}
    assert 4728 in by["sensitive-group-addition", "domain-admins"].event_ids
    assert 4732 in by["sensitive-group-addition", "dnsadmins"].event_ids
    services = {lb.entities["image_path"] for lb in labels if "image_path" in lb.entities}
    assert any(p.startswith("%COMSPEC% /c echo") and "\\\\.\\pipe\\" in p for p in services)
    assert any("-enc " in p for p in services) and any("\\Temp\\" in p for p in services)
    assert any(p.startswith("\\\\127.0.0.1\\ADMIN$\\") for p in services)
    assert by["remote-code-execution", "psexec"].entities["service_name"] == "PSEXESVC"
    ht = by["honeytoken-activity", "ntlm+kerberos"].entities["account"]
    assert all(ht not in (e.data.get("TargetUserName"), e.data.get("UserName")) for e in events if e.origin is None)


def test_every_4776_has_its_8004():
    """NTLM pass-through: the 8004 sits on the same DC, same user and workstation, within a second."""
    events, _ = day_run("all")
    recent: dict[tuple[str, str, str], datetime] = {}
    unmatched = []
    for e in events:
        if e.event_id == 8004:
            recent[(e.computer, e.data["UserName"], e.data["WorkstationName"])] = e.time
        elif e.event_id == 4776:
            t = recent.get((e.computer, e.data["TargetUserName"], e.data["Workstation"]))
            if t is None or e.time - t > timedelta(seconds=1):
                unmatched.append(e)
    # only an admin's NTLM logon to the DC itself (RDP by address) has no pass-through 8004
    assert all(e.data["TargetUserName"].startswith("adm-") for e in unmatched)


def test_everyday_only_has_no_attacks_and_is_the_background_of_all():
    quiet, labels = day_run("none")
    assert labels == () and all(e.origin is None for e in quiet)
    noisy, _ = day_run("all")
    background = [e for e in noisy if e.origin is None]
    assert len(background) == len(quiet)
    assert all(a.time == b.time and a.data == b.data and a.computer == b.computer for a, b in zip(background, quiet))


def test_everyday_mix_has_the_benign_look_alikes():
    events, _ = day_run("none")
    status = Counter(e.data["Status"] for e in events if e.event_id == 4776)
    assert {"0x0", "0xc000006a", "0xc0000064"} <= set(status)
    assert status["0x0"] > 5 * status["0xc000006a"]
    assert any(e.event_id == 4771 and e.data["Status"] == "0x18" for e in events)
    assert any(e.event_id == 4768 and e.data["Status"] == "0x6" for e in events)
    stale = [e.time for e in events if e.event_id == 4776 and e.data["TargetUserName"] == "svc_report"]
    gaps = {round((b - a).total_seconds() / 60) for a, b in zip(stale, stale[1:])}
    assert len(stale) > 200 and gaps <= {4, 5, 6}
    assert any(e.event_id == 7045 and e.data["ServiceName"].startswith("MpKsl") for e in events)
    groups = [e for e in events if e.event_id in (4728, 4729, 4732, 4733, 4756, 4757)]
    assert any(e.data["SubjectUserName"].startswith("hd-") for e in groups)
    sensitive = {"Domain Admins", "Enterprise Admins", "DnsAdmins", "Administrators", "Backup Operators",
                 "Server Operators", "Group Policy Creator Owners"}
    assert all(e.data["SubjectUserName"].startswith("adm-") for e in groups if e.data["TargetUserName"] in sensitive)
    hours = Counter(e.time.hour for e in events)
    assert hours[10] > 3 * hours[3]  # office hours are busier than the night


def test_rarer_failures_appear_in_a_working_week():
    """Expired passwords and lockouts (a phone with the old password polling Exchange)."""
    events, _ = generate(seed=2, hours=24 * 5, users=200, attacks="none")
    status = Counter(e.data["Status"] for e in events if e.event_id == 4776)
    assert status["0xc0000071"] >= 1 and status["0xc0000234"] >= 2


# -- selection, volume, memory, packaging -------------------------------------------------------------
def test_attack_selection():
    assert select("all") == list(ATTACK_TYPES) and select("none") == [] and select(None) == []
    assert select("remote-code-execution, brute-force") == ["brute-force", "remote-code-execution"]
    with pytest.raises(ValueError, match="unknown attack"):
        select("brute-force,silver-ticket")
    _, labels = generate(seed=1, hours=2, users=30, attacks="honeytoken-activity,brute-force")
    assert {lb.type for lb in labels} == {"honeytoken-activity", "brute-force"}


def test_rate_sets_the_volume():
    events, _ = generate(seed=4, hours=1, users=50, attacks="none", rate=5.0)
    assert 0.7 * 18000 < sum(1 for _ in events) < 1.3 * 18000


def test_bounded_memory_for_a_large_run():
    events, _ = generate(seed=1, hours=2, users=2000, rate=30.0)
    tracemalloc.start()
    try:
        n = 0
        for _ in events:
            n += 1
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert n >= 200_000
    assert peak < 16 << 20, f"peak {peak / 2**20:.1f} MiB for {n} events"


@pytest.mark.integration
def test_api_does_not_need_the_cli():
    code = ("import sys; from dcsentry.synth import generate; ev, lb = generate(hours=0.2, users=20); "
            "n = sum(1 for _ in ev); assert n > 0; "
            "assert 'dcsentry.cli' not in sys.modules and 'click' not in sys.modules, sorted(sys.modules)")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_demo_sample(tmp_path):
    path, lpath = tmp_path / "demo.xml", tmp_path / "demo.labels.json"
    labels = demo_sample(str(path), labels_path=str(lpath))
    assert path.stat().st_size < 1 << 20
    assert {lb.type for lb in labels} == set(ATTACK_TYPES)
    stats = ReadStats()
    with open(path, "rb") as fh:
        events = list(read_stream(fh, str(path), stats))
    assert stats.skipped_total == 0 and 600 <= len(events)
    doc = json.loads(lpath.read_text())
    assert doc["domain"]["honeytokens"] == ["sql-admin"] and len(doc["labels"]) == len(labels)
    again = tmp_path / "again.xml"
    demo_sample(str(again))
    assert again.read_bytes() == path.read_bytes()


def test_cli_writes_events_and_labels(tmp_path):
    out, lab = tmp_path / "run.jsonl.gz", tmp_path / "labels.json"
    res = CliRunner().invoke(synth, ["--out", str(out), "--hours", "1", "--users", "30", "--seed", "9",
                                     "--labels", str(lab), "--attacks", "password-spray,remote-code-execution",
                                     "--start", "2024-03-05T09:00:00"])
    assert res.exit_code == 0, res.output
    stats = ReadStats()
    with open(out, "rb") as fh:
        events = list(read_stream(fh, str(out), stats))
    assert stats.skipped_total == 0 and events and events[0].time >= datetime(2024, 3, 5, 9, tzinfo=timezone.utc)
    doc = json.loads(lab.read_text())
    assert {lb["type"] for lb in doc["labels"]} == {"password-spray", "remote-code-execution"}
    assert sum(lb["events"] for lb in doc["labels"]) == sum(len(lb["records"]) for lb in doc["labels"])
    bad = CliRunner().invoke(synth, ["--out", str(tmp_path / "x.xml"), "--attacks", "nope"])
    assert bad.exit_code != 0 and "unknown attack" in bad.output

