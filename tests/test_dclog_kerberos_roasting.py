"""Kerberos ticket detections, the roasting ones: the ticket-request activity, kerberoasting and
AS-REP roasting (reference/dc-log-alerts.md B2), on the corpus recordings and on synthetic edges."""

from __future__ import annotations

import pytest

from dclog_kerberoskit import (
    ADVERTIZED_RC4,
    ATTACKER,
    CLIENT,
    DAY,
    EVTX,
    V2_AES_KEYS,
    V2_RC4_KEYS,
    engine_with,
    feed,
    hunted,
    sid,
    tgs,
    tgt,
    v2_tgs,
    v2_tgt,
)
from dcsentry.activities.context import Inventory
from dcsentry.activities.dclog.kerberos import TicketRequest
from dcsentry.config import Detection
from eventfactory import of_type


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

