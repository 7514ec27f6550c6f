"""What each event the sensor reads needs on the DC, what to change when it is missing, and which
detections stay blind without it. One table: the service's "events missing" health alerts and the
`audit` command's checks both read it (reference/audit-policy.md, health-alerts.md).

- `REQUIREMENTS`: the settings the sensor cannot work without (the nine core events). The service
  raises a health alert per DC for each of them (`overdue`); `dcsentry audit` exits non-zero when
  one is off.
- `CONTEXT_REQUIREMENTS`: what produces the context events of the catalogue (4624, 4768, ...).
  Reported by `dcsentry audit`, never a health alert.
- `SUBCATEGORIES`, `LEGACY_CATEGORIES`, `REGISTRY_VALUES`: the facts the checks compare against
  (GUIDs, legacy category keys, registry values of the Security Options), from audit-policy.md.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from ..catalogue import NTLM_DC_AUDIT_IDS, spec
from ..subcategories import SUBCATEGORIES, guid_of

SECURITY_OPTIONS = ("Computer configuration > Policies > Windows Settings > Security Settings > Local Policies > "
                    "Security Options")
ADVANCED_AUDIT = ("Computer configuration > Policies > Windows Settings > Security Settings > Advanced Audit Policy "
                  "Configuration > Audit Policies")
LEGACY_AUDIT = ("Computer configuration > Policies > Windows Settings > Security Settings > Local Policies > "
                "Audit Policy")
DAY = 86400.0

SUCCESS, FAILURE = 1, 2  # bits, as in a GPO audit.csv's Setting Value (3 = both)
BITS_TEXT = {0: "No Auditing", 1: "Success", 2: "Failure", 3: "Success and Failure"}


LEGACY_CATEGORIES = {  # secedit key (lower case) -> (key, the legacy GPO setting's display name)
    "auditsystemevents": ("AuditSystemEvents", "Audit system events"),
    "auditlogonevents": ("AuditLogonEvents", "Audit logon events"),
    "auditobjectaccess": ("AuditObjectAccess", "Audit object access"),
    "auditprivilegeuse": ("AuditPrivilegeUse", "Audit privilege use"),
    "auditpolicychange": ("AuditPolicyChange", "Audit policy change"),
    "auditaccountmanage": ("AuditAccountManage", "Audit account management"),
    "auditprocesstracking": ("AuditProcessTracking", "Audit process tracking"),
    "auditdsaccess": ("AuditDSAccess", "Audit directory service access"),
    "auditaccountlogon": ("AuditAccountLogon", "Audit account logon events"),
}

CREDENTIAL_VALIDATION = guid_of("Credential Validation")
SECURITY_GROUP_MANAGEMENT = guid_of("Security Group Management")
# Defender for Identity's expectation for DCs: these, Success and Failure (Test-MdiReadiness.ps1)
MDI_SUBCATEGORIES = tuple(guid_of(n) for n in (
    "Security System Extension", "Distribution Group Management", "Security Group Management",
    "Computer Account Management", "User Account Management", "Directory Service Access",
    "Directory Service Changes", "Credential Validation"))


@dataclass(frozen=True, slots=True)
class RegistryValue:
    """A Security Option that lives in the registry (HKLM, REG_DWORD)."""

    key: str  # under HKLM, as the GPO template spells it
    name: str
    option: str  # the Security Option's display name
    wanted: int | None  # what dcsentry asks for (None: only warned about)
    meanings: dict[int, str]
    absent: int | None  # the value Windows uses when it is not set (None: see `absent_text`)
    absent_text: str = ""

    @property
    def path(self) -> str:
        return f"{self.key}\\{self.name}"

    def text(self, value: int | None) -> str:
        if value is None:
            return self.absent_text or f"not set ({self.meanings.get(self.absent or 0, '?')})"
        return f"{value} ({self.meanings.get(value, 'undocumented value')})"

    @property
    def wanted_text(self) -> str:
        """The meaning of the wanted value ("" for a value dcsentry only warns about)."""
        return "" if self.wanted is None else self.meanings[self.wanted]

    def fix(self) -> str:
        if self.wanted is None:
            return ""
        return f"{SECURITY_OPTIONS} > \"{self.option}\" = {self.wanted_text}"


_LSA = r"System\CurrentControlSet\Control\Lsa"
_MSV = _LSA + r"\MSV1_0"
_NETLOGON = r"System\CurrentControlSet\Services\Netlogon\Parameters"
REGISTRY_VALUES: dict[str, RegistryValue] = {v.name.lower(): v for v in (
    RegistryValue(_NETLOGON, "AuditNTLMInDomain", "Network security: Restrict NTLM: Audit NTLM authentication in "
                  "this domain", 7, {0: "Disable", 1: "Enable for domain accounts to domain servers",
                                     3: "Enable for domain accounts", 5: "Enable for domain servers", 7: "Enable all"},
                  0),
    RegistryValue(_MSV, "RestrictSendingNTLMTraffic", "Network security: Restrict NTLM: Outgoing NTLM traffic to "
                  "remote servers", 1, {0: "Allow all", 1: "Audit all", 2: "Deny all"}, 0),
    RegistryValue(_MSV, "AuditReceivingNTLMTraffic", "Network security: Restrict NTLM: Audit Incoming NTLM Traffic",
                  2, {0: "Disable", 1: "Enable auditing for domain accounts", 2: "Enable auditing for all accounts"},
                  0),
    RegistryValue(_LSA, "SCENoApplyLegacyAuditPolicy", "Audit: Force audit policy subcategory settings (Windows Vista "
                  "or later) to override audit policy category settings", 1, {0: "Disabled", 1: "Enabled"}, None,
                  "not set (Windows default: Enabled)"),
    RegistryValue(_NETLOGON, "RestrictNTLMInDomain", "Network security: Restrict NTLM: NTLM authentication in this "
                  "domain", None, {0: "Disable", 1: "Deny for domain accounts to domain servers",
                                   3: "Deny for domain accounts", 5: "Deny for domain servers", 7: "Deny all"}, 0),
    RegistryValue(_MSV, "RestrictReceivingNTLMTraffic", "Network security: Restrict NTLM: Incoming NTLM traffic",
                  None, {0: "Allow all", 1: "Deny all domain accounts", 2: "Deny all accounts"}, 0),
)}
AUDIT_NTLM_IN_DOMAIN = REGISTRY_VALUES["auditntlmindomain"]
FORCE_SUBCATEGORIES = REGISTRY_VALUES["scenoapplylegacyauditpolicy"]
# The three "Restrict NTLM" audit settings the seed asks for (only the first one produces 8004).
NTLM_AUDIT_VALUES = tuple(REGISTRY_VALUES[k] for k in ("auditntlmindomain", "restrictsendingntlmtraffic",
                                                       "auditreceivingntlmtraffic"))


@dataclass(frozen=True, slots=True)
class Requirement:
    key: str  # health check id
    event_ids: tuple[int, ...]  # any of these counts as "seen"
    what: str  # the events, in words
    setting: str  # the exact setting to change
    where: str  # GPO path
    value: str  # the value it needs
    blind: tuple[str, ...]  # alert types that stay blind without these events
    missing_after: float  # how long a DC may send none of them before a health alert
    likely_cause: str  # the health alert's title: what is probably wrong
    # What decides it (the audit command compares exports against these):
    subcategory: str | None = None  # advanced audit subcategory GUID
    needs: int = 0  # SUCCESS/FAILURE bits the events need from it
    registry: str | None = None  # REGISTRY_VALUES key, for settings that are not audit policy
    required: bool = True  # False: a context event, reported but never an error
    blind_note: str = ""  # what "blind" means when only part of a detection depends on these events
    extra: tuple[str, ...] = field(default=())  # other settings worth knowing about, in words
    # Health: "absent" = alert when a DC never sent any of these within `missing_after` (the core
    # events); "stopped" = alert when a DC sent them, then none for `missing_after` while it kept
    # sending others (events whose volume depends on the domain); "" = shown, never alerted.
    health: str = ""
    always_note: str = ""  # for events no setting controls: who writes them, what to forward
    scope: str = "dc"  # "dc", or "ca": produced on the certification authority, not the DC
    optional: bool = False  # noisy or niche: reported, left out of the DC fix scripts
    ca_filter: int | None = None  # CA events: the AuditFilter bits that gate it (0: not documented, 127 covers it)

    def fix(self) -> str:
        return f"{self.where} > \"{self.setting}\" = {self.value}"

    @property
    def always(self) -> bool:
        """No setting controls it (7045, 1102, 104, 4719): it is produced whenever the thing happens."""
        return self.subcategory is None and self.registry is None

    @property
    def subcategory_name(self) -> str:
        """The setting as an admin looks for it ("Audit Directory Service Access"), or what stands in for one."""
        if self.subcategory:
            return f"Audit {SUBCATEGORIES[self.subcategory].name}"
        return self.setting if self.registry else "none (always logged)"


def _advanced(guid: str) -> tuple[str, str]:
    s = SUBCATEGORIES[guid]
    return f"Audit {s.name}", f"{ADVANCED_AUDIT} > {s.category}"


_CV, _CV_WHERE = _advanced(CREDENTIAL_VALIDATION)
_SGM, _SGM_WHERE = _advanced(SECURITY_GROUP_MANAGEMENT)

REQUIREMENTS: tuple[Requirement, ...] = (
    Requirement(
        "ntlm-auditing", (8004, 8005, 8006), "event 8004 (NTLM authentication audit, with the server accessed)",
        "Network security: Restrict NTLM: Audit NTLM authentication in this domain", SECURITY_OPTIONS, "Enable all",
        ("honeytoken-activity",), DAY,
        "NTLM auditing is probably not enabled", health="absent",
        registry="auditntlmindomain",
        blind_note="NTLM alerts lose the server the account was used against",
        extra=("8004 is written to the Microsoft-Windows-NTLM/Operational log, not Security: forward that channel "
               "too (Windows Event Forwarding subscriptions must list it)",)),
    Requirement(
        "credential-validation", (4776,), "event 4776 (NTLM credential validation)",
        _CV, _CV_WHERE, "Success and Failure",
        ("brute-force", "password-spray", "account-enumeration", "honeytoken-activity"), DAY,
        "Advanced audit policy 'Audit Credential Validation' is probably not set",
        subcategory=CREDENTIAL_VALIDATION, needs=SUCCESS | FAILURE, health="absent",
        blind_note="NTLM attempts (failures are the wrong passwords: Success alone leaves the attacks unseen)"),
    Requirement(
        "security-group-management", (4728, 4729, 4732, 4733, 4756, 4757),
        "events 4728/4729, 4732/4733, 4756/4757 (security group membership changes)",
        _SGM, _SGM_WHERE, "Success and Failure",
        ("sensitive-group-addition",), 14 * DAY,
        "Advanced audit policy 'Audit Security Group Management' is probably not set",
        subcategory=SECURITY_GROUP_MANAGEMENT, needs=SUCCESS, health="absent"),
    Requirement(
        "service-installs", (7045,), "event 7045 (service installed, System log)",
        "forwarding of the System log's event 7045 (no audit setting controls it: the Service Control Manager "
        "always writes it)", "The SIEM / Windows Event Forwarding subscription", "include System event 7045",
        ("suspicious-service-creation", "remote-code-execution", "remote-service-installation"), 30 * DAY,
        "Event 7045 is probably not forwarded", health="absent",
        always_note="no audit setting controls it: the Service Control Manager always writes it to the System log; "
                    "make sure the System log's 7045 is forwarded to dcsentry"),
)


def context_requirement(key: str, ids: tuple[int, ...], what: str, subcategory: str, needs: int,
                        blind: tuple[str, ...] = (), blind_note: str = "", **kw: object) -> Requirement:
    """A context event's requirement: an advanced audit subcategory, asked for Success and Failure."""
    setting, where = _advanced(subcategory)
    return Requirement(key, ids, what, setting, where, str(kw.pop("value", "Success and Failure")), blind,
                       float(kw.pop("missing_after", 30 * DAY)),  # type: ignore[arg-type]
                       str(kw.pop("likely_cause", f"Advanced audit policy '{setting}' is probably not set")),
                       subcategory=subcategory, needs=needs, required=False, blind_note=blind_note,
                       **kw)  # type: ignore[arg-type]


_AUTH = ("brute-force", "password-spray", "account-enumeration", "honeytoken-activity")
_KAS, _KSTO = guid_of("Kerberos Authentication Service"), guid_of("Kerberos Service Ticket Operations")
CONTEXT_REQUIREMENTS: tuple[Requirement, ...] = (
    context_requirement("logon", (4624,), "event 4624 (successful logon)", guid_of("Logon"), SUCCESS,
                        ("pass-the-hash", "remote-service-installation"),
                        "logon sessions: the source address of DCSync, service installs and directory changes"),
    context_requirement("logon-failures", (4625,), "event 4625 (failed logon)", guid_of("Logon"), FAILURE,
                        ("brute-force", "password-spray", "account-enumeration"),
                        "failed logons to the DC itself (NTLM ones are also seen through 4776)"),
    context_requirement("kerberos-authentication", (4768,), "event 4768 (Kerberos TGT requested)", _KAS,
                        SUCCESS | FAILURE, (*_AUTH, "asrep-roasting", "overpass-the-hash", "golden-ticket", "nopac"),
                        "Kerberos attempts (NTLM ones are still seen through 4776); shadow-credentials loses its "
                        "'used for authentication' follow-up",
                        missing_after=DAY, health="stopped",
                        likely_cause="Advanced audit policy 'Audit Kerberos Authentication Service' was probably "
                                     "turned off"),
    context_requirement("kerberos-preauth-failures", (4771,), "event 4771 (Kerberos pre-authentication failed)", _KAS,
                        FAILURE, ("brute-force", "password-spray", "honeytoken-activity"),
                        "Kerberos wrong passwords (NTLM ones are still seen through 4776)"),
    context_requirement("kerberos-service-tickets", (4769,), "event 4769 (Kerberos service ticket requested)", _KSTO,
                        SUCCESS | FAILURE, ("kerberoasting", "golden-ticket", "nopac", "honeytoken-activity"),
                        missing_after=DAY, health="stopped",
                        likely_cause="Advanced audit policy 'Audit Kerberos Service Ticket Operations' was probably "
                                     "turned off"),
    context_requirement("security-system-extension", (4697,), "event 4697 (service installed, Security log)",
                        guid_of("Security System Extension"), SUCCESS, ("remote-service-installation",),
                        "the Security-log path (4697 joined to the installer's 4624); the System log's 7045 still "
                        "tells of the same installs"),
    context_requirement("user-account-management", (4720,), "event 4720 (user account created)",
                        guid_of("User Account Management"), SUCCESS, ("preauth-disabled",)),
)

# The DC-log detections' events (reference/dc-log-alerts.md parts B and C): audit/coverage.py.
from .coverage import dc_log_requirements  # noqa: E402  (it builds on the definitions above)

DC_LOG_REQUIREMENTS = dc_log_requirements()

ALL_REQUIREMENTS: tuple[Requirement, ...] = REQUIREMENTS + CONTEXT_REQUIREMENTS + DC_LOG_REQUIREMENTS

BY_KEY = {r.key: r for r in ALL_REQUIREMENTS}
_BY_EVENT = {e: r for r in reversed(ALL_REQUIREMENTS) for e in r.event_ids}


def requirement_for(event_id: int) -> Requirement | None:
    return _BY_EVENT.get(event_id)


def missing(seen_ids: set[int]) -> list[Requirement]:
    """Requirements none of whose events are in `seen_ids`: the settings probably not in place."""
    return [r for r in REQUIREMENTS if not seen_ids.intersection(r.event_ids)]


# -- "events missing": one implementation for the service's health alerts and `audit --events` --------

def health_key(event_id: int, channel: str, computer: str) -> tuple[str, int] | None:
    """(DC short name, event id) under which an event counts as "seen" for the health checks, or
    None when it does not count. 8005/8006 count as 8004; 8004 only on the NTLM operational channel."""
    if event_id in NTLM_DC_AUDIT_IDS:
        if spec(8004, channel) is None:
            return None
        event_id = 8004
    elif spec(event_id, channel) is None or requirement_for(event_id) is None:
        return None
    return computer.split(".", 1)[0].upper(), event_id


def overdue(seen: Iterable[int], first: float, now: float, scale: float = 1.0,
            requirements: Iterable[Requirement] = REQUIREMENTS) -> list[tuple[Requirement, float]]:
    """The requirements a DC has sent none of although it has been seen for at least as long as each
    allows (`missing_after * scale`), with that allowance. A DC seen for a shorter time cannot be told
    apart from a quiet one: see `too_early`."""
    seen = set(seen)
    out = []
    for req in requirements:
        allowed = req.missing_after * scale
        if not seen.intersection(req.event_ids) and now - first >= allowed:
            out.append((req, allowed))
    return out


def too_early(seen: Iterable[int], first: float, now: float, scale: float = 1.0,
              requirements: Iterable[Requirement] = REQUIREMENTS) -> list[tuple[Requirement, float]]:
    """The requirements with none of their events yet, but over a span shorter than they allow."""
    seen = set(seen)
    return [(r, r.missing_after * scale) for r in requirements
            if not seen.intersection(r.event_ids) and now - first < r.missing_after * scale]
