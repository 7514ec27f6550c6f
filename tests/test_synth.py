"""The synthetic traffic generator: its files read back exactly, it is deterministic, its labels are
true, the everyday mix has what false-positive measurement needs, and it streams in bounded memory.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
import tracemalloc
from collections import Counter, defaultdict
from datetime import datetime, timedelta, timezone
from functools import cache

import pytest
from click.testing import CliRunner

from dcsentry.config import Detection
from dcsentry.formats import ReadStats, read_stream
from dcsentry.formats.jsonl import read_jsonl
from dcsentry.formats.xml import parse_event_xml, read_xml
from dcsentry.model import WindowsEvent
from dcsentry.synth import ATTACK_TYPES, DEFAULT_START, demo_sample, generate, render, write_events
from dcsentry.synth.attacks import CHAINS, SCENARIOS, select
from dcsentry.synth.cli import synth

FIELDS = ("event_id", "provider", "channel", "computer", "time", "record_id", "data", "keywords", "user_sid",
          "level", "task")
MORNING = DEFAULT_START + timedelta(hours=8)


@cache
def small_run() -> tuple[tuple[WindowsEvent, ...], tuple]:
    """Three office hours of a 40-user domain with every attack (compact), materialised once."""
    events, labels = generate(seed=3, hours=3, users=40, start=MORNING, compact=True)
    return tuple(events), tuple(labels)


@cache
def day_run(attacks: str) -> tuple[tuple[WindowsEvent, ...], tuple]:
    events, labels = generate(seed=11, hours=24, users=200, dcs=2, attacks=attacks)
    return tuple(events), tuple(labels)


def assert_same(got: list[WindowsEvent], want: tuple[WindowsEvent, ...], fields: tuple[str, ...] = FIELDS) -> None:
    assert len(got) == len(want)
    for i, (a, b) in enumerate(zip(got, want)):
        for f in fields:
            got_, want_ = getattr(a, f), getattr(b, f)
            assert got_ == want_, f"event #{i} ({b.event_id}) {f}: {got_!r} != {want_!r}"


def as_bytes(events, fmt: str) -> bytes:
    buf = io.BytesIO()
    write_events(events, buf, fmt)
    return buf.getvalue()


# -- round trips through the project's own readers ----------------------------------------------
def test_xml_round_trip_through_read_xml():
    events, _ = small_run()
    assert {e.event_id for e in events} >= {4776, 8004, 4768, 4769, 4771, 4624, 4728, 4732, 4756, 4757, 7045, 4697,
                                            4720}
    stats = ReadStats()
    got = list(read_xml(io.BytesIO(as_bytes(events, "xml")), "synth.xml", stats))
    assert stats.skipped_total == 0, stats.problems
    assert_same(got, events)


def test_each_event_parses_alone():
    events, _ = small_run()
    one_of_each = {e.event_id: e for e in events}.values()
    for ev in one_of_each:
        back = parse_event_xml(render(ev, "xml"))
        assert_same([back], (ev,))


def test_evtx_json_round_trip_through_read_jsonl():
    events, _ = small_run()
    stats = ReadStats()
    got = list(read_jsonl(io.BytesIO(as_bytes(events, "jsonl")), "synth.jsonl", stats))
    assert stats.skipped_total == 0, stats.problems
    assert_same(got, events)
    line = render(next(e for e in events if e.event_id == 7045), "jsonl")
    assert json.loads(line)["Event"]["System"]["EventID"] == {"#attributes": {"Qualifiers": 16384}, "#text": 7045}
    assert json.loads(render(next(e for e in events if e.event_id == 8004), "jsonl"))["Event"]["EventData"][
        "SChannelType"] == 2


def test_winlogbeat_round_trip_keeps_what_winlogbeat_carries():
    """Winlogbeat has no Level/Task numbers, millisecond @timestamp, and only names audit keywords."""
    events, _ = small_run()
    stats = ReadStats()
    got = list(read_jsonl(io.BytesIO(as_bytes(events, "winlogbeat")), "wlb.jsonl", stats))
    assert stats.skipped_total == 0, stats.problems
    assert_same(got, events, ("event_id", "provider", "channel", "computer", "record_id", "data", "user_sid"))
    for a, b in zip(got, events):
        assert a.time == b.time.replace(microsecond=b.time.microsecond // 1000 * 1000)
        if b.channel == "Security" and b.provider == "Microsoft-Windows-Security-Auditing":
            assert a.keywords == b.keywords  # (1102's 0x4020... has no Winlogbeat name of its own)


@pytest.mark.parametrize("fmt", ["xml", "jsonl", "winlogbeat"])
def test_formats_are_sniffed(fmt):
    events, _ = small_run()
    stats = ReadStats()
    got = list(read_stream(io.BytesIO(as_bytes(events[:200], fmt)), "x", stats))
    assert len(got) == 200 and stats.skipped_total == 0
    assert dict(stats.formats) == {"xml" if fmt == "xml" else "jsonl": 1}


def test_xml_matches_the_documented_shape():
    events, _ = small_run()
    ev = next(e for e in events if e.event_id == 7045)
    x = render(ev, "xml")
    assert x.startswith('<Event xmlns="http://schemas.microsoft.com/win/2004/08/events/event"><System>'
                        '<Provider Name="Service Control Manager" Guid="{555908d1-a6d7-4695-8e1e-26931d2012f4}" '
                        'EventSourceName="Service Control Manager"/><EventID Qualifiers="16384">7045</EventID>')
    assert '<Keywords>0x8080000000000000</Keywords>' in x and "<Channel>System</Channel>" in x
    stamp = x.split('SystemTime="')[1].split('"')[0]
    assert len(stamp.split(".")[1]) == 8 and stamp.endswith("Z")  # 7 digits + Z
    n = render(next(e for e in events if e.event_id == 8004), "xml")
    assert "<Channel>Microsoft-Windows-NTLM/Operational</Channel>" in n and '<Security UserID="S-1-5-18"/>' in n
    assert "<Level>4</Level><Task>2</Task>" in n
    a = render(next(e for e in events if e.event_id == 4776 and e.is_failure_audit), "xml")
    assert "<Keywords>0x8010000000000000</Keywords>" in a and "<Security/>" in a


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


# -- the DC's wider Security log (reference/dc-log-alerts.md) ----------------------------------------------
DC_LOG_IDS = {4662, 5136, 5137, 5141, 4738, 4741, 4742, 4781, 4794, 4765, 4719, 4706, 1102, 104, 4885, 4886, 4887}
GET_CHANGES_ALL = "1131f6ad-9c07-11d1-f79f-00c04fc2dcd2"


def _by_label(events) -> dict[str, list[WindowsEvent]]:
    out: dict[str, list[WindowsEvent]] = defaultdict(list)
    for e in events:
        if e.origin is not None and e.origin.member:
            out[e.origin.member].append(e)
    return out


def test_dc_log_events_read_back_in_every_format():
    events, _ = small_run()
    assert {e.event_id for e in events} >= DC_LOG_IDS
    cleared = next(e for e in events if e.event_id == 1102)
    x = render(cleared, "xml")
    assert "<UserData><LogFileCleared" in x and "<EventData>" not in x and 'Name="Microsoft-Windows-Eventlog"' in x
    assert json.loads(render(cleared, "winlogbeat"))["winlog"]["user_data"]["xml_name"] == "LogFileCleared"
    trust = next(e for e in events if e.event_id == 4706)
    assert json.loads(render(trust, "jsonl"))["Event"]["EventData"]["TdoDirection"] == 3
    for fmt, reader in (("xml", read_xml), ("jsonl", read_jsonl)):
        picked = tuple(e for e in events if e.event_id in DC_LOG_IDS)
        got = list(reader(io.BytesIO(as_bytes(picked, fmt)), f"x.{fmt}", ReadStats()))
        assert_same(got, picked)


def test_every_dc_log_attack_is_labelled_and_shaped_right():
    events, labels = day_run("all")
    by = {lb.type: lb for lb in labels}
    assert set(by) == set(ATTACK_TYPES)
    mine = _by_label(events)
    ev = {lb.type: mine[lb.id] for lb in labels}
    assert all(lb.entities and (lb.entities.get("source_ip") or lb.entities.get("ca")) for lb in labels
               if lb.type in ("dcsync", "kerberoasting", "asrep-roasting", "golden-ticket", "nopac", "log-cleared"))
    # spray -> success -> Kerberoast -> DCSync, from one workstation, in that order
    spray = next(lb for lb in labels if lb.variant == "kerberos-chain")
    roast, sync = by["kerberoasting"], by["dcsync"]
    assert spray.end < roast.start < roast.end < sync.start
    assert spray.entities["source_ip"] == roast.entities["source_ip"] == sync.entities["source_ip"]
    assert roast.entities["account"] in spray.entities["guessed_accounts"]
    tickets = [e for e in ev["kerberoasting"] if e.event_id == 4769]
    assert len({e.data["ServiceName"] for e in tickets}) >= 3
    assert {e.data["TicketEncryptionType"] for e in tickets} == {"0x17"}
    rights = [e for e in ev["dcsync"] if e.event_id == 4662]
    assert any(GET_CHANGES_ALL in e.data["Properties"] for e in rights)
    assert {e.data["AccessMask"] for e in rights} == {"0x100"}
    logon = next(e for e in ev["dcsync"] if e.event_id == 4624)
    assert {e.data["SubjectLogonId"] for e in rights} == {logon.data["TargetLogonId"]}
    assert logon.data["IpAddress"] == sync.entities["source_ip"] and logon.computer == rights[0].computer
    # noPac: computer created -> SPNs cleared -> renamed to the DC's name -> TGT as that name -> back -> S4U2self
    chain = [(e.event_id, e.data.get("NewTargetUserName") or e.data.get("TargetUserName"))
             for e in ev["nopac"] if e.event_id in (4741, 4742, 4781, 4768, 4769)]
    dc_name = by["nopac"].entities["impersonated"]
    computer = by["nopac"].entities["computer"]
    ids = [i for i, _ in chain]
    assert ids[ids.index(4741):] == [4741, 4742, 4781, 4768, 4781, 4769], chain
    assert (4781, dc_name) in chain and (4768, dc_name) in chain and (4781, computer) in chain
    assert next(e for e in ev["nopac"] if e.event_id == 4742).data["ServicePrincipalNames"] == "%%1793"
    assert [e for e in ev["nopac"] if e.event_id == 4769][-1].data["TicketOptions"] == "0x40800018"
    # shadow credentials, then a PKINIT TGT for the same account
    key = next(e for e in ev["shadow-credentials"] if e.event_id == 5136)
    pkinit = next(e for e in ev["shadow-credentials"] if e.event_id == 4768 and e.data["PreAuthType"] == "16")
    assert key.data["AttributeLDAPDisplayName"] == "msDS-KeyCredentialLink" and key.data["OperationType"] == "%%14674"
    assert key.data["AttributeValue"].startswith("B:828:") and key.time < pkinit.time
    assert pkinit.data["TargetUserName"] == by["shadow-credentials"].entities["target"]
    assert pkinit.data["CertThumbprint"]
    # the log cleared on a DC: 1102 (Security, UserData) and 104 (System)
    cleared = {e.event_id: e for e in ev["log-cleared"]}
    assert cleared[1102].computer.startswith("DC") and cleared[1102].provider == "Microsoft-Windows-Eventlog"
    assert cleared[104].channel == "System" and cleared[104].data["Channel"] == "System"
    # one-event shapes
    asrep = [e for e in ev["asrep-roasting"] if e.event_id == 4768]
    assert len(asrep) >= 2 and {e.data["PreAuthType"] for e in asrep} == {"0"}
    assert {e.event_id for e in ev["golden-ticket"]} == {4769}
    assert next(e for e in ev["overpass-the-hash"] if e.event_id == 4768).data["TicketEncryptionType"] == "0x17"
    pth = next(e for e in ev["pass-the-hash"] if e.event_id == 4624)
    assert (pth.data["AuthenticationPackageName"], pth.data["KeyLength"], pth.data["LogonType"]) == ("NTLM", "0", "3")
    assert any("BCKUPKEY" in e.data.get("ObjectName", "") for e in ev["dpapi-backup-key"])
    assert any(e.event_id == 4697 for e in ev["remote-service-installation"])
    attr = {t: {e.data["AttributeLDAPDisplayName"] for e in ev[t] if e.event_id == 5136} for t in ev}
    assert attr["dcsync-rights"] == attr["adminsdholder-change"] == attr["acl-change"] == {"nTSecurityDescriptor"}
    assert "msDS-AllowedToActOnBehalfOfOtherIdentity" in attr["rbcd-change"]
    assert "servicePrincipalName" in attr["spn-added-to-user"] and "primaryGroupID" in attr["primary-group-change"]
    assert "gPCMachineExtensionNames" in attr["gpo-change"]
    assert any("%%2096" in e.data.get("UserAccountControl", "") for e in ev["preauth-disabled"])
    assert {4765} <= {e.event_id for e in ev["sid-history"]}
    assert {4742, 5137, 5141, 4662} <= {e.event_id for e in ev["dcshadow"]}
    for t, eid in (("dsrm-password-change", 4794), ("audit-policy-disabled", 4719), ("trust-created", 4706),
                   ("adcs-config-change", 4885)):
        assert eid in {e.event_id for e in ev[t]}, t
    esc = {e.event_id: e for e in ev["adcs-san-mismatch"]}
    assert "SAN:upn=administrator@" in esc[4886].data["Attributes"] and esc[4768].data["PreAuthType"] == "16"


def test_everyday_dc_log_population_is_the_same_every_day():
    """What detectors learn (RC4 pairs, no-pre-auth host, replicating accounts, key writers, GPO editors) comes
    from the domain's fixed population; everyday tickets follow a TGT; NTLM logons carry a session key."""
    from dcsentry.synth import build_domain

    d = build_domain(11, 200, 2)
    events, _ = day_run("none")
    rc4 = {(e.data["IpAddress"].removeprefix("::ffff:"), e.data["ServiceName"]) for e in events
           if e.event_id == 4769 and e.data["TicketEncryptionType"] == "0x17"}
    assert rc4 == {(m.ip, s.sam) for m, s in d.rc4_clients}
    no_preauth = {(e.data["TargetUserName"], e.data["IpAddress"]) for e in events
                  if e.event_id == 4768 and e.data["PreAuthType"] == "0"}
    assert no_preauth == {(a.sam, f"::ffff:{d.legacy_host.ip}") for a in d.no_preauth}
    rc4_tgts = {e.data["TargetUserName"] for e in events
                if e.event_id == 4768 and e.data["TicketEncryptionType"] == "0x17"}
    assert rc4_tgts == {a.sam for a in d.no_preauth}
    replicators = {e.data["SubjectUserName"] for e in events if e.event_id == 4662}
    assert replicators == {m.account for m in d.dcs} | {d.msol.sam}
    writers = {(e.data["SubjectUserName"], e.data["AttributeLDAPDisplayName"]) for e in events if e.event_id == 5136}
    assert {w for w, a in writers if a == "msDS-KeyCredentialLink"} == {d.msol.sam}
    assert {w for w, a in writers if a == "versionNumber"} <= {a.sam for a in d.gpo_admins}
    assert {e.data["SubjectUserName"] for e in events if e.event_id == 4741} <= {d.join_account.sam}
    assert all(e.data["KeyLength"] == "128" for e in events
               if e.event_id == 4624 and e.data["AuthenticationPackageName"] == "NTLM")
    resets = [e for e in events if e.event_id == 4738 and e.data["PasswordLastSet"] != "-"]
    assert resets and all(e.data["UserAccountControl"] == "-" for e in events if e.event_id == 4738)
    assert sum(e.event_id == 4724 for e in events) == len(resets)
    refresh = [e for e in events if e.event_id == 4719]
    assert all(e.data["AuditPolicyChanges"] == "%%8449, %%8451" and e.data["SubjectUserSid"] == "S-1-5-18"
               for e in refresh)
    assert any(e.event_id == 4742 and e.data["PasswordLastSet"] != "-" for e in events)
    tgt: dict[tuple[str, str], datetime] = {}
    orphans = []
    for e in events:
        if e.event_id == 4768 and e.data["Status"] == "0x0":
            tgt[(e.data["TargetUserName"].lower(), e.data["IpAddress"])] = e.time
        elif e.event_id == 4769:
            t = tgt.get((e.data["TargetUserName"].split("@")[0].lower(), e.data["IpAddress"]))
            if t is None or e.time - t > timedelta(hours=10):
                orphans.append(e)
    assert not orphans, orphans[:3]


def _alerts_for(events, seed: int, users: int):
    """Feed a generated stream to the detection engine, configured from the generator's domain."""
    from dcsentry.detectors.engine import DetectionEngine
    from dcsentry.synth import build_domain

    d = build_domain(seed, users, 2)
    cfg = Detection(honeytokens=[a.sam for a in d.honeytokens])
    cfg.replication_allowed = cfg.dcsync.allowed = [f"{d.msol.sam}={d.aadc.ip}"]
    engine = DetectionEngine(cfg)
    for e in events:
        engine.feed(e)
    engine.finish()
    return list(engine.alerts.values())


def _missed(labels, alerts) -> list[str]:
    def hit(a, lb) -> bool:
        kind = "adcs-config-change" if a.type == "health:ca-audit-filter" else a.type.removeprefix("health:")
        return kind in (lb.type, *lb.also) and a.start <= lb.end and lb.start <= a.end

    return [f"{lb.id} ({lb.variant})" for lb in labels if not any(hit(a, lb) for a in alerts)]


def test_hunting_one_seed_finds_every_attack():
    """A day of a 200-user domain: every injected attack (the DC-log ones included) raises its alert."""
    events, labels = day_run("all")
    alerts = _alerts_for(events, 11, 200)
    assert not _missed(labels, alerts), _missed(labels, alerts)


def test_hunting_the_demo_finds_every_attack(tmp_path):
    """The README's demo file, through the real `hunt` (XML reader and all): every attack type is found."""
    from dcsentry.hunt import hunt

    path = tmp_path / "demo.xml"
    labels = demo_sample(str(path), labels_path=str(tmp_path / "labels.json"))
    cfg = Detection(honeytokens=["sql-admin"])
    alerts, _ = hunt([str(path)], cfg, ReadStats())
    assert not _missed(labels, alerts), _missed(labels, alerts)


def test_an_everyday_day_raises_nothing_outside_learning():
    """The benign background alone: whatever the detectors raise on their first day says `learning`."""
    events, _ = day_run("none")
    loud = [(a.type, a.key, a.description[:160]) for a in _alerts_for(events, 11, 200) if not a.learning]
    assert not loud, loud


def test_attacks_can_wait_for_the_last_day():
    """Multi-day runs for learning detectors: attacks only from `attacks_from`, the background unchanged."""
    last = DEFAULT_START + timedelta(hours=20)
    events, labels = generate(seed=5, hours=24, users=30, attacks="all", attacks_from=last)
    assert labels and all(lb.start >= last for lb in labels)
    quiet, _ = generate(seed=5, hours=24, users=30, attacks="none")
    assert sum(1 for e in events if e.origin is None) == sum(1 for _ in quiet)


def test_one_object_one_guid():
    """The domain root's objectGUID is the same in 4662 (`%{guid}`) and 5136 (`{GUID}`)."""
    events, labels = day_run("all")
    rights = next(lb for lb in labels if lb.type == "dcsync-rights")
    mine = _by_label(events)[rights.id]
    sd = next(e for e in mine if e.event_id == 5136).data["ObjectGUID"].strip("{}").lower()
    assert {e.data["ObjectName"] for e in mine if e.event_id == 4662} == {f"%{{{sd}}}"}
    replication = {e.data["ObjectName"] for e in events if e.event_id == 4662 and e.data["ObjectServer"] == "DS"
                   and e.data["AccessMask"] == "0x100" and e.origin is None}
    assert replication == {f"%{{{sd}}}"}


def test_cli_attacks_from(tmp_path):
    out, lab = tmp_path / "run.xml", tmp_path / "labels.json"
    res = CliRunner().invoke(synth, ["--out", str(out), "--hours", "30", "--users", "15", "--labels", str(lab),
                                     "--attacks", "log-cleared,nopac", "--attacks-from", "2024-03-05"])
    assert res.exit_code == 0, res.output
    doc = json.loads(lab.read_text())
    assert {lb["type"] for lb in doc["labels"]} == {"log-cleared", "nopac"}
    assert all(lb["start"] >= "2024-03-05" for lb in doc["labels"]) and doc["params"]["attacks_from"]
