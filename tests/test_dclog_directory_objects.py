"""Directory Service Changes to accounts, ACLs and GPOs, in the rule table of
detectors/dclog/directory_rules.py (reference/dc-log-alerts.md A6, B8): spn-added-to-user,
primary-group-change, adminsdholder-change, acl-change, gpo-change.

Tests named `synthetic` build events from the reference's layouts (no public recording of shadow
credentials, GPO client-side-extension edits or primaryGroupID changes); the corpus files of these
types are scored in test_hunt_dclog.py and read here for what the alert says."""

from __future__ import annotations

from dataclasses import replace as dc_replace

import dclog_directorykit as k
from dclog_accountskit import account
from dclog_directorykit import ATTACKER_PC, GPO, GPO_DN, PC_DN, USER_DN, alerts
from dcsentry.config import Detection
from eventfactory import DOMAIN_SID, at


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

