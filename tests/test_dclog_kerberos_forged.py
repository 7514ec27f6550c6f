"""Kerberos ticket detections, the forged and passed ones: golden ticket and overpass-the-hash
(reference/dc-log-alerts.md B3-B4), and the Kerberos detectors together, on the corpus
recordings and on synthetic edges."""

from __future__ import annotations

import pytest

from conftest import corpus
from dclog_kerberoskit import (
    ADVERTIZED_AES,
    ADVERTIZED_RC4,
    ATTACKER,
    CLIENT,
    DAY,
    EVTX,
    KERBEROS_TYPES,
    V2_AES_KEYS,
    V2_RC4_KEYS,
    engine_with,
    feed,
    hunted,
    logon,
    sid,
    tgs,
    tgt,
    v2_tgt,
)
from dcsentry.activities.context import Inventory
from dcsentry.config import Detection
from dcsentry.detectors.baseline import Baseline
from dcsentry.detectors.engine import DetectionEngine
from dcsentry.formats import ReadStats
from dcsentry.hunt import hunt
from eventfactory import of_type


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

