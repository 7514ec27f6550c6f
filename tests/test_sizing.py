"""`dcsentry sizing`: events per second per DC (average, busiest minute and hour, MDI's 15 busiest
minutes) from logs or the service's store, and the node count from the measured capacity table."""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from pathlib import Path

import pytest

from conftest import REPO, corpus, manifest_entry, read_file_events, run_cli
from eventfactory import event_xml, kerberos, ntlm_4776, ntlm_8004
from dcsentry.audit import capacity
from dcsentry.audit.sizing import Measure, Rates, plan, sensor_reads
from dcsentry.catalogue import CATALOGUE
from dcsentry.store.rows import Batch
from dcsentry.store.store import open_store
from storekit import pg_database, pg_url, store_url  # noqa: F401 (fixtures)


def _4776(t: float, dc: str = "DC01.contoso.local") -> str:
    return event_xml(4776, {"PackageName": "MICROSOFT_AUTHENTICATION_PACKAGE_V1_0", "TargetUserName": "u",
                            "Workstation": "W", "Status": "0x0"}, t, computer=dc)


def _8004(t: float, channel: str = "Microsoft-Windows-NTLM/Operational") -> str:
    return event_xml(8004, {"SChannelName": "S", "UserName": "u", "DomainName": "NULL", "WorkstationName": "W",
                            "SChannelType": "2"}, t, computer="DC02.contoso.local", channel=channel,
                     provider=("Microsoft-Windows-Security-Netlogon", "{e5ba83f6-07d0-46b1-8bc7-7e669a1d31dc}"))


def _known_log(tmp: Path) -> str:
    """DC01: 120 events in minute 0, 30 in minute 10, one at 7199 s. DC02: 10 8004s in minute 0, plus one
    8004 written to Security (not the NTLM channel: not read)."""
    pieces = [_4776(i * 0.5) for i in range(120)] + [_4776(600 + i) for i in range(30)] + [_4776(7199)]
    pieces += [_8004(i) for i in range(10)] + [_8004(30, channel="Security")]
    p = tmp / "dcs.xml"
    p.write_text("<Events>" + "".join(pieces) + "</Events>", encoding="utf-8")
    return str(p)


@pytest.mark.integration
def test_rates_from_known_timings(tmp_path: Path) -> None:
    res = run_cli("sizing", "--json", _known_log(tmp_path))
    assert res.returncode == 0, res.stderr
    doc = json.loads(res.stdout)
    dc1, dc2, dom = doc["dcs"]["DC01"], doc["dcs"]["DC02"], doc["domain"]
    assert dc1["events"] == 151 and dc2["events"] == 10 and dom["events"] == 161
    assert doc["ignored_records"] == 1
    assert dc1["average_eps"] == round(151 / 7199, 3)
    assert dc1["busiest_minute_eps"] == 2.0
    assert dc1["busiest_hour_eps"] == round(150 / 3600, 3)
    assert dc1["busy_15min_eps"] == round(151 / (15 * 60), 3)
    assert dom["busiest_minute_eps"] == round(130 / 60, 3)  # both DCs in minute 0
    assert dc2["by_event"] == {"8004": 10}
    assert doc["plan"]["nodes"] == 1
    assert doc["plan"]["node_events_per_s"] == capacity.NODE.events_per_s
    assert doc["measured"]["processor_events_per_s"] == capacity.NODE.processor_events_per_s


@pytest.mark.integration
def test_table_output(tmp_path: Path) -> None:
    res = run_cli("sizing", _known_log(tmp_path))
    out = res.stdout.decode()
    assert res.returncode == 0
    assert "DC01" in out and "DC02" in out and "all DCs" in out
    assert "dcsentry nodes: 1" in out and "20,029" in out


def test_nodes_from_measured_capacity() -> None:
    cap = capacity.NODE.events_per_s
    # a busiest minute above one node's measured rate needs a second node
    burst = Measure()
    burst.domain = Rates(int(cap * 60 * 1.5), 0.0, 86400.0, Counter({0: int(cap * 60 * 1.5)}), Counter({4776: 1}))
    p = plan(burst)
    assert p.nodes == 2 and any("busiest minute" in w for w in p.why)
    # a busiest hour above 70 % of it, evenly spread, too
    hour = Measure()
    per_min = int(cap * capacity.PLANNING_UTILISATION * 60 * 1.2)
    hour.domain = Rates(per_min * 60, 0.0, 3600.0, Counter({m: per_min for m in range(60)}), Counter({4776: 1}))
    assert plan(hour).nodes == 2
    quiet = Measure()
    quiet.domain = Rates(100, 0.0, 3600.0, Counter({0: 100}), Counter({4776: 100}))
    p = plan(quiet)
    assert (p.nodes, p.cores, p.memory_gb) == (1, capacity.NODE.cores, capacity.NODE.memory_gb)
    assert p.disk_gb_per_day == pytest.approx(100 / 3600 * 86400 * capacity.NODE.store_bytes_per_event / 1e9)


def test_only_events_the_sensor_reads_count() -> None:
    ntlm = "Microsoft-Windows-NTLM/Operational"
    assert sensor_reads(8004, ntlm) and sensor_reads(8006, ntlm)
    assert not sensor_reads(8004, "Security") and not sensor_reads(4688, "Security")
    assert not sensor_reads(7045, "Security") and sensor_reads(7045, "System")


@pytest.mark.integration
def test_real_evtx_counts_match_the_manifest() -> None:
    """A real Security log: what sizing counts is what the corpus manifest counts for the catalogue's ids."""
    rel = "evtx/omerbenamram-evtx/security.evtx"
    expected = sum(n for eid, n in manifest_entry(rel)["event_counts"].items() if int(eid) in CATALOGUE)
    res = run_cli("sizing", "--json", str(corpus(rel)))
    doc = json.loads(res.stdout)
    assert doc["domain"]["events"] == expected
    events, _ = read_file_events(corpus(rel))
    minutes = Counter(int(e.time.timestamp() // 60) for e in events if e.event_id in CATALOGUE)
    assert doc["domain"]["busiest_minute_eps"] == round(max(minutes.values()) / 60, 3)


@pytest.mark.integration
def test_synthetic_domain_file(tmp_path: Path) -> None:
    out = tmp_path / "d.jsonl"
    assert run_cli("synth", "--out", str(out), "--users", "20", "--hours", "2", "--dcs", "2").returncode == 0
    events, _ = read_file_events(out)
    want = Counter(e.computer.split(".")[0].upper() for e in events if sensor_reads(e.event_id, e.channel))
    doc = json.loads(run_cli("sizing", "--json", str(out)).stdout)
    assert {dc: r["events"] for dc, r in doc["dcs"].items()} == dict(want)
    assert doc["domain"]["hours"] == pytest.approx(2, abs=0.1)


@pytest.mark.integration
def test_from_the_service_store(tmp_path: Path, store_url: str) -> None:
    """`--store` takes the URL `serve --store` takes (SQLite and PostgreSQL) and, for SQLite, a bare path."""
    store = open_store(store_url, tmp_path)
    evs = [ntlm_4776(i, "a") for i in range(50)] + [ntlm_8004(i, "S", "a", "W") for i in range(50)] + \
          [kerberos(4768, 3600 + i, "a", "0x0") for i in range(10)]
    store.commit_batch(Batch(events=[(e, 0.0, False) for e in evs]))
    store.close()
    wheres = [store_url] + ([str(tmp_path / "store.db")] if store_url.startswith("sqlite:") else [])
    for where in wheres:
        res = run_cli("sizing", "--json", "--store", where)
        assert res.returncode == 0, res.stderr
        doc = json.loads(res.stdout)
        assert doc["dcs"]["DC01"]["events"] == 110
        assert doc["dcs"]["DC01"]["busiest_minute_eps"] == round(100 / 60, 3)
    assert run_cli("sizing", "--store", str(tmp_path / "none.db")).returncode == 2
    down = run_cli("sizing", "--store", "postgresql://127.0.0.1:1/none?connect_timeout=2")
    assert down.returncode == 2 and b"cannot open the PostgreSQL store" in down.stderr


def test_capacity_figures_are_documented_with_their_source() -> None:
    """The table and docs/readiness.md state the same measured numbers, and say how each was measured."""
    doc = (REPO / "docs/readiness.md").read_text(encoding="utf-8")
    src = capacity.__doc__ or ""
    n = capacity.NODE
    for figure in (n.processor_events_per_s, n.processor_events_per_cpu_s, n.hunt_events_per_cpu_s,
                   n.syslog_tcp_msgs_per_s, n.syslog_tls_msgs_per_s, n.syslog_udp_msgs_per_s,
                   n.store_bytes_per_event):
        text = f"{figure:,.0f}"
        assert text in src and text in doc, text
    for command in ("dcsentry hunt --jsonl", "dcsentry synth", "bench/bench_syslog_rx.py"):
        assert command in src and command in doc
    assert re.search(r"planning rule", src) and math.isclose(capacity.PLANNING_UTILISATION, 0.7)
