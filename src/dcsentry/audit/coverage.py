"""What the DC-log detections' events need (reference/dc-log-alerts.md parts A-C): one requirement
per event (or pair), so `dcsentry audit` can say per event which alert types stay blind.

Directory events need more than a subcategory: 4662 is written only where an object's SACL matches
(the domain root needs Everyone / Success / Control Access for DCSync), 5136 only for audited writes
(domain root, AdminSDHolder, CN=Policies fall outside Defender for Identity's descendant SACL). No
audit export carries SACLs: `extra` says so, and `audit --fix-script` writes domain-sacl.ps1 to
check and set them. CA events need, on each CA, Certification Services auditing and the CA's own
AuditFilter (certutil -getreg CA\\AuditFilter; 127 = everything).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .requirements import Requirement

DOMAIN_SACL = ("the domain-root SACL (Everyone, Success, Control Access on the domain object) cannot be read from an "
               "audit export: check it with domain-sacl.ps1 -CheckOnly (written by `dcsentry audit --fix-script`)")
WRITE_SACLS = ("the Write SACLs on the domain root, AdminSDHolder and CN=Policies (Defender for Identity's SACL covers "
               "only descendant users, groups, computers and service accounts) cannot be read from an audit export: "
               "check them with domain-sacl.ps1 -CheckOnly (written by `dcsentry audit --fix-script`)")
CA_FILTER_FIX = ("on each CA: certutil -setreg CA\\AuditFilter 127, then restart the CA service "
                 "(net stop certsvc & net start certsvc)")
AUDIT_FILTER_BITS = {1: "start/stop", 2: "backup/restore", 4: "issue and manage requests", 8: "revoke, publish CRLs",
                     16: "CA security", 32: "archived keys", 64: "CA configuration"}

_DSC_BLIND = ("shadow-credentials", "rbcd-change", "spn-added-to-user", "primary-group-change", "adminsdholder-change",
              "acl-change", "dcsync-rights", "gpo-change", "dcshadow", "honeytoken-activity")


def dc_log_requirements() -> tuple[Requirement, ...]:
    """The table. Built when requirements.py has defined what it builds on (requirements.py calls
    this at its end, so that importing either module first works)."""
    from .requirements import DAY, FAILURE, SUCCESS, Requirement, context_requirement, guid_of

    dsa, dsc = guid_of("Directory Service Access"), guid_of("Directory Service Changes")
    uam, cam = guid_of("User Account Management"), guid_of("Computer Account Management")
    apc, dfs = guid_of("Authentication Policy Change"), guid_of("Detailed File Share")
    cs = guid_of("Certification Services")

    def _uam(key: str, ids: tuple[int, ...], what: str, blind: tuple[str, ...], needs: int = SUCCESS,
             note: str = "") -> Requirement:
        return context_requirement(key, ids, what, uam, needs, blind, note)

    def _cam(key: str, ids: tuple[int, ...], what: str, blind: tuple[str, ...]) -> Requirement:
        return context_requirement(key, ids, what, cam, SUCCESS, blind)

    def _always(key: str, ids: tuple[int, ...], what: str, note: str, forward: str, reads: str) -> Requirement:
        # `blind` names the detection that reads it; an always-logged event is always "yes", never blind
        return Requirement(key, ids, what, f"forwarding of {forward} (no audit setting controls it)",
                           "The SIEM / Windows Event Forwarding subscription", f"include {forward}", (reads,),
                           30 * DAY,
                           f"{forward} is probably not forwarded", required=False, always_note=note,
                           blind_note="none: always logged")

    def _ca(key: str, ids: tuple[int, ...], what: str, blind: tuple[str, ...], bits: int) -> Requirement:
        return context_requirement(key, ids, what, cs, SUCCESS, blind, "", scope="ca", ca_filter=bits,
                                   extra=(CA_FILTER_FIX,))

    return (
        context_requirement("directory-service-access", (4662,), "event 4662 (operation on a directory object)", dsa,
                            SUCCESS, ("dcsync", "dpapi-backup-key", "dcshadow", "honeytoken-activity"),
                            "honeytoken-activity only for its 'queried' form (a Read SACL on the honeytoken)",
                            missing_after=7 * DAY, health="stopped", extra=(DOMAIN_SACL,),
                            likely_cause="Audit Directory Service Access or the domain-root SACL was probably removed"),
        context_requirement("directory-service-changes", (5136,), "event 5136 (directory object modified)", dsc,
                            SUCCESS,
                            _DSC_BLIND, missing_after=7 * DAY, health="stopped", extra=(WRITE_SACLS,),
                            likely_cause="Audit Directory Service Changes or the objects' Write SACLs were probably "
                                         "removed"),
        context_requirement("directory-objects-created-deleted", (5137, 5141),
                            "events 5137/5141 (directory object created / deleted)", dsc, SUCCESS, ("dcshadow",),
                            extra=(WRITE_SACLS,)),
        _uam("user-account-changes", (4738,), "event 4738 (user account changed)",
             ("preauth-disabled", "asrep-roasting", "primary-group-change", "sid-history", "honeytoken-activity"),
             note="asrep-roasting only for its pre-authentication-disabled companion"),
        _uam("user-account-state", (4722, 4724, 4725, 4726),
             "events 4722/4724/4725/4726 (user enabled, password reset, disabled, deleted)", ("honeytoken-activity",)),
        _uam("account-renamed", (4781,), "event 4781 (account name changed)", ("nopac", "honeytoken-activity")),
        _uam("sid-history-added", (4765,), "event 4765 (SID History added)", ("sid-history",)),
        _uam("sid-history-failed", (4766,), "event 4766 (adding SID History failed)", ("sid-history",), FAILURE),
        _uam("dsrm-password", (4794,), "event 4794 (DSRM administrator password set)", ("dsrm-password-change",),
             SUCCESS | FAILURE,
             "failed attempts are Failure audits"),
        _cam("computer-account-created", (4741,), "event 4741 (computer account created)", ("nopac",)),
        _cam("computer-account-changed", (4742,), "event 4742 (computer account changed)", ("nopac", "dcshadow")),
        _cam("computer-account-deleted", (4743,), "event 4743 (computer account deleted)", ()),
        _always("audit-policy-changes", (4719,), "event 4719 (system audit policy changed)",
                "always logged, whatever 'Audit Audit Policy Change' says (Microsoft): forward Security event 4719",
                "Security event 4719", "audit-policy-disabled"),
        _always("security-log-cleared", (1102,), "event 1102 (Security log cleared)",
                "always logged by the Event Log service when the Security log is cleared: forward Security event 1102",
                "Security event 1102", "log-cleared"),
        _always("log-cleared", (104,), "event 104 (a log was cleared, System log)",
                "always logged by the Event Log service when a log is cleared: forward System event 104 "
                "(provider Microsoft-Windows-Eventlog)", "System event 104", "log-cleared"),
        context_requirement("trusts", (4706, 4865), "events 4706/4865 (domain trust / forest trust information added)",
                            apc, SUCCESS, ("trust-created",)),
        context_requirement("detailed-file-share", (5145,), "event 5145 (network share object access checked)", dfs,
                            SUCCESS, ("remote-service-installation",),
                            "only the System-log path (7045 after a write to \\\\*\\IPC$\\svcctl); noisy, optional",
                            optional=True, value="Success"),
        _ca("ca-requests", (4886, 4887, 4888),
            "events 4886/4887/4888 (certificate requested / issued / denied, on the CA)",
            ("adcs-san-mismatch",), 4),
        _ca("ca-security", (4882, 4890), "events 4882/4890 (CA permissions / certificate manager settings changed, on "
            "the CA)", ("adcs-config-change",), 16),
        _ca("ca-audit-filter", (4885,), "event 4885 (CA audit filter changed, on the CA)", ("adcs-config-change",), 0),
        _ca("ca-rows-deleted", (4896,), "event 4896 (rows deleted from the CA database, on the CA)",
            ("adcs-config-change",), 0),
        _ca("ca-templates", (4898, 4899, 4900),
            "events 4898/4899/4900 (certificate template loaded / updated / security "
            "updated, on the CA)", ("adcs-config-change",), 0),
    )
