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


ALERT_TYPES: dict[str, AlertType] = {t.type: t for t in (
    AlertType("brute-force", "Suspected Brute Force attack (Kerberos, NTLM)", 2023,
              "BruteForceSecurityAlert", "T1110.001", "medium", "Ntlm"),
    AlertType("password-spray", "Suspected password spray attack (Kerberos, NTLM)", 2023,
              "BruteForceSecurityAlert", "T1110.003", "medium", "Ntlm"),
    AlertType("account-enumeration", "Account enumeration reconnaissance", 2003,
              "AccountEnumerationSecurityAlert", "T1087.002", "medium", "Ntlm"),
    AlertType("honeytoken-activity", "Honeytoken authentication activity", 2014,
              "HoneytokenActivitySecurityAlert", "T1087.002", "medium", "Ntlm"),
    AlertType("sensitive-group-addition", "Suspicious additions to sensitive groups", 2024,
              "AbnormalSensitiveGroupMembershipChangeSecurityAlert", "T1098", "medium", "GroupMembershipChangeEvent"),
    AlertType("suspicious-service-creation", "Suspicious service creation", 2026,
              "MaliciousServiceCreationSecurityAlert", "T1543.003", "medium", "ServiceInstalledEvent"),
    AlertType("remote-code-execution", "Remote code execution attempt", 2019,
              "RemoteExecutionSecurityAlert", "T1569.002", "medium", "ServiceControl"),
    # dcsentry's own (no Defender for Identity counterpart; ids from 9000 up): a forwarding client
    # authenticated as one computer delivered events that claim another (docs/wef.md).
    AlertType("wef-sender-mismatch", "Forwarded events claim another computer than their sender", 9001,
              "ForwardedEventSenderMismatchSecurityAlert", "T1565.002", "high", "WindowsEventForwarding"),
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
            "external_id": at.external_id if at else None,
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
        }
