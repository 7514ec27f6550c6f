"""Alerts: the record detectors produce and sinks send, and the catalogue of alert types.

The catalogue carries what a SIEM integration keys on (Defender for Identity's external ids and
CEF signature names, ../shared/reference/cef-alert-output.md) next to dcsentry's own type ids.

Sigma rules raise alerts of type ``sigma:<rule id>``. They are deliberately not in ALERT_TYPES:
a SIEM then gets the rule id as the CEF Signature ID and the rule title as the Name (the path
every type outside the catalogue takes), with no MDI ``externalId`` (there is none to claim).
Their severity is the rule's level folded onto dcsentry's three (SIGMA_SEVERITY).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime

import msgspec

from .model import iso_utc

SEVERITIES = ("low", "medium", "high")
CEF_SEVERITY = {"low": 3, "medium": 5, "high": 10}
SIGMA_PREFIX = "sigma:"
SIGMA_SEVERITY = {"informational": "low", "low": "low", "medium": "medium", "high": "high", "critical": "high"}


@dataclass(frozen=True, slots=True)
class AlertType:
    type: str
    title: str
    external_id: int
    signature: str  # CEF Signature ID, MDI naming
    technique: str  # MITRE ATT&CK technique id
    severity: str  # default severity
    app: str  # CEF `app`: the activity the alert rests on
    xdr_id: str | None = None  # Defender XDR detector id, where the XDR catalogue has one
    tactic: str = ""  # MITRE ATT&CK tactic, as Defender for Identity lists it


ALERT_TYPES: dict[str, AlertType] = {t.type: t for t in (
    AlertType("brute-force", "Suspected Brute Force attack (Kerberos, NTLM)", 2023,
              "BruteForceSecurityAlert", "T1110.001", "medium", "Ntlm", "xdr_OnPremBruteforce", "Credential Access"),
    AlertType("password-spray", "Suspected password spray attack (Kerberos, NTLM)", 2023,
              "BruteForceSecurityAlert", "T1110.003", "medium", "Ntlm", "xdr_OnPremPasswordSpray", "Credential Access"),
    AlertType("account-enumeration", "Account enumeration reconnaissance", 2003,
              "AccountEnumerationSecurityAlert", "T1087.002", "medium", "Ntlm", None, "Discovery"),
    AlertType("honeytoken-activity", "Honeytoken authentication activity", 2014,
              "HoneytokenActivitySecurityAlert", "T1087.002", "medium", "Ntlm", "xdr_HoneytokenSignInAttempt",
              "Credential Access"),
    AlertType("sensitive-group-addition", "Suspicious additions to sensitive groups", 2024,
              "AbnormalSensitiveGroupMembershipChangeSecurityAlert", "T1098", "medium", "GroupMembershipChangeEvent",
              None, "Persistence"),
    AlertType("suspicious-service-creation", "Suspicious service creation", 2026,
              "MaliciousServiceCreationSecurityAlert", "T1543.003", "medium", "ServiceInstalledEvent", None,
              "Execution"),
    AlertType("remote-code-execution", "Remote code execution attempt", 2019,
              "RemoteExecutionSecurityAlert", "T1569.002", "medium", "ServiceControl", None, "Execution"),
    # The DC's own Security log (../shared/reference/dc-log-alerts.md, part C): credential theft.
    AlertType("dcsync", "Suspected DCSync attack (replication of directory services)", 2006,
              "DirectoryServicesReplicationSecurityAlert", "T1003.006", "high", "Drsr", None, "Credential Access"),
    AlertType("kerberoasting", "Suspected Kerberos SPN exposure (Kerberoasting)", 2410,
              "KerberoastingSecurityAlert", "T1558.003", "high", "Kerberos", "xdr_PossibleKerberoastingAttack",
              "Credential Access"),
    AlertType("asrep-roasting", "Suspected AS-REP Roasting attack", 2412,
              "AsRepRoastingSecurityAlert", "T1558.004", "high", "Kerberos", "xdr_AsrepRoastingAttack",
              "Credential Access"),
    AlertType("golden-ticket", "Suspected Golden Ticket usage", 2027,
              "ForgedPrincipalSecurityAlert", "T1558.001", "high", "Kerberos", None, "Credential Access"),
    AlertType("overpass-the-hash", "Suspected overpass-the-hash attack (Kerberos)", 2002,
              "EncryptionDowngradeSecurityAlert", "T1550.002", "medium", "Kerberos", "xdr_PossibleOverPassTheHash",
              "Lateral Movement"),
    AlertType("pass-the-hash", "Suspected identity theft (pass-the-hash)", 2017,
              "PassTheHashSecurityAlert", "T1550.002", "high", "Ntlm", None, "Lateral Movement"),
    AlertType("dpapi-backup-key", "Malicious request of Data Protection API master key", 2020,
              "RetrieveDataProtectionBackupKeySecurityAlert", "T1555", "high", "LsaRpc", None, "Credential Access"),
    AlertType("remote-service-installation", "Suspicious remote service installation", 2026,
              "RemoteServiceInstallationSecurityAlert", "T1569.002", "medium", "ServiceInstalledEvent",
              "xdr_SuspiciousRemoteServiceInstallation", "Lateral Movement"),
    # Directory and certificate-authority backdoors (part B8-B15).
    AlertType("dcsync-rights", "Suspicious addition of replication rights (DCSync ACL) to the domain", 0,
              "DcsyncRightsAclSecurityAlert", "T1098", "high", "Ldap", "xdr_SuspiciousAdditionOfAcl", "Persistence"),
    AlertType("shadow-credentials", "Suspected account takeover using shadow credentials", 2431,
              "ShadowCredentialsSecurityAlert", "T1098", "high", "Ldap", "xdr_ShadowCredentialsAttack",
              "Credential Access"),
    AlertType("rbcd-change", "Suspicious change of resource-based constrained delegation", 0,
              "RbcdAttributeChangeSecurityAlert", "T1098", "medium", "Ldap", "xdr_SuspiciousRbcdAttributeChange",
              "Privilege Escalation"),
    AlertType("spn-added-to-user", "Suspicious addition of an SPN to a user", 0,
              "SpnAddedToUserSecurityAlert", "T1098", "high", "Ldap", "xdr_SuspiciousAdditionOfSpnToUser",
              "Persistence"),
    AlertType("primary-group-change", "Suspicious change in a user's primary group", 0,
              "PrimaryGroupIdChangeSecurityAlert", "T1098", "high", "Ldap", "xdr_SuspiciousChangeInUserPrimaryGroupId",
              "Persistence"),
    AlertType("adminsdholder-change", "Suspicious modification of the AdminSDHolder permissions", 2430,
              "AdminSdHolderSecurityAlert", "T1098", "high", "Ldap", None, "Persistence"),
    AlertType("acl-change", "Permissions changed on a sensitive directory object", 0,
              "SensitiveObjectAclChangeSecurityAlert", "T1222.001", "medium", "Ldap", None, "Defense Evasion"),
    AlertType("gpo-change", "Group policy object changed", 0,
              "GroupPolicyTamperingSecurityAlert", "T1484.001", "medium", "Ldap", None, "Privilege Escalation"),
    AlertType("preauth-disabled", "Kerberos pre-authentication disabled on an account", 0,
              "PreauthDisabledSecurityAlert", "T1558.004", "medium", "AccountChange", None, "Credential Access"),
    AlertType("nopac", "Suspicious modification of a sAMAccountName attribute (noPac)", 2419,
              "SamNameChangeSecurityAlert", "T1134.001", "high", "AccountChange", "xdr_SuspiciousChangeOfSamName",
              "Privilege Escalation"),
    AlertType("sid-history", "Suspected SID-History injection", 1106,
              "SidHistoryInjectionSecurityAlert", "T1134.005", "high", "AccountChange", None, "Privilege Escalation"),
    AlertType("dcshadow", "Suspected DCShadow attack (domain controller promotion)", 2028,
              "DirectoryServicesRoguePromotionSecurityAlert", "T1207", "high", "Ldap", None, "Defense Evasion"),
    AlertType("dsrm-password-change", "Directory Services Restore Mode password change", 2438,
              "DsrmPasswordChangeSecurityAlert", "T1098", "medium", "AccountChange", None, "Persistence"),
    AlertType("log-cleared", "Event log cleared", 0,
              "EventLogClearedSecurityAlert", "T1070.001", "high", "EventLog", None, "Defense Evasion"),
    AlertType("audit-policy-disabled", "Audit policy weakened", 0,
              "AuditPolicyDisabledSecurityAlert", "T1562.002", "medium", "AuditPolicy", None, "Defense Evasion"),
    AlertType("trust-created", "New domain trust", 0,
              "DomainTrustCreatedSecurityAlert", "T1484.002", "medium", "TrustChange", None, "Privilege Escalation"),
    AlertType("adcs-san-mismatch", "Certificate requested for another identity (AD CS)", 0,
              "AdcsSubjectAlternativeNameSecurityAlert", "T1649", "high", "CertificateServices", None,
              "Credential Access"),
    AlertType("adcs-config-change", "Suspicious modifications to the AD CS security permissions/settings", 2435,
              "AdcsConfigurationChangeSecurityAlert", "T1484", "medium", "CertificateServices", None,
              "Privilege Escalation"),
    # dcsentry's own (no Defender for Identity counterpart; ids from 9000 up): a forwarding client
    # authenticated as one computer delivered events that claim another (docs/wef.md).
    AlertType("wef-sender-mismatch", "Forwarded events claim another computer than their sender", 9001,
              "ForwardedEventSenderMismatchSecurityAlert", "T1565.002", "high", "WindowsEventForwarding",
              None, "Impact"),
    # a syslog sender claimed a computer that `[serve] senders` does not bind to it (detectors/senders.py)
    AlertType("sender-mismatch", "Syslog events claim a computer their sender may not speak for", 9002,
              "SyslogSenderMismatchSecurityAlert", "T1565.002", "high", "Syslog", None, "Impact"),
)}


class Evidence(msgspec.Struct, frozen=True):
    """One event behind an alert: enough to find the raw record again."""

    event_id: int
    computer: str
    record_id: int | None
    time: datetime
    origin: str | None = None

    def to_dict(self) -> dict:
        return {"event_id": self.event_id, "computer": self.computer, "record_id": self.record_id,
                "time": iso_utc(self.time), "origin": self.origin}


class Alert(msgspec.Struct):
    """A security or health alert. One attack in progress is one alert that grows."""

    type: str
    key: str  # what makes it one incident (e.g. source host), part of the id
    title: str
    description: str
    severity: str
    technique: str
    start: datetime
    end: datetime
    count: int = 1
    accounts: list[str] = msgspec.field(default_factory=list)
    hosts: list[str] = msgspec.field(default_factory=list)
    dcs: list[str] = msgspec.field(default_factory=list)
    evidence: list[Evidence] = msgspec.field(default_factory=list)
    protocol: str | None = None
    outcome: str | None = None
    learning: bool = False
    status: str = "open"
    revision: int = 0  # 0 when new; each growth of the alert adds one (CEF cs2=update)
    details: dict = msgspec.field(default_factory=dict)
    kind: str = "security"  # or "health"
    incident: str | None = None  # the incident it belongs to (incidents/), once linked

    @property
    def id(self) -> str:
        """Stable across restarts and replays: type, incident key and start time."""
        raw = f"{self.type}|{self.key}|{iso_utc(self.start)}".encode()
        return hashlib.sha256(raw).hexdigest()[:24]

    @property
    def alert_type(self) -> AlertType | None:
        return ALERT_TYPES.get(self.type)

    def to_dict(self) -> dict:
        """The `hunt --jsonl` shape (a contract: keys only ever get added)."""
        at = self.alert_type
        return {
            "id": self.id,
            "type": self.type,
            "key": self.key,
            "kind": self.kind,
            "title": self.title,
            "description": self.description,
            "severity": self.severity,
            "technique": self.technique,
            "external_id": (at.external_id or None) if at else None,
            "xdr_id": at.xdr_id if at else None,
            "tactic": at.tactic if at else self.details.get("tactic"),
            "start": iso_utc(self.start),
            "end": iso_utc(self.end),
            "count": self.count,
            "entities": {"accounts": self.accounts, "hosts": self.hosts, "dcs": self.dcs},
            "protocol": self.protocol,
            "outcome": self.outcome,
            "learning": self.learning,
            "status": self.status,
            "revision": self.revision,
            "evidence": [e.to_dict() for e in self.evidence],
            "details": self.details,
            "incident": self.incident,
        }
