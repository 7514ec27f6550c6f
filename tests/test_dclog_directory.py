"""Directory Service Changes: 5136 values assembled into one `DirectoryChange` per operation, and
the rule table of detectors/dclog/directory_rules.py (reference/dc-log-alerts.md A6, B8).

Tests named `synthetic` build events from the reference's layouts (no public recording of shadow
credentials, GPO client-side-extension edits or primaryGroupID changes); the corpus files of these
types are scored in test_hunt_dclog.py and read here for what the alert says."""

from __future__ import annotations

from dataclasses import replace as dc_replace

import pytest

import dclog_directorykit as k
from conftest import corpus, read_file_events
from dclog_accesskit import access
from dclog_accountskit import account
from dclog_kerberoskit import tgt
from eventfactory import DOMAIN_SID, at, of_type, run
from dcsentry.activities.builder import ActivityBuilder
from dcsentry.activities.context import DomainContext
from dcsentry.activities.dclog.directory import DirectoryChange, DirectoryReader
from dcsentry.config import Detection
from dcsentry.formats import ReadStats
from dcsentry.hunt import hunt

USER_DN = "CN=bob,CN=Users,DC=contoso,DC=local"
PC_DN = "CN=WS01,OU=Workstations,DC=contoso,DC=local"
GPO = "{8A1C4E62-2F65-4C77-A1C0-3C5E2C7B1F10}"
GPO_DN = f"CN={GPO},CN=Policies,CN=System,DC=contoso,DC=local"
ATTACKER_PC = ("ATTACK01$", f"{DOMAIN_SID}-1701")
KCL = "B:828:0002000020000173E5A4D3C1B2A09F8E7D6C5B4A39281706F5E4D3C2B1A09F8E7D6C5B4A3928:" + USER_DN


def changes(events: list) -> list[DirectoryChange]:
    b = ActivityBuilder()
    out = []
    for ev in events:
        out += b.feed(ev)
    out += b.flush()
    return [a for a in out if isinstance(a, DirectoryChange)]


def alerts(events: list, type_: str, cfg: Detection | None = None) -> list:
    return of_type(run(events, cfg), type_)


# -- the reader: one change per operation -----------------------------------------------------------
def test_synthetic_values_of_one_operation_make_one_change() -> None:
    corr = k.correlation()
    evs = [k.value(at(0), USER_DN, "user", "servicePrincipalName", "HTTP/web01", corr=corr),
           k.value(at(0.01), USER_DN, "user", "servicePrincipalName", "HTTP/web01.contoso.local", corr=corr)]
    (ch,) = changes(evs)
    assert (ch.operation, ch.attribute, ch.object_dn, ch.object_class) == ("modify", "servicePrincipalName",
                                                                            USER_DN, "user")
    assert ch.added == ["HTTP/web01", "HTTP/web01.contoso.local"] and ch.removed == []
    assert ch.correlation == corr and ch.event_ids == [5136] and len(ch.evidence) == 2
    assert ch.object_guid == "0b32719a-29a5-4ad5-b9dc-56200eba0ce0" and ch.actor == "Administrator"


def test_a_replace_is_the_deleted_and_added_value_of_one_change() -> None:
    (ch,) = changes(k.replace(at(0), USER_DN, "user", "primaryGroupID", "513", "512", syntax="2.5.5.9"))
    assert ch.removed == ["513"] and ch.added == ["512"]


def test_rendered_operation_words_are_read_like_the_codes() -> None:
    corr = k.correlation()
    evs = [k.value(at(0), USER_DN, "user", "description", "old", op="Value Deleted", corr=corr),
           k.value(at(0), USER_DN, "user", "description", "new", op="Value Added", corr=corr)]
    (ch,) = changes(evs)
    assert ch.removed == ["old"] and ch.added == ["new"]


def test_attributes_and_objects_of_one_operation_stay_apart() -> None:
    corr = k.correlation()
    evs = [k.value(at(0), USER_DN, "user", "description", "a", corr=corr),
           k.value(at(0), USER_DN, "user", "info", "b", corr=corr),
           k.value(at(0), PC_DN, "computer", "description", "c", corr=corr, guid="{11111111-2222-3333-4444-555555555555}")]
    assert sorted((c.object_dn, c.attribute) for c in changes(evs)) == [
        (PC_DN, "description"), (USER_DN, "description"), (USER_DN, "info")]


def test_a_new_correlation_id_on_the_dc_releases_the_previous_operation() -> None:
    reader = DirectoryReader(k_ctx())
    first = reader.feed(k.value(at(0), USER_DN, "user", "description", "a"))
    assert first == [] and reader.holding
    out = reader.feed(k.value(at(0.1), USER_DN, "user", "description", "b"))  # another operation
    assert [c.added for c in out] == [["a"]]
    assert [c.added for c in reader.release(float("inf"))] == [["b"]] and not reader.holding


def test_another_dcs_operation_does_not_release_this_one() -> None:
    reader = DirectoryReader(k_ctx())
    reader.feed(k.value(at(0), USER_DN, "user", "description", "a"))
    assert reader.feed(k.value(at(0.1), USER_DN, "user", "description", "b", dc="DC02.contoso.local")) == []


def test_the_clock_moving_past_the_window_releases_a_change() -> None:
    reader = DirectoryReader(k_ctx(), window=2.0)
    corr = k.correlation()
    reader.feed(k.value(at(0), USER_DN, "user", "description", "a", corr=corr))
    assert reader.release(at(-0.5).timestamp()) == []  # `before` is older than its last value
    assert reader.feed(k.value(at(1.5), USER_DN, "user", "description", "b", corr=corr)) == []
    late = reader.feed(k.value(at(4), PC_DN, "computer", "description", "c", dc="DC02.contoso.local"))
    assert [c.added for c in late] == [["a", "b"]]


def test_the_builder_releases_held_changes_as_other_events_arrive() -> None:
    b = ActivityBuilder()
    assert b.feed(k.value(at(0), USER_DN, "user", "description", "a")) == []
    out = b.feed(k.logon(at(30), "eve", k.EVE[1]))
    assert any(isinstance(a, DirectoryChange) for a in out)


def test_created_moved_and_deleted_objects_are_changes_of_their_own() -> None:
    evs = [k.created(at(0), PC_DN, "computer"), k.moved(at(1), PC_DN, "CN=WS01,OU=Quarantine,DC=contoso,DC=local",
                                                          "computer"),
           k.deleted(at(2), PC_DN, "computer")]
    got = changes(evs)
    assert [c.operation for c in got] == ["create", "move", "delete"]
    assert got[1].new_dn.startswith("CN=WS01,OU=Quarantine") and got[1].object_dn == PC_DN
    assert all(c.attribute == "" for c in got) and got[0].event_ids == [5137]


def test_the_writers_session_gives_the_source_address() -> None:
    evs = [k.logon(at(0), "eve", k.EVE[1], logon_id="0x77aa", ip="10.9.9.9"),
           k.value(at(5), USER_DN, "user", "description", "x", actor=k.EVE, logon_id="0x77aa")]
    (ch,) = changes(evs)
    assert ch.source == "10.9.9.9" and ch.session is not None


def k_ctx() -> DomainContext:
    return DomainContext()


# -- dcsync-rights ------------------------------------------------------------------------------------
REPL_ACES = (f"(OA;;CR;1131f6aa-9c07-11d1-f79f-00c04fc2dcd2;;{DOMAIN_SID}-1151)"
             f"(OA;;CR;1131f6ad-9c07-11d1-f79f-00c04fc2dcd2;;{DOMAIN_SID}-1151)")


def root_grant(aces: str, actor: tuple[str, str] = k.ADMIN, t: float = 0) -> list:
    return k.sd_change(at(t), k.ROOT, "domainDNS", k.ROOT_SD, k.ROOT_SD.replace("(A;;RPRC;;;RU)", "(A;;RPRC;;;RU)" + aces),
                       actor=actor)


def test_synthetic_replication_ace_on_the_domain_root() -> None:
    (a,) = alerts(root_grant(REPL_ACES, k.EVE), "dcsync-rights")
    assert a.severity == "high" and a.count == 1
    assert f"Allow DS-Replication-Get-Changes-All to {DOMAIN_SID}-1151" in a.details["written"]
    assert a.details["rules"] == ["dcsync-ace"] and "CONTOSO\\eve" in a.accounts
    assert "DS-Replication-Get-Changes-All" in a.description and "DC=contoso,DC=local" in a.description
    assert not alerts(root_grant(REPL_ACES, k.EVE), "acl-change")


def test_synthetic_write_dac_4662_of_the_same_logon_corroborates() -> None:
    guid = "{0B32719A-29A5-4AD5-B9DC-56200EBA0CE0}"
    opened = access(at(0), "eve", 1601, "0x3031e", mask="0x40000", object_name=f"%{guid}")
    (a,) = alerts([opened, *root_grant(REPL_ACES, k.EVE, t=3)], "dcsync-rights")
    assert a.details["access_4662"]["access_mask"] == "0x40000" and "corroborates" in a.description
    assert a.details["trustees"] == [f"{DOMAIN_SID}-1151"] and f"{DOMAIN_SID}-1151" in a.accounts
    other = access(at(0), "eve", 1601, "0x999", mask="0x40000", object_name=f"%{guid}")
    (b,) = alerts([other, *root_grant(REPL_ACES, k.EVE, t=3)], "dcsync-rights")
    assert "access_4662" not in b.details


def test_synthetic_replication_ace_written_by_a_machine_account_is_privexchange() -> None:
    (a,) = alerts(root_grant(REPL_ACES, ("EXCH01$", f"{DOMAIN_SID}-1301")), "dcsync-rights")
    assert "dcsync-ace-by-machine" in a.details["rules"] and "PrivExchange" in a.description


@pytest.mark.parametrize("trustee", ["ED", "BA", f"{DOMAIN_SID}-498", f"{DOMAIN_SID}-516", "S-1-5-9"])
def test_synthetic_replication_rights_for_domain_controllers_and_admins_stay_quiet(trustee: str) -> None:
    aces = f"(OA;;CR;1131f6ad-9c07-11d1-f79f-00c04fc2dcd2;;{trustee})"
    assert not alerts(root_grant(aces), "dcsync-rights")


def test_synthetic_allow_listed_replication_trustee_stays_quiet() -> None:
    cfg = Detection()
    cfg.directory_changes = dc_replace(cfg.directory_changes, replication_trustees=[f"{DOMAIN_SID}-1151"])
    assert not alerts(root_grant(REPL_ACES), "dcsync-rights", cfg)


def test_synthetic_replication_ace_already_there_or_elsewhere_stays_quiet() -> None:
    same = k.sd_change(at(0), k.ROOT, "domainDNS", k.ROOT_SD, k.ROOT_SD)
    ou = k.sd_change(at(0), "OU=Sales,DC=contoso,DC=local", "organizationalUnit", k.OU_SD, k.OU_SD + REPL_ACES)
    assert not alerts(same + ou, "dcsync-rights")


def test_synthetic_generic_all_on_the_root_counts_as_replication() -> None:
    (a,) = alerts(root_grant(f"(A;;GA;;;{DOMAIN_SID}-1151)"), "dcsync-rights")
    assert "full control" in a.description


# -- shadow-credentials ---------------------------------------------------------------------------------
def kcl(t: float, actor: tuple[str, str] = k.EVE, dn: str = USER_DN, cls: str = "user", val: str = KCL) -> list:
    return [k.value(at(t), dn, cls, "msDS-KeyCredentialLink", val, actor=actor, syntax="2.5.5.7")]


def test_synthetic_shadow_credentials_on_a_user() -> None:
    (a,) = alerts(kcl(0), "shadow-credentials")
    assert a.severity == "high" and "bob" in a.accounts and "CONTOSO\\eve" in a.accounts
    assert "used" not in a.details and "PKINIT" in a.description


def test_synthetic_shadow_credentials_then_pkinit_tgt_is_used() -> None:
    evs = [*kcl(0), tgt(at(3600), "bob", preauth="16", ip="::ffff:10.0.0.66")]
    (a,) = alerts(evs, "shadow-credentials")
    assert a.details["used"]["source"] == "10.0.0.66" and "key-credential-used" in a.details["rules"]
    assert a.count == 2 and "was then used" in a.description and a.severity == "high"


def test_synthetic_pkinit_in_the_same_second_as_the_write_still_counts() -> None:
    evs = [*kcl(0), tgt(at(0.5), "bob", preauth="16")]
    (a,) = alerts(evs, "shadow-credentials")
    assert "used" in a.details


def test_synthetic_pkinit_after_the_window_or_with_a_password_is_not_use() -> None:
    late = alerts([*kcl(0), tgt(at(86400 + 60), "bob", preauth="16")], "shadow-credentials")
    password = alerts([*kcl(0), tgt(at(60), "bob", preauth="2")], "shadow-credentials")
    assert [("used" in a.details) for a in late + password] == [False, False]


def test_synthetic_self_written_computer_key_is_medium_until_used() -> None:
    evs = kcl(0, actor=("WS01$", f"{DOMAIN_SID}-1801"), dn=PC_DN, cls="computer")
    (a,) = alerts(evs, "shadow-credentials")
    assert a.severity == "medium" and a.details["rules"] == ["key-credential-self"]
    (used,) = alerts([*evs, tgt(at(30), "WS01$", preauth="16")], "shadow-credentials")
    assert used.severity == "high"


@pytest.mark.parametrize("writer", ["MSOL_0123abcd4567", "svc_adfs", "ADFSgMSA$"])
def test_synthetic_provisioning_writers_stay_quiet(writer: str) -> None:
    assert not alerts(kcl(0, actor=(writer, f"{DOMAIN_SID}-1900")), "shadow-credentials")


def test_synthetic_key_removed_stays_quiet() -> None:
    ev = k.value(at(0), USER_DN, "user", "msDS-KeyCredentialLink", KCL, op=k.DELETED, actor=k.EVE)
    assert not alerts([ev], "shadow-credentials")


# -- rbcd-change ------------------------------------------------------------------------------------------
RBCD = f"O:BAD:(A;;CCDCLCSWRPWPDTLOCRSDRCWDWO;;;{DOMAIN_SID}-1701)"


def rbcd(dn: str = "CN=SRV01,OU=Servers,DC=contoso,DC=local", actor: tuple[str, str] = k.EVE, val: str = RBCD) -> list:
    return [k.value(at(0), dn, "computer", "msDS-AllowedToActOnBehalfOfOtherIdentity", val, actor=actor,
                    syntax="2.5.5.15")]


def test_synthetic_rbcd_set_by_a_user_is_medium_and_names_the_delegate() -> None:
    (a,) = alerts(rbcd(), "rbcd-change")
    assert a.severity == "medium" and "srv01$" in a.accounts
    assert f"{DOMAIN_SID}-1701" in a.description


@pytest.mark.parametrize("case", ["machine", "dc", "krbtgt"])
def test_synthetic_rbcd_by_a_machine_on_a_dc_or_krbtgt_is_high(case: str) -> None:
    evs = {"machine": rbcd(actor=ATTACKER_PC), "dc": rbcd("CN=DC02,OU=Domain Controllers,DC=contoso,DC=local"),
           "krbtgt": rbcd("CN=krbtgt,CN=Users,DC=contoso,DC=local")}[case]
    (a,) = alerts(evs, "rbcd-change")
    assert a.severity == "high"


def test_synthetic_rbcd_reapplied_with_the_same_delegate_stays_quiet() -> None:
    dn = "CN=SRV01,OU=Servers,DC=contoso,DC=local"
    same = k.replace(at(0), dn, "computer", "msDS-AllowedToActOnBehalfOfOtherIdentity", RBCD, RBCD, syntax="2.5.5.15")
    assert not alerts(same, "rbcd-change")
    more = RBCD + f"(A;;CCDCLCSWRPWPDTLOCRSDRCWDWO;;;{DOMAIN_SID}-1702)"
    (a,) = alerts(k.replace(at(0), dn, "computer", "msDS-AllowedToActOnBehalfOfOtherIdentity", RBCD, more,
                            syntax="2.5.5.15"), "rbcd-change")
    assert f"{DOMAIN_SID}-1702" in a.description and f"{DOMAIN_SID}-1701" not in a.description


def test_synthetic_known_service_delegations_are_learned() -> None:
    dn, day = "CN=SQL01,OU=Servers,DC=contoso,DC=local", 86400
    two = RBCD + f"(A;;CCDCLCSWRPWPDTLOCRSDRCWDWO;;;{DOMAIN_SID}-1702)"
    attr = "msDS-AllowedToActOnBehalfOfOtherIdentity"
    evs = [*k.replace(at(0), dn, "computer", attr, RBCD, two, syntax="2.5.5.15"),
           *k.replace(at(day), dn, "computer", attr, two, RBCD, syntax="2.5.5.15"),
           *k.replace(at(9 * day), dn, "computer", attr, RBCD, two, syntax="2.5.5.15"),  # the standby again: known
           *k.replace(at(10 * day), dn, "computer", attr, two, two + f"(A;;GA;;;{DOMAIN_SID}-1703)", syntax="2.5.5.15")]
    first, late = alerts(evs, "rbcd-change")
    assert first.learning and not late.learning and f"{DOMAIN_SID}-1703" in late.description and late.count == 1


def test_rbcd_rendered_as_malformed_still_alerts() -> None:
    (a,) = alerts(rbcd(val="Malformed Security Descriptor"), "rbcd-change")
    assert "not rendered" in a.description


def test_synthetic_constrained_delegation_and_rbcd_cleared_stay_quiet() -> None:
    kcd = k.value(at(0), PC_DN, "computer", "msDS-AllowedToDelegateTo", "cifs/fs01")
    cleared = k.value(at(1), PC_DN, "computer", "msDS-AllowedToActOnBehalfOfOtherIdentity", RBCD, op=k.DELETED)
    assert not alerts([kcd, cleared], "rbcd-change")


# -- spn-added-to-user ------------------------------------------------------------------------------------
def test_synthetic_spn_on_a_user_is_low_and_high_on_a_privileged_one() -> None:
    (low,) = alerts([k.value(at(0), USER_DN, "user", "servicePrincipalName", "HTTP/x", actor=k.EVE)],
                    "spn-added-to-user")
    (high,) = alerts([k.value(at(0), "CN=Administrator,CN=Users,DC=contoso,DC=local", "user",
                              "servicePrincipalName", "HTTP/x", actor=k.EVE)], "spn-added-to-user")
    assert (low.severity, high.severity) == ("low", "high") and "Kerberoast" in low.description


def test_synthetic_spn_on_a_honeytoken_is_high() -> None:
    cfg = Detection(honeytokens=["bob"])
    (a,) = alerts([k.value(at(0), USER_DN, "user", "servicePrincipalName", "HTTP/x")], "spn-added-to-user", cfg)
    assert a.severity == "high"


def test_synthetic_spn_on_a_computer_or_removed_stays_quiet() -> None:
    evs = [k.value(at(0), PC_DN, "computer", "servicePrincipalName", "HTTP/ws01"),
           k.value(at(1), USER_DN, "user", "servicePrincipalName", "HTTP/x", op=k.DELETED)]
    assert not alerts(evs, "spn-added-to-user")


# -- primary-group-change -----------------------------------------------------------------------------------
def pgid(new: str, old: str = "513", t: float = 0) -> list:
    return k.replace(at(t), USER_DN, "user", "primaryGroupID", old, new, syntax="2.5.5.9", actor=k.EVE)


def test_synthetic_primary_group_to_domain_admins_is_high() -> None:
    (a,) = alerts(pgid("512"), "primary-group-change")
    assert a.severity == "high" and "513 -> 512 (Domain Admins)" in a.description


def test_synthetic_primary_group_4738_and_5136_views_make_one_alert() -> None:
    evs = [*pgid("512"), account(4738, at(0.2), "bob", f"{DOMAIN_SID}-1602", actor=k.EVE, PrimaryGroupId="512")]
    (a,) = alerts(evs, "primary-group-change")
    assert a.count == 1 and len(a.evidence) == 1 and "primary-group-4738" in a.details["rules"]
    (only,) = alerts(evs[-1:], "primary-group-change")
    assert only.severity == "high" and only.count == 1 and "bob" in only.accounts


def test_synthetic_unusual_primary_group_is_medium() -> None:
    (a,) = alerts(pgid("1105"), "primary-group-change")
    assert a.severity == "medium"
    (b,) = alerts([account(4738, at(0), "bob", f"{DOMAIN_SID}-1602", PrimaryGroupId="1105")], "primary-group-change")
    assert b.severity == "medium"


def test_synthetic_primary_group_back_to_domain_users_or_on_computers_stays_quiet() -> None:
    evs = [*pgid("513", old="512"), account(4738, at(1), "bob", f"{DOMAIN_SID}-1602", PrimaryGroupId="513"),
           account(4738, at(2), "bob", f"{DOMAIN_SID}-1602", DisplayName="Bob"),
           account(4742, at(3), "SRV01$", f"{DOMAIN_SID}-1802", PrimaryGroupId="516"),
           k.replace(at(4), PC_DN, "computer", "primaryGroupID", "515", "516", syntax="2.5.5.9")[1]]
    assert not alerts(evs, "primary-group-change")


# -- adminsdholder-change, acl-change ----------------------------------------------------------------------
ADMINSDHOLDER = "CN=AdminSDHolder,CN=System,DC=contoso,DC=local"
EVIL = f"(A;;CCDCLCSWRPWPDTLOCRSDRCWDWO;;;{DOMAIN_SID}-1601)"


def test_synthetic_adminsdholder_ace_is_high_and_not_an_acl_change() -> None:
    evs = k.sd_change(at(0), ADMINSDHOLDER, "container", k.OU_SD, k.OU_SD + EVIL)
    (a,) = alerts(evs, "adminsdholder-change")
    assert a.severity == "high" and "full control" in a.description
    assert not alerts(evs, "acl-change")


def test_synthetic_control_ace_on_an_ou_and_by_a_machine() -> None:
    ou = "OU=Sales,DC=contoso,DC=local"
    (a,) = alerts(k.sd_change(at(0), ou, "organizationalUnit", k.OU_SD, k.OU_SD + EVIL, actor=k.EVE), "acl-change")
    assert a.severity == "medium" and f"to {DOMAIN_SID}-1601" in a.description
    (m,) = alerts(k.sd_change(at(0), ou, "organizationalUnit", k.OU_SD, k.OU_SD + EVIL, actor=ATTACKER_PC),
                  "acl-change")
    assert m.severity == "high"


def test_synthetic_force_change_password_on_a_privileged_group_member() -> None:
    ace = f"(OA;;CR;00299570-246d-11d0-a768-00aa006e0529;;{DOMAIN_SID}-1601)"
    dn = "CN=Administrator,CN=Users,DC=contoso,DC=local"
    (a,) = alerts(k.sd_change(at(0), dn, "user", k.OU_SD, k.OU_SD + ace), "acl-change")
    assert "User-Force-Change-Password" in a.description


def test_synthetic_benign_acl_edits_stay_quiet() -> None:
    ou = "OU=Sales,DC=contoso,DC=local"
    deny_delete = k.sd_change(at(0), ou, "organizationalUnit", k.OU_SD, k.OU_SD.replace("AI(", "AI(D;;DTSD;;;WD)(", 1))
    read_only = k.sd_change(at(1), ou, "organizationalUnit", k.OU_SD, k.OU_SD + f"(A;;RPLCRC;;;{DOMAIN_SID}-1601)")
    plain_user = k.sd_change(at(2), USER_DN, "user", k.OU_SD, k.OU_SD + EVIL)
    owner_back = k.sd_change(at(3), USER_DN, "user", "O:" + f"{DOMAIN_SID}-1601" + k.OU_SD[4:], k.OU_SD)
    assert not alerts(deny_delete + read_only + plain_user + owner_back, "acl-change")


def test_synthetic_planned_writer_stays_quiet() -> None:
    cfg = Detection()
    cfg.directory_changes = dc_replace(cfg.directory_changes, allowed_writers=["eve"])
    evs = k.sd_change(at(0), "OU=Sales,DC=contoso,DC=local", "organizationalUnit", k.OU_SD, k.OU_SD + EVIL,
                      actor=k.EVE)
    assert not alerts(evs, "acl-change", cfg)


def test_synthetic_owner_change_on_a_user() -> None:
    new = k.OU_SD.replace("O:DA", f"O:{DOMAIN_SID}-1601")
    (a,) = alerts(k.sd_change(at(0), USER_DN, "user", k.OU_SD, new, actor=k.EVE), "acl-change")
    assert a.severity == "medium" and f"-> {DOMAIN_SID}-1601" in a.description


def test_synthetic_extra_sensitive_dn_pattern() -> None:
    cfg = Detection()
    cfg.directory_changes = dc_replace(cfg.directory_changes, sensitive_dns=["*,ou=tier0,dc=contoso,dc=local"])
    dn = "CN=svc-backup,OU=Tier0,DC=contoso,DC=local"
    (a,) = alerts(k.sd_change(at(0), dn, "user", k.OU_SD, k.OU_SD + EVIL), "acl-change", cfg)
    assert a.details["object_dn"] == dn


# -- gpo-change --------------------------------------------------------------------------------------------
TASKS = "[{00000000-0000-0000-0000-000000000000}{CAB54552-DEEA-4691-817E-ED4A4D1AFC72}]" \
        "[{AADCED64-746C-4633-A97C-D61349046527}{CAB54552-DEEA-4691-817E-ED4A4D1AFC72}]"
REGISTRY = "[{35378EAC-683F-11D2-A89A-00C04FBBCFA2}{D02B1F72-3407-48AE-BA88-E8213C6761F1}]"


def gpo(attr: str, old: str | None, new: str, t: float = 0, actor: tuple[str, str] = k.EVE, dn: str = GPO_DN) -> list:
    return k.replace(at(t), dn, "groupPolicyContainer", attr, old, new, actor=actor)


def test_synthetic_gpo_scheduled_task_extension_added() -> None:
    evs = [*gpo("displayName", None, "Workstation Baseline"), *gpo("gPCMachineExtensionNames", REGISTRY,
                                                                   REGISTRY + TASKS, t=5)]
    (a,) = alerts(evs, "gpo-change")
    assert a.severity == "medium" and "gpo-cse-risky" in a.details["rules"]
    assert "Scheduled Tasks {AADCED64-746C-4633-A97C-D61349046527}" in a.description
    assert "Workstation Baseline" in a.description and GPO.strip("{}").lower() in a.description.lower()


def test_synthetic_gpo_harmless_extension_is_low_and_version_bumps_learn_the_editor() -> None:
    (a,) = alerts(gpo("gPCUserExtensionNames", None, REGISTRY), "gpo-change")
    assert a.severity == "low"
    bumps = [*gpo("versionNumber", "3", "4"), *gpo("versionNumber", "4", "5", t=1800, actor=k.ADMIN),
             *gpo("versionNumber", "5", "6", t=7200)]
    got = alerts(bumps, "gpo-change")
    assert len(got) == 1 and got[0].count == 2 and got[0].severity == "low"  # eve's first, then Administrator's first


def test_synthetic_gpo_editors_are_learned_then_a_new_editor_alerts() -> None:
    day = 86400
    evs = [*gpo("versionNumber", "1", "2"), *gpo("versionNumber", "2", "3", t=8 * day, actor=k.ADMIN),
           *gpo("versionNumber", "3", "4", t=9 * day)]
    first, second = alerts(evs, "gpo-change")
    assert first.learning and not second.learning and second.count == 1 and "Administrator" in second.description


def test_synthetic_default_domain_policy_edit_and_gpo_path() -> None:
    ddp = "CN={31B2F340-016D-11D2-945F-00C04FB984F9},CN=Policies,CN=System,DC=contoso,DC=local"
    (a,) = alerts(gpo("versionNumber", "10", "11", dn=ddp), "gpo-change")
    assert a.severity == "medium" and "Default Domain Policy" in a.description
    (p,) = alerts(gpo("gPCFileSysPath", r"\\contoso.local\SysVol\x", r"\\10.0.0.66\share"), "gpo-change")
    assert p.severity == "high"


def test_synthetic_new_gpo_created_by_an_admin_stays_quiet() -> None:
    path = "\\\\contoso.local\\SysVol\\contoso.local\\Policies\\" + GPO
    evs = [k.created(at(0), GPO_DN, "groupPolicyContainer"),
           *gpo("displayName", None, "New Group Policy Object", t=0.1, actor=k.ADMIN),
           *gpo("gPCFileSysPath", None, path, t=0.2, actor=k.ADMIN),
           *gpo("versionNumber", None, "0", t=0.3, actor=k.ADMIN)]
    assert not alerts(evs, "gpo-change")


def test_synthetic_gpo_linked_to_the_domain() -> None:
    link = f"[LDAP://cn={GPO},cn=policies,cn=system,DC=contoso,DC=local;0]"
    (a,) = alerts(k.replace(at(0), k.ROOT, "domainDNS", "gPLink", "", link, actor=k.EVE), "gpo-change")
    assert "linked" in a.description


# -- the corpus -----------------------------------------------------------------------------------------------
def hunted(rel: str) -> dict[str, list]:
    found, _ = hunt([str(corpus(rel))], Detection(), ReadStats())
    out: dict[str, list] = {}
    for a in found:
        out.setdefault(a.type, []).append(a)
    return out


def test_corpus_privexchange_names_the_trustee_and_the_relay_source() -> None:
    (a,) = hunted("evtx/evtx-attack-samples/privexchange_dirkjan.evtx")["dcsync-rights"]
    assert a.hosts == ["192.168.111.87"] and "PrivExchange" in a.description
    assert "Get-Changes-All to S-1-5-21-2895268558-4179327395-2773671012-1151" in a.description


def test_corpus_powerview_acl_is_one_alert_for_three_aces() -> None:
    (a,) = hunted("dc-log/json/otrf-security-datasets/empire_powerview_ldap_ntsecuritydescriptor.zip")["dcsync-rights"]
    assert a.count == 3 and "In-Filtered-Set" in a.description and a.hosts == ["172.18.39.5"]


def test_corpus_rbcd_file_ignores_the_accidental_deletion_ace() -> None:
    got = hunted("dc-log/evtx/evtx-to-mitre-attack/ID5136-Computer account set for RBCD delegation.evtx")
    assert "acl-change" not in got and got["rbcd-change"][0].accounts[-1] == "target01$"


def test_corpus_gpo_permissions_name_the_ace() -> None:
    got = hunted("dc-log/evtx/evtx-to-mitre-attack/ID5136-Permissions changed on a GPO.evtx")
    assert "WriteDacl" in got["gpo-change"][0].description and "127328d6" in got["gpo-change"][0].description.lower()


def test_corpus_dc_is_the_reporting_computer() -> None:
    (a,) = hunted("dc-log/evtx/evtx-to-mitre-attack/ID5136-AdminSDholder permissions changed.evtx")["adminsdholder-change"]
    assert a.dcs == ["ROOTDC1"] and a.evidence and a.evidence[0].computer.upper().startswith("ROOTDC1")


def test_run_time_lists_from_the_console_reach_the_directory_detector() -> None:
    """`directory_writers_allowed` (a planned editor) quiets its ACL change; `sensitive_objects` is a
    list the console edits too: both applied to a running engine (settings_watch -> configure)."""
    from dcsentry.detectors.engine import DetectionEngine
    from dcsentry.service.settings_watch import apply

    rel = "dc-log/evtx/evtx-to-mitre-attack/ID5136-4662 AD object owner changed.evtx"  # admmig takes ownership
    events, _ = read_file_events(corpus(rel))

    def types(cfg: Detection | None) -> set[str]:
        engine = DetectionEngine(Detection())
        if cfg is not None:
            apply(engine, cfg)
        for ev in events:
            engine.feed(ev)
        engine.finish()
        return {a.type for a in engine.alerts.values()}

    assert "acl-change" in types(None)
    planned = Detection(directory_writers_allowed=["admmig"], sensitive_objects=["ou=tier0,dc=offsec,dc=lan"])
    assert "acl-change" not in types(planned)
