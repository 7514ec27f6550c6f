"""Directory Service Changes that hand out rights, in the rule table of
detectors/dclog/directory_rules.py (reference/dc-log-alerts.md A6, B8): dcsync-rights,
shadow-credentials, rbcd-change.

Tests named `synthetic` build events from the reference's layouts (no public recording of shadow
credentials, GPO client-side-extension edits or primaryGroupID changes); the corpus files of these
types are scored in test_hunt_dclog.py and read here for what the alert says."""

from __future__ import annotations

from dataclasses import replace as dc_replace

import pytest

import dclog_directorykit as k
from dclog_accesskit import access
from dclog_directorykit import ATTACKER_PC, KCL, PC_DN, USER_DN, alerts
from dclog_kerberoskit import tgt
from dcsentry.config import Detection
from eventfactory import DOMAIN_SID, at

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

