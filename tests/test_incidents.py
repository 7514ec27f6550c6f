"""Incidents (incidents/, docs/incidents.md): recordings of one attack give one incident, unrelated
recordings stay apart, the synthetic domain's chains come out whole, merges are recorded."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from dcsentry.alerts import Alert
from dcsentry.config import Detection
from dcsentry.formats import ReadStats
from dcsentry.hunt import hunt, link_incidents
from dcsentry.incidents import IncidentEngine

CORPUS = Path("/work/shared/corpus")
PURPLESHARP = CORPUS / "json/otrf-security-datasets/purplesharp_ad_playbook_I.zip"
OTRF = CORPUS / "dc-log/json/otrf-security-datasets"
UNRELATED = [PURPLESHARP, OTRF / "empire_mimikatz_backupkeys_dcerpc_smb_lsarpc.zip",
             OTRF / "covenant_dcsync_dcerpc_drsuapi_DsGetNCChanges.zip",
             OTRF / "empire_powerview_ldap_ntsecuritydescriptor.zip", OTRF / "empire_shell_rubeus_asktgt_ptt.zip",
             OTRF / "auditpol_system_user_auditpolicy_modification.zip",
             CORPUS / "dc-log/evtx/evtx-to-mitre-attack/ID4662-DCsync attack using Mimikatz.evtx",
             CORPUS / "dc-log/evtx/evtx-attack-samples/persistence_security_dcshadow_4742.evtx"]
T0 = datetime(2024, 3, 4, 9, 0, tzinfo=UTC)


def _file_of(alert: Alert) -> set[str]:
    return {e.origin.split("!")[0].rsplit("@", 1)[0] for e in alert.evidence if e.origin}


def test_purplesharp_spray_then_kerberoast_is_one_incident():
    """A spray over NTLM named WORKSTATION5 and a Kerberoast from 172.18.39.5: one host, learned from the
    workstation's own outbound 5156s, so one incident."""
    alerts, engine = hunt([str(PURPLESHARP)], Detection(), ReadStats())
    assert engine.ctx.hosts.name_of("172.18.39.5") == "WORKSTATION5"
    incidents = link_incidents(alerts, Detection(), engine)
    assert len(incidents) == 1
    inc = incidents[0]
    assert [a.type for a in inc.alerts] == ["password-spray", "kerberoasting"]
    assert inc.title == "Password spray from WORKSTATION5, then Kerberoasting by pgustavo"
    assert {a.incident for a in alerts} == {inc.id}
    host = next(e for e in inc.entities if e["name"] == "WORKSTATION5")
    assert "source" in host["roles"] and "172.18.39.5" in host["seen_as"]
    assert [a.tactic for a in inc.alerts] == ["Credential Access", "Credential Access"]
    # without the host alias table the two alerts share nothing: two incidents
    assert len(IncidentEngine().link_all(alerts)) == 2


def test_unrelated_recordings_do_not_merge():
    """Eight recordings of different labs and days hunted together: every incident holds one file's alerts,
    and the purplesharp story is still exactly its two alerts."""
    alerts, engine = hunt([str(p) for p in UNRELATED], Detection(), ReadStats())
    incidents = link_incidents(alerts, Detection(), engine)
    by_id = {a.id: a for a in alerts}
    for inc in incidents:
        files = set().union(*(_file_of(by_id[x.id]) for x in inc.alerts))
        assert len(files) == 1, (inc.title, files)
    assert len({a.incident for a in alerts if a.kind == "security"}) == len(incidents) >= 8
    spray = next(i for i in incidents if i.alerts[0].type == "password-spray")
    assert [a.type for a in spray.alerts] == ["password-spray", "kerberoasting"]


def _synth(seed: int = 11):
    from dcsentry.detectors.engine import DetectionEngine
    from dcsentry.synth import build_domain, generate

    events, labels = generate(seed=seed, hours=12, users=100, dcs=2, attacks="all")
    d = build_domain(seed, 100, 2)
    cfg = Detection(honeytokens=[a.sam for a in d.honeytokens])
    cfg.replication_allowed = cfg.dcsync.allowed = [f"{d.msol.sam}={d.aadc.ip}"]
    engine = DetectionEngine(cfg)
    for e in events:
        engine.feed(e)
    engine.finish()
    alerts = list(engine.alerts.values())
    return alerts, labels, IncidentEngine(cfg.incidents, engine.ctx).link_all(alerts)


@pytest.mark.parametrize("seed", [11, 12, 13])
def test_synthetic_chains_are_one_incident_each_and_nothing_else(seed: int):
    """Each injected multi-step attack (synth/attacks.py CHAINS: labels sharing a chain id, and noPac's
    computer created -> renamed to a DC's name -> TGT as the DC) gives one incident holding every alert
    of its steps and no other alert, over three seeds."""
    from dcsentry.synth.attacks import CHAINS

    alerts, labels, incidents = _synth(seed)
    chains = _chains(labels, CHAINS)
    assert {name.rsplit("-", 1)[0] for name in chains} == set(CHAINS), (sorted(chains), sorted(CHAINS))
    chains.update({lb.id: [lb.id] for lb in labels if lb.type == "nopac"})
    assert any(lb.type == "nopac" for lb in labels)
    by_label: dict[str, set[str]] = defaultdict(set)
    for a in alerts:
        for e in a.evidence:
            if e.origin and e.origin.startswith("synth!"):
                by_label[e.origin.split("!", 1)[1].split("@")[0]].add(a.id)
    for name, ids in chains.items():
        mine = set().union(*(by_label[i] for i in ids))
        assert len(mine) >= len(ids), (name, ids)
        homes = {a.incident for a in alerts if a.id in mine}
        assert len(homes) == 1, (name, homes)
        inc = next(i for i in incidents if i.id in homes)
        assert {x.id for x in inc.alerts} == mine, (name, inc.title)


def _chains(labels, chains: dict) -> dict[str, list[str]]:
    """Label ids per injected chain: a label of the chain's first step type, then one of each next step type
    from the same source address, in order (a first step without all its followers is no chain)."""
    out: dict[str, list[str]] = {}
    for kind, steps in chains.items():
        heads = [lb for lb in labels if lb.type == steps[0] and lb.entities.get("source_ip")]
        for head in heads:
            ids, after = [head.id], head.start
            for step in steps[1:]:
                nxt = [lb for lb in labels if lb.type == step and lb.start >= after
                       and lb.entities.get("source_ip") == head.entities["source_ip"]]
                if not nxt:
                    break
                first = min(nxt, key=lambda lb: lb.start)
                ids.append(first.id)
                after = first.start
            if len(ids) == len(steps):
                out[f"{kind}-{len([k for k in out if k.startswith(kind + '-')])}"] = ids
    return out


# -- the engine on alerts built here -------------------------------------------------------------
def _alert(type_: str, key: str, minutes: float, *, accounts=(), hosts=(), dcs=("DC01",), details=None,
           severity: str = "high") -> Alert:
    t = T0 + timedelta(minutes=minutes)
    return Alert(type_, key, type_, "", severity, "T0000", t, t + timedelta(seconds=30), accounts=list(accounts),
                 hosts=list(hosts), dcs=list(dcs), details=dict(details or {}))


def test_a_later_alert_merges_two_incidents_into_the_older():
    eng = IncidentEngine()
    a = _alert("password-spray", "WS1", 0, accounts=["u1", "u2"], hosts=["WS1"], details={"source": "WS1"})
    b = _alert("dcsync", "jdoe", 30, accounts=["CORP\\jdoe"], hosts=["WS9"])
    first, second = eng.link(a).incident.id, eng.link(b).incident.id
    assert first != second
    c = _alert("kerberoasting", "WS1", 60, accounts=["jdoe"], hosts=["WS1"], details={"source": "WS1"})
    res = eng.link(c)
    assert res.merged == [second] and len(eng.incidents) == 1 and eng.resolve(second) == first
    inc = res.incident
    assert inc.id == a.incident == b.incident == c.incident
    assert inc.merged[0]["by"] == c.id and [x.type for x in inc.alerts] == ["password-spray", "dcsync", "kerberoasting"]
    assert inc.severity == "critical" and inc.dominance
    assert inc.title == "Password spray from WS1, then DCSync and Kerberoasting by jdoe"


def test_feeds_link_across_hosts_and_windows_apart():
    """The account a spray guessed, acting hours later from elsewhere: linked by the feed rule; a DC or a
    sprayed-but-not-guessed account shared is not a link; the same host past the window is a new story."""
    eng = IncidentEngine()
    spray = _alert("password-spray", "WS1", 0, accounts=["u1", "u2"], hosts=["WS1"],
                   details={"source": "WS1", "guessed_accounts": ["u2"]})
    used = _alert("dcsync", "u2", 10 * 60, accounts=["CORP\\u2"], hosts=["10.0.0.9"])
    other = _alert("kerberoasting", "10.0.0.7", 20, accounts=["u1"], hosts=["10.0.0.7"])
    late = _alert("brute-force", "WS1", 5 * 60, accounts=["x"], hosts=["WS1"], details={"source": "WS1"})
    for x in (spray, used, other, late):
        eng.link(x)
    assert spray.incident == used.incident
    assert other.incident != spray.incident and late.incident != spray.incident
    via = [lk["via"] for lk in eng.incidents[spray.incident].links]
    assert any("guessed then used: u2" in v for v in via)


def test_an_alert_that_grows_pulls_its_incident_together():
    """Serve sees a spray before it guesses anything; when it grows, the guessed account's later use joins."""
    eng = IncidentEngine()
    spray = _alert("password-spray", "WS1", 0, accounts=["u2"], hosts=["WS1"], details={"source": "WS1"})
    eng.link(spray)
    used = _alert("golden-ticket", "u2", 90, accounts=["u2"], hosts=["10.0.0.9"])
    eng.link(used)
    assert used.incident != spray.incident
    spray.details["guessed_accounts"] = ["u2"]
    spray.revision += 1
    res = eng.link(spray)
    assert used.incident == spray.incident and len(eng.incidents) == 1 and res.merged
    assert eng.link(spray).merged == []  # idempotent


def test_health_alerts_have_no_incident():
    eng = IncidentEngine()
    h = _alert("health:log-cleared", "DC01", 0)
    h.kind = "health"
    assert eng.link(h) is None and h.incident is None


@pytest.mark.integration
def test_hunt_cli_prints_incidents_and_jsonl_carries_them(tmp_path):
    exe = [sys.executable, "-m", "dcsentry.cli", "hunt", str(PURPLESHARP)]
    out = subprocess.run([*exe, "--incidents"], capture_output=True, text=True, check=True).stdout
    incidents = [json.loads(line) for line in out.splitlines()]
    assert len(incidents) == 1
    inc = incidents[0]
    assert {"id", "title", "severity", "start", "end", "entities", "alerts"} <= set(inc)
    assert [a["type"] for a in inc["alerts"]] == ["password-spray", "kerberoasting"]
    lines = subprocess.run([*exe, "--jsonl"], capture_output=True, text=True, check=True).stdout.splitlines()
    assert {json.loads(x)["incident"] for x in lines} == {inc["id"]}
    assert {json.loads(x)["id"] for x in lines} == {a["id"] for a in inc["alerts"]}


def test_finished_incidents_are_forgotten_and_new_ones_start():
    """The service's engine drops incidents past both windows; the same host later starts a new story."""
    eng = IncidentEngine()
    a = _alert("kerberoasting", "WS1", 0, accounts=["u1"], hosts=["WS1"])
    eng.link(a)
    assert eng.expire((T0 + timedelta(hours=1)).timestamp()) == 1 and not eng.incidents and not eng._seen
    b = _alert("kerberoasting", "WS1", 30 * 60, accounts=["u1"], hosts=["WS1"])
    assert eng.link(b).incident.id != a.incident and len(eng.incidents) == 1


def _built_chains(seed: int = 11):
    """A 6-hour background of the synthetic domain (no attacks) with two multi-step attacks written here with
    the generator's own builders: brute force -> the guessed admin installs a service on a DC; a computer
    account created -> renamed to a DC's name -> a TGT as the DC (noPac). Events carry their chain's tag."""
    import heapq

    from dcsentry.detectors.engine import DetectionEngine
    from dcsentry.synth import DEFAULT_START, build_domain, generate
    from dcsentry.synth.attacks import Attacks
    from dcsentry.synth.domain import HOUR_US, US

    d = build_domain(seed, 100, 2)
    atk = Attacks(d, seed=seed)
    atk.b.out = []
    t0 = int(DEFAULT_START.timestamp()) * US
    # 1. NTLM brute force on an admin from a workstation, the last guess right; the admin then installs a
    #    service on a DC from that workstation
    atk.tag("chain-bf-service")
    admin, ws, dc = d.admins[0], d.users[5].workstation, d.dcs[0]
    us = t0 + 2 * HOUR_US
    for i in range(40):
        us = atk.b.ntlm(us, admin.sam, ws.name, d.servers["FS02"], 0 if i == 39 else 0xC000006A)
        us += 2 * US
    us, lid = atk.session(us + 300 * US, dc, admin, ws)
    atk.b.service(atk.b.later(us, 300, 3000), dc, "updsvc", r"%systemroot%\updsvc.exe", "user mode service",
                  "demand start", "LocalSystem", admin, lid)
    # 2. noPac from another user's workstation
    atk.tag("chain-nopac")
    atk.nopac(t0 + 4 * HOUR_US, HOUR_US)
    built = sorted(atk.b.out, key=lambda p: p[0])
    background, _ = generate(seed=seed, hours=6, users=100, dcs=2, attacks="none")
    cfg = Detection(honeytokens=[a.sam for a in d.honeytokens])
    cfg.replication_allowed = cfg.dcsync.allowed = [f"{d.msol.sam}={d.aadc.ip}"]
    engine = DetectionEngine(cfg)
    for ev in heapq.merge(background, (ev for _, ev in built), key=lambda e: e.time):
        engine.feed(ev)
    engine.finish()
    alerts = list(engine.alerts.values())
    return alerts, IncidentEngine(cfg.incidents, engine.ctx).link_all(alerts)


def test_built_multi_step_attacks_are_one_incident_each_and_nothing_else():
    alerts, incidents = _built_chains()
    for tag, must in (("chain-bf-service-1", {"brute-force", "remote-service-installation"}),
                      ("chain-nopac-1", {"nopac"})):
        mine = {a.id for a in alerts if any(e.origin and e.origin.startswith(f"synth!{tag}") for e in a.evidence)}
        types = {a.type for a in alerts if a.id in mine}
        assert must <= types, (tag, types)
        homes = {a.incident for a in alerts if a.id in mine}
        assert len(homes) == 1, (tag, homes)
        inc = next(i for i in incidents if i.id in homes)
        assert {x.id for x in inc.alerts} == mine, (tag, inc.title, [x.type for x in inc.alerts])


def test_the_window_is_configurable(tmp_path):
    """`[detection.incidents] window`: two alerts from one host 90 minutes apart are one story under the
    default (4 h), two under a one-hour window; unknown keys are refused."""
    from dcsentry.config import load_config

    path = tmp_path / "dcsentry.toml"
    path.write_text("[detection.incidents]\nwindow = 3600\nfeed_window = 7200\n")
    cfg = load_config(path).detection.incidents
    assert (cfg.window, cfg.feed_window) == (3600.0, 7200.0)
    for settings, stories in ((None, 1), (cfg, 2)):
        eng = IncidentEngine(settings)
        eng.link(_alert("kerberoasting", "WS1", 0, accounts=["u1"], hosts=["WS1"]))
        eng.link(_alert("asrep-roasting", "WS1", 90, accounts=["svc"], hosts=["WS1"]))
        assert len(eng.incidents) == stories
    path.write_text("[detection.incidents]\nwindw = 1\n")
    with pytest.raises(ValueError, match="unknown setting 'windw'"):
        load_config(path)
