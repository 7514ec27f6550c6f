"""Kerberos ticket detections: kerberoasting, AS-REP roasting, golden ticket, overpass-the-hash
(reference/dc-log-alerts.md B2-B4), on the corpus recordings and on synthetic edges."""

from __future__ import annotations

import pytest

from conftest import corpus
from dclog_kerberoskit import (ADVERTIZED_AES, ADVERTIZED_RC4, ATTACKER, CLIENT, V2_AES_KEYS, V2_RC4_KEYS, logon,
                               sid, tgs, tgt, v2_tgs, v2_tgt)
from dcsentry.activities.context import Inventory
from dcsentry.activities.dclog.kerberos import TicketRequest
from dcsentry.alerts import Alert
from dcsentry.config import Detection
from dcsentry.detectors.baseline import Baseline
from dcsentry.detectors.engine import DetectionEngine
from dcsentry.formats import ReadStats
from dcsentry.hunt import hunt
from eventfactory import of_type

DAY = 86400.0
KERBEROS_TYPES = ("kerberoasting", "asrep-roasting", "golden-ticket", "overpass-the-hash")
EVTX = "dc-log/evtx/evtx-to-mitre-attack/"


def hunted(rel: str, type_: str) -> list[Alert]:
    alerts, _ = hunt([str(corpus(rel))], Detection(), ReadStats())
    return [a for a in alerts if a.type == type_]


def engine_with(inv: Inventory | None = None, cfg: Detection | None = None) -> DetectionEngine:
    return DetectionEngine(cfg or Detection(), Baseline(), inventory=inv)


def feed(engine: DetectionEngine, events: list) -> DetectionEngine:
    for ev in events:
        engine.feed(ev)
    engine.finish()
    return engine


# -- the activity ---------------------------------------------------------------------------------
def test_ticket_request_fields_and_inventory() -> None:
    e = engine_with()
    e.feed(tgt(0, "alice", rid=1300))
    e.feed(tgs(1, "alice", "Svc-SQL", etype="0x12", ip=ATTACKER))
    acts = [a for a in e.last_activities if isinstance(a, TicketRequest)]
    assert len(acts) == 1
    a = acts[0]
    assert (a.kind, a.tgt, a.account, a.realm, a.service, a.status, a.etype, a.source_ip, a.host, a.transmitted) == \
        ("ticket", False, "alice", "CONTOSO.LOCAL", "Svc-SQL", 0, 0x12, "10.0.0.66", "DC01", "")
    assert a.subject == "Svc-SQL" and a.canonical_realm is True and a.v2 == {}
    assert e.ctx.inventory.exists("alice") is True and e.ctx.inventory.get("alice").sid == sid(1300)
    assert e.ctx.inventory.is_dc("DC01")


def test_ticket_request_v2_fields_synthetic() -> None:
    e = engine_with()
    e.feed(tgt(0, "alice", etype="0x17", v2=v2_tgt(V2_AES_KEYS, ADVERTIZED_RC4)))
    a = next(x for x in e.last_activities if isinstance(x, TicketRequest))
    assert a.v2["AccountAvailableKeys"] == "AES-SHA1, RC4" and a.v2["ClientAdvertizedEncryptionTypes"] == "RC4-HMAC-NT"
    assert a.preauth_etype == 0x17 and a.preauth == "2" and a.account_sid == sid(1105)


def test_failed_tgt_does_not_prove_the_account() -> None:
    e = feed(engine_with(), [tgt(0, "nobody", status="0x6")])
    assert e.ctx.inventory.exists("nobody") is None


# -- kerberoasting ----------------------------------------------------------------------------------
def test_kerberoast_single_rc4_ticket_recording() -> None:
    """One RC4 ticket for Svc-SQL-DB01, a user service with no learned RC4 use: Medium."""
    (a,) = hunted(EVTX + "ID4769-Kerberoast ticket with low encryption.evtx", "kerberoasting")
    assert a.severity == "medium" and a.hosts == ["10.23.23.9"] and a.accounts == ["admmig"]
    assert a.details["services"] == {"Svc-SQL-DB01": "RC4-HMAC"} and a.count == 1
    assert "Svc-SQL-DB01" in a.description and "gMSA" in a.description


def test_kerberoast_purplesharp_recording() -> None:
    (a,) = hunted("json/otrf-security-datasets/purplesharp_ad_playbook_I.zip", "kerberoasting")
    assert a.severity == "high" and a.count == 5 and a.hosts == ["172.18.39.5"]
    assert set(a.details["services"]) == {"sysmonsvc", "nxlogsvc", "defensesvc", "otrsvc", "mordorsvc"}


@pytest.mark.parametrize("rel", [EVTX + "ID4769-Kerberos TGS host enumeration (Bloodhound).evtx",
                                 EVTX + "ID4769-Golden ticket issued.evtx",
                                 "json/otrf-security-datasets/empire_wmic_add_user_backdoor.zip"])
def test_kerberoast_quiet_on_aes_and_computer_tickets(rel: str) -> None:
    assert not hunted(rel, "kerberoasting")


def test_kerberoast_threshold_edge_synthetic() -> None:
    """Two services (threshold - 1) stay Medium; the third within 10 min makes it High."""
    e = feed(engine_with(), [tgs(0, "eve", "svc-a", ip=ATTACKER), tgs(1, "eve", "svc-b", ip=ATTACKER)])
    (a,) = of_type(e, "kerberoasting")
    assert a.severity == "medium" and a.count == 2
    e.feed(tgs(599, "eve", "svc-c", ip=ATTACKER))
    assert a.severity == "high" and a.details["max_services_in_window"] == 3


def test_kerberoast_window_edge_synthetic() -> None:
    """Three services spread over more than the window: never three in 10 min, so not High."""
    e = feed(engine_with(), [tgs(0, "eve", "svc-a", ip=ATTACKER), tgs(301, "eve", "svc-b", ip=ATTACKER),
                             tgs(602, "eve", "svc-c", ip=ATTACKER)])
    (a,) = of_type(e, "kerberoasting")
    assert a.severity == "medium" and a.details["max_services_in_window"] == 2


@pytest.mark.parametrize("kw", [dict(service="SQL0{}$"), dict(service="krbtgt"), dict(account="WS01$"),
                                dict(etype="0x12"), dict(etype="0x11"), dict(status="0x25")])
def test_kerberoast_quiet_on_machines_aes_and_failures(kw: dict) -> None:
    """Computer services (BloodHound), krbtgt, computer requesters, AES tickets and failures."""
    args = {"account": "eve", "service": "svc-{}", "etype": "0x17", "status": "0x0"} | kw
    e = feed(engine_with(), [tgs(i, args["account"], args["service"].format(i), etype=args["etype"],
                                 status=args["status"], ip=ATTACKER) for i in range(5)])
    assert not of_type(e, "kerberoasting")


def test_kerberoast_legacy_pairs_learned_then_new_source_synthetic() -> None:
    """A legacy client of an RC4-only service: one learning-period alert, then quiet; after the
    learning period a new source for that service still alerts (Medium)."""
    events = [tgs(d * DAY, "app01", "svc-legacy", ip=CLIENT) for d in range(9)]
    e = feed(engine_with(), events)
    (first,) = of_type(e, "kerberoasting")
    assert first.learning and first.count == 1
    e.feed(tgs(9 * DAY, "eve", "svc-legacy", ip=ATTACKER))
    alerts = of_type(e, "kerberoasting")
    assert len(alerts) == 2 and alerts[1].severity == "medium" and not alerts[1].learning
    assert alerts[1].details["reasons"] == ["new-pair"]


def test_kerberoast_legacy_service_new_pair_quiet_while_learning_synthetic() -> None:
    e = feed(engine_with(), [tgs(0, "app01", "svc-legacy", ip=CLIENT),
                             tgs(2 * 3600, "app02", "svc-legacy", ip="::ffff:10.0.0.22"),
                             tgs(DAY, "app01", "svc-legacy", ip=CLIENT)])
    assert len(of_type(e, "kerberoasting")) == 1  # the first sighting of the service only


def test_kerberoast_sensitive_or_honeytoken_service_is_high_synthetic() -> None:
    inv = Inventory()
    inv.learn("svc-admin", sid(2001)).sensitive = True
    e = feed(engine_with(inv), [tgs(0, "eve", "svc-admin", ip=ATTACKER)])
    assert [a.severity for a in of_type(e, "kerberoasting")] == ["high"]
    e = feed(engine_with(cfg=Detection(honeytokens=["svc-decoy"])), [tgs(0, "eve", "svc-decoy", ip=ATTACKER)])
    (a,) = of_type(e, "kerberoasting")
    assert a.severity == "high" and a.details["reasons"] == ["honeytoken"]


def test_kerberoast_forced_rc4_by_v2_fields_synthetic() -> None:
    """Learned legacy pair, yet the v2 fields show AES keys on the service and no AES offered."""
    base = [tgs(d * DAY, "app01", "svc-a", ip=CLIENT) for d in range(8)]
    e = feed(engine_with(), base + [tgs(8 * DAY + 60, "app01", "svc-a", ip=CLIENT,
                                        v2=v2_tgs(V2_AES_KEYS, ADVERTIZED_RC4))])
    alerts = of_type(e, "kerberoasting")
    assert len(alerts) == 2 and alerts[1].details["reasons"] == ["forced"] and "forced" in alerts[1].description
    quiet = feed(engine_with(), base + [tgs(8 * DAY + 60, "app01", "svc-a", ip=CLIENT,
                                            v2=v2_tgs(V2_RC4_KEYS, ADVERTIZED_RC4))])
    assert len(of_type(quiet, "kerberoasting")) == 1


def test_kerberoast_allowed_source_quiet() -> None:
    cfg = Detection()
    cfg.kerberos.allowed_sources = ["10.0.0.66"]
    e = feed(engine_with(cfg=cfg), [tgs(i, "eve", f"svc-{i}", ip=ATTACKER) for i in range(5)])
    assert not of_type(e, "kerberoasting")


# -- AS-REP roasting ----------------------------------------------------------------------------
def test_asrep_roasting_recording() -> None:
    (a,) = hunted(EVTX + "ID4768-Kerberos AS-REP Roasting.evtx", "asrep-roasting")
    assert a.severity == "medium" and a.accounts == ["admin-test"] and a.hosts == ["10.23.23.9"]
    assert a.details["rc4"] and "pre-authentication" in a.description


@pytest.mark.parametrize("rel", ["evtx/evtx-attack-samples/kerberos_pwd_spray_4771.evtx",
                                 EVTX + "ID4738-Do not require Kerberos preauthentication.evtx",
                                 "dc-log/json/otrf-security-datasets/empire_shell_rubeus_asktgt_ptt.zip"])
def test_asrep_quiet_on_preauthenticated_and_failed_requests(rel: str) -> None:
    assert not hunted(rel, "asrep-roasting")


def test_asrep_multi_account_is_high_synthetic() -> None:
    e = feed(engine_with(), [tgt(0, "u1", preauth="0", etype="0x17", ip=ATTACKER, rid=1201)])
    (a,) = of_type(e, "asrep-roasting")
    assert a.severity == "medium"
    e.feed(tgt(599, "u2", preauth="0", etype="0x17", ip=ATTACKER, rid=1202))
    assert a.severity == "high" and a.count == 2 and a.accounts == ["u1", "u2"]
    e.feed(tgt(650, "u3", preauth="0", etype="0x17", ip=ATTACKER, rid=1203))
    assert a.count == 3 and len(of_type(e, "asrep-roasting")) == 1


def test_asrep_window_edge_and_aes_single_is_low_synthetic() -> None:
    e = feed(engine_with(), [tgt(0, "u1", preauth="0", etype="0x12", ip=ATTACKER, rid=1201),
                             tgt(601, "u2", preauth="0", etype="0x12", ip=ATTACKER, rid=1202)])
    (a,) = of_type(e, "asrep-roasting")
    assert a.severity == "low" and a.details["max_accounts_in_window"] == 1


@pytest.mark.parametrize("kw", [dict(preauth="2"), dict(account="WS01$"), dict(status="0x6")])
def test_asrep_quiet_on_preauth_machines_failures(kw: dict) -> None:
    args = {"account": "u1", "preauth": "0", "status": "0x0"} | kw
    e = feed(engine_with(), [tgt(0, args["account"], preauth=args["preauth"], status=args["status"], ip=ATTACKER)])
    assert not of_type(e, "asrep-roasting")


def test_asrep_legacy_pair_learned_new_ip_alerts_synthetic() -> None:
    """Learning period: the legacy client alerts once (learning), then is quiet; after it, a new
    address for that account alerts, and a new legacy pair is quiet once seen over 7 days."""
    events = [tgt(d * DAY, "legacy", preauth="0", ip=CLIENT, rid=1250) for d in range(10)]
    e = feed(engine_with(), events)
    (a,) = of_type(e, "asrep-roasting")
    assert a.learning and a.count == 1
    e.feed(tgt(10 * DAY, "legacy", preauth="0", ip=ATTACKER, rid=1250))
    alerts = of_type(e, "asrep-roasting")
    assert len(alerts) == 2 and not alerts[1].learning and alerts[1].hosts == ["10.0.0.66"]
    for d in range(11, 19):
        e.feed(tgt(d * DAY, "legacy", preauth="0", ip=ATTACKER, rid=1250))
    n = len(of_type(e, "asrep-roasting"))
    e.feed(tgt(19 * DAY, "legacy", preauth="0", ip=ATTACKER, rid=1250))
    assert len(of_type(e, "asrep-roasting")) == n  # seen over 7 days without a High alert: learned


def test_asrep_roasting_pairs_never_learned_synthetic() -> None:
    """After the learning period, a source that roasted several accounts (High) never becomes a
    legacy client of them; during it, a legacy client of two accounts is told once."""
    e = engine_with()
    e.feed(tgt(0, "legacy", preauth="0", ip=CLIENT, rid=1250))  # starts the learning clock
    for d in range(8, 18):
        e.feed(tgt(d * DAY, "u1", preauth="0", ip=ATTACKER, rid=1201))
        e.feed(tgt(d * DAY + 1, "u2", preauth="0", ip=ATTACKER, rid=1202))
    e.finish()
    roasts = [a for a in of_type(e, "asrep-roasting") if a.hosts == ["10.0.0.66"]]
    assert len(roasts) == 10 and all(a.severity == "high" and not a.learning for a in roasts)
    e = feed(engine_with(), [tgt(d * DAY + i, f"u{i}", preauth="0", ip=CLIENT, rid=1201 + i)
                             for d in range(10) for i in range(2)])
    (a,) = of_type(e, "asrep-roasting")
    assert a.learning and a.severity == "high"


# -- golden ticket ---------------------------------------------------------------------------------
def test_golden_ticket_recording() -> None:
    (a,) = hunted(EVTX + "ID4769-Golden ticket issued.evtx", "golden-ticket")
    assert a.severity == "high" and a.count == 8 and a.details["tells"] == ["realm"] and a.details["no_tgt"]
    assert a.accounts == ["gold-non-existing-user@offsec.lan"] and a.hosts == ["10.23.23.9"]
    assert "krbtgt password twice" in a.description


@pytest.mark.parametrize("rel", ["dc-log/json/otrf-security-datasets/cmd_dumping_ntds_dit_file_ntdsutil.zip",
                                 "json/otrf-security-datasets/purplesharp_ad_playbook_I.zip",
                                 "json/otrf-security-datasets/empire_wmic_add_user_backdoor.zip",
                                 EVTX + "ID4768-4769-Kerberos host ticket without a trailing $.evtx",
                                 EVTX + "ID4769-Kerberoast ticket with low encryption.evtx"])
def test_golden_ticket_quiet_on_kdc_issued_tickets(rel: str) -> None:
    assert not hunted(rel, "golden-ticket")


def test_golden_ticket_nonexistent_account_synthetic() -> None:
    inv = Inventory()
    inv.learn("alice", sid(1300), source="imported")
    inv.imported = True
    e = feed(engine_with(inv), [tgs(0, "alice", "SRV01$", etype="0x12"),
                                tgs(1, "ghost", "SRV01$", etype="0x12", ip=ATTACKER)])
    (a,) = of_type(e, "golden-ticket")
    assert a.details["tells"] == ["nonexistent"] and a.severity == "high" and a.accounts == ["ghost@CONTOSO.LOCAL"]
    # the forged ticket's logon on a server grows the same alert
    e.feed(logon(2, "ghost", sid(500), host="SRV01.contoso.local"))
    assert a.count == 2 and "SRV01" in a.description


def test_golden_ticket_deleted_account_synthetic() -> None:
    e = engine_with()
    e.feed(tgt(0, "bob", rid=1400))
    e.ctx.inventory.forget("bob")
    feed(e, [tgs(DAY, "bob", "SRV01$", etype="0x12", ip=ATTACKER)])
    assert [a.details["tells"] for a in of_type(e, "golden-ticket")] == [["nonexistent"]]


def test_golden_ticket_unknown_or_trusted_accounts_quiet_synthetic() -> None:
    """Without an imported inventory nobody can say an account does not exist; a trusted realm
    may spell itself in lower case."""
    e = feed(engine_with(), [tgs(0, "ghost", "SRV01$", etype="0x12", ip=ATTACKER),
                             tgs(1, "partner", "SRV01$", etype="0x12", realm="fabrikam.com", ip=ATTACKER)])
    assert not of_type(e, "golden-ticket")


def test_golden_ticket_lower_case_own_realm_synthetic() -> None:
    e = feed(engine_with(), [tgs(0, "administrator", "SRV01$", etype="0x12", realm="contoso.local", ip=ATTACKER)])
    (a,) = of_type(e, "golden-ticket")
    assert a.details["tells"] == ["realm"] and a.severity == "high"


def _aes_history(days: int) -> list:
    out = []
    for d in range(days):
        out.append(tgt(d * DAY, "alice", rid=1300))
        out += [tgs(d * DAY + 10 + i, "alice", "SRV01$", etype="0x12") for i in range(2)]
    return out


def test_golden_ticket_downgrade_after_learning_synthetic() -> None:
    """AES-only account and service for 6 days, then an RC4 ticket from an address that got no TGT."""
    e = feed(engine_with(), _aes_history(6) + [tgs(6 * DAY, "alice", "SRV01$", etype="0x17", ip=ATTACKER)])
    (a,) = of_type(e, "golden-ticket")
    assert a.details["tells"] == ["downgrade"] and a.severity == "medium" and a.details["no_tgt"]


def test_golden_ticket_downgrade_quiet_while_learning_or_with_tgt_synthetic() -> None:
    e = feed(engine_with(), _aes_history(3) + [tgs(3 * DAY, "alice", "SRV01$", etype="0x17", ip=ATTACKER)])
    assert not of_type(e, "golden-ticket")
    e = feed(engine_with(), _aes_history(6) + [tgt(6 * DAY, "alice", rid=1300, ip=ATTACKER),
                                               tgs(6 * DAY + 5, "alice", "SRV01$", etype="0x17", ip=ATTACKER)])
    assert not of_type(e, "golden-ticket")


# -- overpass-the-hash ---------------------------------------------------------------------------
def test_overpass_the_hash_rubeus_recording() -> None:
    """Rubeus asktgt /rc4: RC4 TGT with password pre-auth, the realm typed in lower case."""
    (a,) = hunted("dc-log/json/otrf-security-datasets/empire_shell_rubeus_asktgt_ptt.zip", "overpass-the-hash")
    assert a.accounts == ["pgustavo"] and a.hosts == ["172.18.39.6"] and a.details["tells"] == ["tool-realm"]
    assert a.severity == "medium" and "NT hash" in a.description


@pytest.mark.parametrize("rel", ["json/otrf-security-datasets/purplesharp_ad_playbook_I.zip",
                                 "evtx/evtx-attack-samples/kerberos_pwd_spray_4771.evtx",
                                 EVTX + "ID4768-Kerberos AS-REP Roasting.evtx",
                                 EVTX + "ID4768-4769-Kerberos host ticket without a trailing $.evtx"])
def test_overpass_the_hash_quiet_on_other_tgts(rel: str) -> None:
    assert not hunted(rel, "overpass-the-hash")


def test_overpass_the_hash_forced_rc4_v2_synthetic() -> None:
    e = feed(engine_with(), [tgt(0, "alice", etype="0x17", ip=ATTACKER, v2=v2_tgt(V2_AES_KEYS, ADVERTIZED_RC4))])
    (a,) = of_type(e, "overpass-the-hash")
    assert a.severity == "high" and a.details["tells"] == ["forced"]


def test_overpass_the_hash_aes_keys_v2_synthetic() -> None:
    e = feed(engine_with(), [tgt(0, "alice", etype="0x12", ip=ATTACKER,
                                 v2=v2_tgt(V2_AES_KEYS, ADVERTIZED_AES, preauth_etype="0x17"))])
    (a,) = of_type(e, "overpass-the-hash")
    assert a.severity == "medium" and a.details["tells"] == ["aes-keys"]


def test_overpass_the_hash_rc4_only_account_quiet_synthetic() -> None:
    e = feed(engine_with(), [tgt(0, "legacy", etype="0x17", ip=ATTACKER, v2=v2_tgt(V2_RC4_KEYS, ADVERTIZED_RC4)),
                             tgt(1, "legacy2", etype="0x17", realm="CONTOSO.LOCAL", ip=ATTACKER)])
    assert not of_type(e, "overpass-the-hash")


def test_overpass_the_hash_profile_learning_flag_synthetic() -> None:
    """AES TGTs, then an RC4 one: Medium, flagged as learning within the first 30 days."""
    e = feed(engine_with(), [tgt(d * DAY, "alice", rid=1300) for d in range(3)]
             + [tgt(3 * DAY, "alice", etype="0x17", rid=1300, ip=ATTACKER)])
    (a,) = of_type(e, "overpass-the-hash")
    assert a.details["tells"] == ["profile"] and a.learning and a.severity == "medium"
    e = feed(engine_with(), [tgt(d * DAY, "alice", rid=1300) for d in range(31)]
             + [tgt(31 * DAY, "alice", etype="0x17", rid=1300, ip=ATTACKER)])
    (a,) = of_type(e, "overpass-the-hash")
    assert not a.learning and a.details["aes_tgts_before"] == 31


def test_overpass_the_hash_rc4_profile_and_no_preauth_quiet_synthetic() -> None:
    e = feed(engine_with(), [tgt(0, "dev", etype="0x17", rid=1310), tgt(DAY, "dev", rid=1310),
                             tgt(2 * DAY, "dev", etype="0x17", rid=1310, ip=ATTACKER),
                             tgt(3 * DAY, "alice", rid=1300),
                             tgt(4 * DAY, "alice", etype="0x17", preauth="0", rid=1300, ip=ATTACKER)])
    assert not of_type(e, "overpass-the-hash")


def test_overpass_the_hash_sensitive_account_high_synthetic() -> None:
    inv = Inventory()
    inv.learn("dadmin", sid(1104)).sensitive = True
    e = feed(engine_with(inv), [tgt(0, "dadmin", rid=1104), tgt(60, "dadmin", etype="0x17", rid=1104, ip=ATTACKER)])
    assert [a.severity for a in of_type(e, "overpass-the-hash")] == ["high"]


def test_learned_tables_survive_a_baseline_round_trip() -> None:
    b = Baseline()
    engine = DetectionEngine(Detection(), b)
    for ev in [tgs(d * DAY, "app01", "svc-legacy") for d in range(8)]:
        engine.feed(ev)
    restored = Baseline.load(b.dump())
    assert ("10.0.0.21", "svc-legacy") in restored.table("kerberoasting.pairs")
    e2 = DetectionEngine(Detection(), restored)
    e2.feed(tgs(8 * DAY + 60, "app01", "svc-legacy"))
    e2.finish()
    assert not of_type(e2, "kerberoasting")


def test_types_run_together_without_crossing() -> None:
    """Each recording raises only its own Kerberos type."""
    for rel, want in [(EVTX + "ID4769-Golden ticket issued.evtx", {"golden-ticket"}),
                      (EVTX + "ID4768-Kerberos AS-REP Roasting.evtx", {"asrep-roasting"}),
                      ("dc-log/json/otrf-security-datasets/empire_shell_rubeus_asktgt_ptt.zip", {"overpass-the-hash"})]:
        alerts, _ = hunt([str(corpus(rel))], Detection(), ReadStats())
        assert {a.type for a in alerts} & set(KERBEROS_TYPES) == want, rel


def test_overpass_the_hash_second_rc4_device_told_once_while_learning_synthetic() -> None:
    """While the profile is young an RC4 TGT is told once (learning), then that RC4 use is known;
    after 30 days an RC4 TGT for an AES-only account keeps alerting."""
    young = [tgt(0, "alice", rid=1300), tgt(DAY, "alice", etype="0x17", rid=1300, ip="::ffff:10.0.0.31"),
             tgt(3 * DAY, "alice", etype="0x17", rid=1300, ip="::ffff:10.0.0.31")]
    e = feed(engine_with(), young)
    assert [a.learning for a in of_type(e, "overpass-the-hash")] == [True]
    old = [tgt(d * DAY, "alice", rid=1300) for d in range(31)]
    old += [tgt(31 * DAY, "alice", etype="0x17", rid=1300, ip=ATTACKER),
            tgt(33 * DAY, "alice", etype="0x17", rid=1300, ip=ATTACKER)]
    e = feed(engine_with(), old)
    assert [a.learning for a in of_type(e, "overpass-the-hash")] == [False, False]


def test_golden_ticket_quiet_on_nopac_renamed_name_recording() -> None:
    """noPac: the TGT for `rootdc1` was KDC-issued before the rename back; its 4769 is noPac's."""
    assert not hunted("evtx/evtx-to-mitre-attack/ID47x,4661-4662,5136,4688,4697-SAM the admin (CVE-2021-42287).evtx",
                      "golden-ticket")


def test_golden_ticket_deleted_account_with_live_tgt_quiet_synthetic() -> None:
    e = engine_with()
    e.feed(tgt(0, "bob", rid=1400, ip=ATTACKER))
    e.ctx.inventory.forget("bob")
    feed(e, [tgs(60, "bob", "SRV01$", etype="0x12", ip=ATTACKER)])
    assert not of_type(e, "golden-ticket")


def test_golden_ticket_real_account_tickets_do_not_grow_the_alert_synthetic() -> None:
    """A forged `administrator@contoso.local` next to the real administrator's own tickets."""
    e = feed(engine_with(), [tgs(0, "administrator", "SRV01$", etype="0x12", realm="contoso.local", ip=ATTACKER),
                             tgs(5, "administrator", "SRV02$", etype="0x12", ip=CLIENT),
                             logon(6, "administrator", sid(500), ip="10.0.0.21")])
    (a,) = of_type(e, "golden-ticket")
    assert a.count == 1 and a.hosts == ["10.0.0.66"]


def test_kerberoast_roasting_source_is_never_learned_synthetic() -> None:
    """After the learning period, a High incident's pairs are not learned: the same roast a day
    later alerts again."""
    start = [tgs(0, "app01", "svc-legacy", ip=CLIENT)]  # starts the learning clock
    day8 = [tgs(8 * DAY + i, "eve", f"svc-{i}", ip=ATTACKER) for i in range(3)]
    day9 = [tgs(9 * DAY + i, "eve", f"svc-{i}", ip=ATTACKER) for i in range(3)]
    e = feed(engine_with(), start + day8 + day9)
    assert [(a.severity, a.learning) for a in of_type(e, "kerberoasting")][1:] == [("high", False), ("high", False)]


def test_kerberoast_legacy_multi_service_client_learned_while_learning_synthetic() -> None:
    """An application server using three RC4-only service accounts: High once during learning, then quiet."""
    e = feed(engine_with(), [tgs(d * DAY + i, "app01", f"svc-{i}", ip=CLIENT) for d in range(10) for i in range(3)])
    (a,) = of_type(e, "kerberoasting")
    assert a.learning and a.severity == "high"


def test_kerberoast_refused_rc4_requests_count_synthetic() -> None:
    """Once RC4 is off, a roaster's RC4-only requests fail with 0xE: three services are still roasting;
    one refusal (a legacy client) stays quiet."""
    e = feed(engine_with(), [tgs(0, "app01", "svc-a", etype="0xffffffff", status="0xe", ip=CLIENT)])
    assert not of_type(e, "kerberoasting")
    e = feed(engine_with(), [tgs(i, "eve", f"svc-{i}", etype="0xffffffff", status="0xe", ip=ATTACKER) for i in range(3)])
    (a,) = of_type(e, "kerberoasting")
    assert a.severity == "high" and a.details["refused"] == 3 and a.count == 3 and len(a.evidence) == 3
    assert "refused" in a.description and a.start < a.end
