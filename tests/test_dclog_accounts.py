"""Account-management activities and their alerts: preauth-disabled, nopac, sid-history, dcshadow,
dsrm-password-change (reference/dc-log-alerts.md A4, A5, B3 companion, B9-B12)."""

from __future__ import annotations

from typing import Any

import pytest

from conftest import corpus, read_file_events
from dclog_accountskit import ADMIN, USER, access_4662, account, created_5137, rename, spn_5136, tgt
from dcsentry.activities.context import DomainContext
from dcsentry.activities.dclog.accounts import AccountChange, AccountReader, decode_uac
from dcsentry.config import Detection
from dcsentry.formats import ReadStats
from dcsentry.hunt import hunt
from eventfactory import DOMAIN_SID, of_type, run

MINE = ("preauth-disabled", "nopac", "sid-history", "dcshadow", "dsrm-password-change")
M = "dc-log/evtx/evtx-to-mitre-attack/"


def alerts_of(rel: str) -> list[dict[str, Any]]:
    found, _ = hunt([str(corpus(rel))], Detection(), ReadStats())
    return [a.to_dict() for a in found if a.type in MINE]


def types(rel: str) -> list[str]:
    return [a["type"] for a in alerts_of(rel)]


# -- the reader -------------------------------------------------------------------------------------
def test_uac_codes_and_rendered_words_decode_alike() -> None:
    assert decode_uac("\r\n\t\t%%2096") == ([16], [])
    assert decode_uac("%%2080 %%2082 %%2084") == ([0, 2, 4], [])
    assert decode_uac("%%2064\r\n\t\t%%2050") == ([], [16, 2])
    assert decode_uac("'Don't Require Preauth' - Enabled\r\n\t\t'Password Not Required' - Disabled") == ([16], [2])
    assert decode_uac("Account Enabled") == ([], [0])
    assert decode_uac("-") == ([], [])


def test_reader_fills_fields_and_inventory() -> None:
    ctx = DomainContext()
    reader = AccountReader(ctx)
    sid = f"{DOMAIN_SID}-1700"
    [made] = reader.feed(account(4741, 0, "PC7$", sid, actor=USER, SamAccountName="PC7$", PrimaryGroupId="515",
                                 UserAccountControl="%%2087", ServicePrincipalNames="HOST/PC7\r\n\t\tHOST/pc7.x"))
    assert isinstance(made, AccountChange) and made.kind == "account"
    assert (made.action, made.machine, made.target, made.actor, made.uac_set) == ("created", True, "PC7$", "eve", [7])
    assert made.changed["PrimaryGroupId"] == "515" and made.spns == ["HOST/PC7", "HOST/pc7.x"]
    assert "DisplayName" not in made.changed and made.subject == "PC7$"
    acc = ctx.inventory.get("PC7$")
    assert acc is not None and acc.kind == "computer" and acc.sid == sid
    assert ctx.inventory.is_dc("DC01")  # 4741 is only logged by DCs
    assert ctx.new_computers["pc7$"].by_admin is False and ctx.new_computers["pc7$"].actor == "eve"  # type: ignore
    reader.feed(account(4741, 0.5, "PC6$", f"{DOMAIN_SID}-1701", actor=ADMIN))
    assert ctx.new_computers["pc6$"].by_admin  # type: ignore[attr-defined]
    [ren] = reader.feed(rename(1, "PC7$", "PC8$", sid))
    assert (ren.action, ren.old_name, ren.target) == ("renamed", "PC7$", "PC8$")
    assert ctx.inventory.get("PC8$") is not None and ctx.inventory.get("PC7$") is None
    [dc] = reader.feed(account(4742, 2, "PC8$", sid, UserAccountControl="%%2088\r\n\t\t%%2055"))
    assert dc.uac_set == [8] and dc.uac_cleared == [7] and ctx.inventory.is_dc("PC8$") and ctx.inventory.is_dc("PC8")
    [gone] = reader.feed(account(4743, 3, "PC8$", sid))
    assert gone.action == "deleted" and ctx.inventory.exists("PC8$") is False
    [dsrm] = reader.feed(account(4794, 4, "", "", Workstation="DC01", Status="0x0"))
    assert (dsrm.action, dsrm.workstation, dsrm.status) == ("dsrm-password-set", "DC01", "0x0")


def test_password_reset_recording_reads_as_account_changes() -> None:
    found, _ = hunt([str(corpus(M + "ID4724-5145-password reset with setNTLM (Mimikatz).evtx"))], Detection(),
                    ReadStats())
    assert not [a for a in found if a.type in ("preauth-disabled", "sid-history")]
    reader = AccountReader(DomainContext())
    events, _ = read_file_events(corpus(M + "ID4724-5145-password reset with setNTLM (Mimikatz).evtx"))
    acts = [a for ev in events if ev.event_id in reader.ids for a in reader.feed(ev)]
    assert {a.action for a in acts} == {"password-reset", "changed"}
    assert all(not a.uac_set and "SidHistory" not in a.changed for a in acts)


# -- preauth-disabled -------------------------------------------------------------------------------
def test_corpus_preauth_disabled_once_then_restored() -> None:
    found = alerts_of(M + "ID4738-Do not require Kerberos preauthentication.evtx")
    assert [a["type"] for a in found] == ["preauth-disabled"]
    a = found[0]
    assert a["severity"] == "medium" and "hack1" in a["description"] and "admmig" in a["description"]
    assert "required again" in a["description"]


@pytest.mark.parametrize("name", ["Account is sensitive and cannot be delegated", "Account with password not required",
                                  "Password never expires", "Use only Kerberos DES encryption types",
                                  "User set with reversible psw encryption"])
def test_corpus_other_uac_flags_are_quiet(name: str) -> None:
    assert "preauth-disabled" not in types(M + f"ID4738-{name}.evtx")


def test_synthetic_preauth_on_creation_and_roastable_mark() -> None:
    sid = f"{DOMAIN_SID}-1801"
    eng = run([account(4720, 0, "legacy", sid, SamAccountName="legacy", UserAccountControl="%%2080 %%2084 %%2096"),
               account(4738, 5, "other", f"{DOMAIN_SID}-1802", UserAccountControl="%%2094")])
    [a] = of_type(eng, "preauth-disabled")
    assert a.severity == "medium" and "created without" in a.description and a.accounts == ["Administrator", "legacy"]
    assert eng.ctx.roastable.keys() == {"legacy"}  # type: ignore[attr-defined]
    run_two = run([account(4738, 0, "legacy", sid, UserAccountControl="%%2096"),
                   account(4738, 60, "legacy", sid, UserAccountControl="%%2064")])
    assert len(of_type(run_two, "preauth-disabled")) == 1 and not run_two.ctx.roastable  # type: ignore[attr-defined]


def test_synthetic_preauth_rendered_words_and_privileged_target_is_high() -> None:
    eng = run([account(4738, 0, "Administrator", f"{DOMAIN_SID}-500",
                       UserAccountControl="'Don't Require Preauth' - Enabled")])
    [a] = of_type(eng, "preauth-disabled")
    assert a.severity == "high"


# -- nopac --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("rel", [M + "ID4768-4769-Kerberos host ticket without a trailing $.evtx",
                                 M + "ID4781-Computer account renamed without a trailing $ (CVE-2021-42278).evtx",
                                 "evtx/evtx-to-mitre-attack/ID47x,4661-4662,5136,4688,4697-SAM the admin "
                                 "(CVE-2021-42287).evtx"])
def test_corpus_nopac_is_one_high_alert(rel: str) -> None:
    found = [a for a in alerts_of(rel) if a["type"] == "nopac"]
    assert len(found) == 1 and found[0]["severity"] == "high", found
    assert "ROOTDC1" in found[0]["description"]


def test_corpus_sam_the_admin_chain_names_actor_and_source() -> None:
    [a] = [a for a in alerts_of("evtx/evtx-to-mitre-attack/ID47x,4661-4662,5136,4688,4697-SAM the admin "
                                "(CVE-2021-42287).evtx") if a["type"] == "nopac"]
    assert "hack1" in a["entities"]["accounts"] and "10.23.123.11" in a["entities"]["hosts"]
    assert "4741 computer created by hack1" in a["description"] and a["count"] >= 5


@pytest.mark.parametrize("rel", [M + "ID4781-4738-User renamed to admin or likely.evtx",
                                 M + "ID 4865 4706 - trust added.evtx",
                                 "dc-log/evtx/evtx-attack-samples/Zerologon_VoidSec_CVE-2020-1472_4626_LT3_Anonym_"
                                 "follwedby_4742_DC_Anony_DC.evtx",
                                 "dc-log/json/otrf-security-datasets/mimikatz_CVE-2020-1472_Unauthenticated_"
                                 "NetrServerAuthenticate2.zip",
                                 "evtx/omerbenamram-evtx/security.evtx",
                                 "evtx/omerbenamram-evtx/security_bad_string_cache.evtx"])
def test_corpus_nopac_and_dcshadow_look_alikes_are_quiet(rel: str) -> None:
    assert not {"nopac", "dcshadow"} & set(types(rel))


def test_synthetic_nopac_chain_is_one_growing_high_alert() -> None:
    sid = f"{DOMAIN_SID}-1296"
    eng = run([account(4741, 0, "pc88$", sid, actor=USER, SamAccountName="pc88$", UserAccountControl="%%2087"),
               account(4742, 0.1, "pc88$", sid, actor=USER, ServicePrincipalNames="%%1793"),
               rename(0.2, "pc88$", "dc01", sid),
               tgt(0.5, "dc01", sid),
               rename(0.6, "dc01", "pc88$", sid)])
    [a] = of_type(eng, "nopac")
    assert a.severity == "high" and a.count == 5
    assert a.details["created_by_plain_user"] and a.details["spns_cleared"] and a.details["impersonated_dc"] == "DC01"
    assert "10.0.0.66" in a.hosts and "eve" in a.accounts


def test_synthetic_nopac_rename_to_other_name_is_medium_and_normal_renames_quiet() -> None:
    sid = f"{DOMAIN_SID}-1300"
    eng = run([rename(0, "pc1$", "pc2$", sid), rename(10, "bob", "Bob", f"{DOMAIN_SID}-1301"),
               rename(20, "alice", "alice2", f"{DOMAIN_SID}-1302"), tgt(30, "srv01", sid)])
    assert not of_type(eng, "nopac")
    eng = run([rename(0, "pc1$", "websrv", sid)])
    [a] = of_type(eng, "nopac")
    assert a.severity == "medium"
    eng = run([rename(0, "bob", "bob$", sid)])
    assert [a.severity for a in of_type(eng, "nopac")] == ["medium"]


def test_synthetic_tgt_for_dc_name_without_dollar_alone_is_high() -> None:
    eng = run([tgt(0, "DC01", f"{DOMAIN_SID}-1400"), tgt(1, "DC01$", f"{DOMAIN_SID}-1000")])
    [a] = of_type(eng, "nopac")
    assert a.severity == "high" and a.count == 1


# -- sid-history -------------------------------------------------------------------------------------
def test_corpus_sid_history_added_is_high() -> None:
    [a] = alerts_of(M + "ID 4765 - SID history added.evtx")
    assert a["type"] == "sid-history" and a["severity"] == "high" and "Andrei" in a["description"]


def test_synthetic_4765_sid_list_with_privileged_foreign_sid_is_high() -> None:
    foreign = "S-1-5-21-1111111111-2222222222-3333333333"
    ev = account(4765, 0, "bob", f"{DOMAIN_SID}-1500", SourceUserName="FABRIKAM\\olduser",
                 SourceSid=f"{foreign}-1104", SidList=f"%{{{foreign}-519}}")
    [a] = of_type(run([ev]), "sid-history")
    assert a.severity == "high" and f"{foreign}-519" in a.details["sids"]
    ev = account(4765, 0, "bob", f"{DOMAIN_SID}-1500", SourceUserName="FABRIKAM\\olduser",
                 SourceSid=f"{foreign}-1104", SidList=f"%{{{foreign}-1104}}")
    [a] = of_type(run([ev]), "sid-history")
    assert a.severity == "medium"  # a foreign, plain SID: what a migration looks like


def test_synthetic_4766_failed_attempt_is_medium() -> None:
    ev = account(4766, 0, "bob", f"{DOMAIN_SID}-1500", SourceUserName="FABRIKAM\\olduser")
    [a] = of_type(run([ev]), "sid-history")
    assert a.severity == "medium" and "failed" in a.description


def test_synthetic_sid_history_in_4738() -> None:
    foreign = "S-1-5-21-1111111111-2222222222-3333333333-1234"
    [a] = of_type(run([account(4738, 0, "bob", f"{DOMAIN_SID}-1500", SidHistory=foreign)]), "sid-history")
    assert a.severity == "medium" and foreign in a.details["sids"]
    [a] = of_type(run([account(4738, 0, "bob", f"{DOMAIN_SID}-1500", SidHistory=f"{DOMAIN_SID}-1105")]),
                  "sid-history")
    assert a.severity == "high"  # same domain: no migration does that
    assert not of_type(run([account(4738, 0, "bob", f"{DOMAIN_SID}-1500", SidHistory="%%1793"),
                            account(4738, 1, "bob", f"{DOMAIN_SID}-1500", DisplayName="Bob")]), "sid-history")
    cfg = Detection()
    cfg.account_changes.sid_history_allowed = ["CONTOSO\\Administrator"]
    assert not of_type(run([account(4738, 0, "bob", f"{DOMAIN_SID}-1500", SidHistory=foreign)], cfg), "sid-history")


# -- dsrm ----------------------------------------------------------------------------------------------
def test_corpus_dsrm_password_set_is_medium() -> None:
    [a] = alerts_of(M + "ID4794-4688-DSRM password set with NTDSutil.evtx")
    assert a["type"] == "dsrm-password-change" and a["severity"] == "medium" and "admmig" in a["description"]


def test_synthetic_dsrm_failed_is_low_and_allow_list_quiet() -> None:
    [a] = of_type(run([account(4794, 0, "", "", Workstation="DC01", Status="0xc000006a")]), "dsrm-password-change")
    assert a.severity == "low" and "failed" in a.description
    cfg = Detection()
    cfg.account_changes.dsrm_allowed = ["administrator"]
    assert not of_type(run([account(4794, 0, "", "", Workstation="DC01", Status="0x0")], cfg), "dsrm-password-change")


# -- dcshadow ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("rel", [M + "ID4742,4935,4662,4661,5137-DCshadow attack (GLOBAL) failed.evtx",
                                 "dc-log/evtx/evtx-attack-samples/persistence_security_dcshadow_4742.evtx"])
def test_corpus_dcshadow_is_one_high_alert(rel: str) -> None:
    found = [a for a in alerts_of(rel) if a["type"] == "dcshadow"]
    assert len(found) == 1 and found[0]["severity"] == "high"
    assert "removed" in found[0]["description"] and "Replication-Topology" in found[0]["description"]


def test_corpus_spn_on_computer_is_not_dcshadow() -> None:
    assert "dcshadow" not in types(M + "ID4742,5136-SPN set on computer account.evtx")


DRS = "E3514235-4B06-11D1-AB04-00C04FC2DCD2/ae9a3b29-01d1-4851-8ca8-e49cd3985e5b/contoso.local"
SERVERS = "CN=Servers,CN=Default-First-Site-Name,CN=Sites,CN=Configuration,DC=contoso,DC=local"
DOMAIN_DNS = "19195a5b-6da0-11d0-afd3-00c04fd930c9"


def test_synthetic_real_promotion_stays_quiet() -> None:
    sid = f"{DOMAIN_SID}-1120"
    eng = run([account(4742, 0, "DC02$", sid, UserAccountControl="%%2088\r\n\t\t%%2055",
                       ServicePrincipalNames=f"HOST/DC02\r\n\t\tGC/dc02.contoso.local/contoso.local\r\n\t\t{DRS}"),
               created_5137(5, f"CN=NTDS Settings,CN=DC02,{SERVERS}", "nTDSDSA"),
               access_4662(6, ("DC02$", sid), "1131f6ac-9c07-11d1-f79f-00c04fc2dcd2", object_type=DOMAIN_DNS)])
    assert not of_type(eng, "dcshadow")


def test_synthetic_promotion_after_registration_lowers_the_alert() -> None:
    sid = f"{DOMAIN_SID}-1121"
    eng = run([created_5137(0, f"CN=DC03,{SERVERS}", "server"),
               account(4742, 120, "DC03$", sid, UserAccountControl="%%2088\r\n\t\t%%2055")])
    [a] = of_type(eng, "dcshadow")
    assert a.severity == "low" and "real DC promotion" in a.description


def test_synthetic_dcshadow_signals() -> None:
    dn = "CN=WS9,OU=Workstations,DC=contoso,DC=local"
    [a] = of_type(run([spn_5136(0, dn, "GC/ws9.contoso.local/contoso.local")]), "dcshadow")
    assert a.severity == "high" and "WS9$" in a.accounts
    assert not of_type(run([spn_5136(0, dn, "HTTP/ws9.contoso.local")]), "dcshadow")
    topology = "9923a32a-3607-11d2-b9be-0000f87a36b2"
    ws9 = ("WS9$", f"{DOMAIN_SID}-1122")
    [a] = of_type(run([account(4741, 0, "WS9$", ws9[1], actor=USER),
                       access_4662(1, ws9, topology, object_type=DOMAIN_DNS)]), "dcshadow")
    assert a.key == "ws9"
    # an unknown computer account may be a DC whose events are not collected
    assert not of_type(run([access_4662(0, ws9, topology, object_type=DOMAIN_DNS)]), "dcshadow")
    # by a user, the topology right alone is not enough (promotions need it) ...
    assert not of_type(run([access_4662(0, ADMIN, topology, object_type=DOMAIN_DNS)]), "dcshadow")
    # ... but it joins the alert of the computer the same account registers
    eng = run([access_4662(0, ADMIN, topology, object_type=DOMAIN_DNS),
               account(4742, 1, "WS9$", f"{DOMAIN_SID}-1122", ServicePrincipalNames=f"HOST/WS9\r\n\t\t{DRS}")])
    [a] = of_type(eng, "dcshadow")
    assert a.count == 2 and len(a.evidence) == 2
    # the DC's own account (Zerologon, a DC password change), or a computer writing its own DRS SPN, is no candidate
    assert not of_type(run([account(4742, 0, "DC01$", f"{DOMAIN_SID}-1000", ServicePrincipalNames=DRS)]), "dcshadow")
    assert not of_type(run([account(4742, 0, "DC05$", f"{DOMAIN_SID}-1005", actor=("DC05$", f"{DOMAIN_SID}-1005"),
                                    ServicePrincipalNames=DRS)]), "dcshadow")


def test_alerts_carry_the_mdi_shape() -> None:
    for rel in (M + "ID 4765 - SID history added.evtx", M + "ID4794-4688-DSRM password set with NTDSutil.evtx"):
        for a in alerts_of(rel):
            assert a["description"] and a["entities"]["dcs"] and a["evidence"] and a["count"] >= 1


@pytest.mark.parametrize(("gap", "severity"), [(600, "high"), (601, "medium")])
def test_synthetic_nopac_window_edge(gap: float, severity: str) -> None:
    """A computer made by a plain user with its SPNs cleared, renamed (to no DC's name) within
    `nopac_window` = 600 s: the chain makes it High; a second later it is a lone rename."""
    sid = f"{DOMAIN_SID}-1310"
    eng = run([account(4741, 0, "pc9$", sid, actor=USER), account(4742, 0, "pc9$", sid, actor=USER,
                                                                  ServicePrincipalNames="%%1793"),
               rename(gap, "pc9$", "websrv9", sid)])
    [a] = of_type(eng, "nopac")
    assert a.severity == severity


@pytest.mark.parametrize(("gap", "severity"), [(3600, "low"), (3601, "high")])
def test_synthetic_promotion_grace_edge(gap: float, severity: str) -> None:
    cfg = Detection()
    cfg.incident_gap = 7200.0  # keep the incident open past the grace
    eng = run([created_5137(0, f"CN=DC04,{SERVERS}", "server"),
               account(4742, gap, "DC04$", f"{DOMAIN_SID}-1124", UserAccountControl="%%2088")], cfg)
    [a] = of_type(eng, "dcshadow")
    assert a.severity == severity
