"""The distributed mode's routing, message ids and counter merge: what keeps each detection key on
one worker and makes a redelivery harmless. Pure functions; the process tests are next door."""

from __future__ import annotations

import subprocess
import sys

import pytest

from eventfactory import DC, T0, group_change, kerberos, logon_4625, ntlm_4776, ntlm_8004, service_7045
from servekit import DCSENTRY

from dcsentry.activities import AuthActivity
from dcsentry.activities.builder import ActivityBuilder
from dcsentry.runtime.counters import merged_counters
from dcsentry.activities.keys import dc_of, detection_key
from dcsentry.runtime.routing import Envelope, Router, decode, encode, msg_id, partition_of
from dcsentry.config import Detection
from dcsentry.model import WindowsEvent

P = 16


def test_a_detection_key_is_the_source_the_detectors_count_by() -> None:
    builder = ActivityBuilder()
    events = [logon_4625(1, "alice", ip="10.1.2.3", workstation="KALI"), logon_4625(2, "bob", ip="-", workstation="KALI"),
              kerberos(4771, 3, "carol", "0x18", ip="::ffff:10.7.7.7"), kerberos(4768, 4, "dave", "0x6", ip="10.8.8.8"),
              ntlm_4776(5, "erin", workstation="\\\\WS01", status="0xc000006a")]
    for ev in events:
        acts = [a for a in builder.feed(ev) + builder.flush() if isinstance(a, AuthActivity)]  # 4768 is also a ticket
        assert len(acts) == 1
        assert detection_key(ev) == "src:" + acts[0].source


def test_an_attack_from_one_source_stays_on_one_partition() -> None:
    r = Router([], P)
    brute = {r.route(logon_4625(i, f"user{i % 7}", ip="10.1.2.3"))[0] for i in range(50)}
    assert len(brute) == 1  # brute force and spray from 10.1.2.3: every attempt on one worker
    # the NTLM join: the 4776 and the 8004 that names the server meet on the same partition
    assert r.route(ntlm_4776(1, "erin", workstation="WS01")) == r.route(ntlm_8004(1, "SRV01", "erin", "WS01"))
    # group changes by the actor (its baseline and alert), services by the host they were installed on
    by_actor = {r.route(group_change(4728, i, "Domain Admins", "S-1-5-21-1-512", member_name=f"CN=m{i}", actor="admin",
                                     actor_sid="S-1-5-21-1-1107", dc=f"DC{i}.contoso.local"))[0] for i in range(5)}
    assert len(by_actor) == 1
    assert detection_key(service_7045(1, "psexesvc", "C:\\x.exe", host="SRV9.contoso.local")) == "host:SRV9"


def test_dc_log_events_meet_their_partners_on_one_partition() -> None:
    """A logon and the actions under its logon id (DCSync's 4662) share a partition; Kerberos service
    tickets go by client address like TGTs (Kerberoasting counts per source)."""
    def make(eid: int, data: dict[str, str], rid: int) -> WindowsEvent:
        return WindowsEvent(eid, "Microsoft-Windows-Security-Auditing", "Security", DC, T0, rid, data)

    logon = make(4624, {"TargetLogonId": "0x11B8C741", "LogonType": "3", "IpAddress": "10.23.23.9"}, 1)
    access = make(4662, {"SubjectLogonId": "0x11b8c741", "AccessMask": "0x100"}, 2)
    assert detection_key(logon) == detection_key(access) == "sess:DC01|0x11b8c741"
    tgs = make(4769, {"TargetUserName": "eve@CONTOSO.LOCAL", "IpAddress": "::ffff:10.9.9.9"}, 3)
    assert detection_key(tgs) == "src:10.9.9.9"
    assert dc_of(tgs) == "DC01"


def test_honeytoken_events_also_go_flagged_to_the_token_partition() -> None:
    r = Router(["CONTOSO\\decoy"], P)
    ev = kerberos(4771, 1, "Decoy", "0x18", ip="10.1.2.3")
    routes = r.route(ev)
    assert routes[0] == (partition_of("src:10.1.2.3", P), False)
    assert routes[1] == (partition_of("token:decoy", P), True)
    assert len(r.route(kerberos(4771, 1, "alice", "0x18", ip="10.1.2.3"))) == 1
    member = group_change(4728, 1, "Domain Admins", "S-1-5-21-1-512", member_name="CN=decoy,CN=Users,DC=contoso,DC=local")
    assert r.route(member)[1] == (partition_of("token:decoy", P), True)


@pytest.mark.integration
def test_partitions_are_stable_across_processes() -> None:
    """Every ingest node must route a key alike: a checksum, not Python's per-process salted hash."""
    code = "from dcsentry.runtime.routing import partition_of; print(partition_of('src:10.1.2.3', 16))"
    for seed in ("1", "2"):
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                             env={"PYTHONHASHSEED": seed})
        assert int(out.stdout) == partition_of("src:10.1.2.3", 16)


def test_message_ids_are_the_store_key_or_a_content_hash_in_a_trust_class() -> None:
    ev = kerberos(4771, 1, "alice", "0x18")
    assert msg_id(ev) == f"u|{DC}|Security|{ev.record_id}"
    assert msg_id(ev, trusted=True) == f"a|{DC}|Security|{ev.record_id}"  # a WEF copy is not the syslog one
    a = ev.__class__(**{f: getattr(ev, f) for f in ev.__struct_fields__} | {"record_id": None})
    b = ev.__class__(**{f: getattr(ev, f) for f in ev.__struct_fields__} | {"record_id": None, "origin": None})
    assert msg_id(a) == msg_id(b) and msg_id(a).startswith("u|h|")  # the peer/position does not change it
    env = Envelope(ev, 12.5, "10.0.0.1", dc=True, trusted=True)
    assert decode(encode(env)) == env


def test_counters_of_all_nodes_add_up_and_dead_nodes_leave_the_gauges() -> None:
    rows = {
        "ingest:a": {"received": {"tcp": 5}, "connections_open": 2, "saved_at": 1000.0,
                     "parse": {"parsed": 4, "failed": 1, "failed_by_peer": {"h1": 1}, "samples": {"h1": "x"}}},
        "ingest:b": {"received": {"tcp": 7}, "connections_open": 3, "saved_at": 10.0, "parse": {"parsed": 7}},
        "detect:a": {"by_event": {"4771": 11}, "by_alert": {"brute-force": 2}, "lag": 4, "saved_at": 1000.0},
        "detect:b": {"by_event": {"4771": 1}, "lag": 9, "saved_at": 10.0},
        "processor": {"parsed": 99},
    }
    m = merged_counters(rows, now=1001.0)
    assert m["ingest"]["received"] == {"tcp": 12} and m["ingest"]["connections_open"] == 2
    assert m["ingest"]["spool_depth"] == 4
    assert m["processor"]["parsed"] == 11 and m["processor"]["failed_by_peer"] == {"h1": 1}
    assert m["processor"]["by_event"] == {"4771": 12} and m["processor"]["by_alert"] == {"brute-force": 2}


@pytest.mark.integration
def test_roles_other_than_all_need_a_bus(tmp_path) -> None:
    out = subprocess.run(DCSENTRY + ["serve", "--data-dir", str(tmp_path), "--role", "detect"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode != 0 and "--role detect needs --bus" in out.stderr
