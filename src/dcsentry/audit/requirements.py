"""What each event the sensor reads needs on the DC, what to change when it is missing, and which
detections stay blind without it. One table: the service's "events missing" health alerts and the
`audit` command's checks both read it (reference/audit-policy.md, health-alerts.md).
"""

from __future__ import annotations

from dataclasses import dataclass

SECURITY_OPTIONS = ("Computer configuration > Policies > Windows Settings > Security Settings > Local Policies > "
                    "Security Options")
ADVANCED_AUDIT = ("Computer configuration > Policies > Windows Settings > Security Settings > Advanced Audit Policy "
                  "Configuration > Audit Policies")
DAY = 86400.0


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

    def fix(self) -> str:
        return f"{self.where} > \"{self.setting}\" = {self.value}"


REQUIREMENTS: tuple[Requirement, ...] = (
    Requirement(
        "ntlm-auditing", (8004, 8005, 8006), "event 8004 (NTLM authentication audit, with the server accessed)",
        "Network security: Restrict NTLM: Audit NTLM authentication in this domain", SECURITY_OPTIONS, "Enable all",
        ("honeytoken-activity",), DAY,
        "NTLM auditing is probably not enabled"),
    Requirement(
        "credential-validation", (4776,), "event 4776 (NTLM credential validation)",
        "Audit Credential Validation", ADVANCED_AUDIT + " > Account Logon", "Success and Failure",
        ("brute-force", "password-spray", "account-enumeration", "honeytoken-activity"), DAY,
        "Advanced audit policy 'Audit Credential Validation' is probably not set"),
    Requirement(
        "security-group-management", (4728, 4729, 4732, 4733, 4756, 4757),
        "events 4728/4729, 4732/4733, 4756/4757 (security group membership changes)",
        "Audit Security Group Management", ADVANCED_AUDIT + " > Account Management", "Success and Failure",
        ("sensitive-group-addition",), 14 * DAY,
        "Advanced audit policy 'Audit Security Group Management' is probably not set"),
    Requirement(
        "service-installs", (7045,), "event 7045 (service installed, System log)",
        "forwarding of the System log's event 7045 (no audit setting controls it: the Service Control Manager "
        "always writes it)", "The SIEM / Windows Event Forwarding subscription", "include System event 7045",
        ("suspicious-service-creation", "remote-code-execution"), 30 * DAY,
        "Event 7045 is probably not forwarded"),
)

BY_KEY = {r.key: r for r in REQUIREMENTS}


def requirement_for(event_id: int) -> Requirement | None:
    return next((r for r in REQUIREMENTS if event_id in r.event_ids), None)


def missing(seen_ids: set[int]) -> list[Requirement]:
    """Requirements none of whose events are in `seen_ids`: the settings probably not in place."""
    return [r for r in REQUIREMENTS if not seen_ids.intersection(r.event_ids)]
