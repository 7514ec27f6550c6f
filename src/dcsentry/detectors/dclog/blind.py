"""Health alerts raised by the cover-up detectors: a DC (or CA) whose own audit trail was cut.

They are built like the service's health alerts (runtime/health.py: type `health:<check>`, kind
"health", the monitoring class in `details["class"]` for the CEF sink) but come from the event
stream, so `hunt` and `serve` both carry them. Each names the security alert that caused it
(`details["security_alert"]`) and that alert names it back (`details["health_alert"]`). They carry
the security alert's technique (every alert line has one) and are closed (`status`) when the
event stream shows the auditing back.
"""

from __future__ import annotations

from datetime import datetime

from ...alerts import Alert, Evidence
from ..base import Lru, add_unique

CLASSES = {  # Defender for Identity's monitoring class where one fits, else dcsentry's own
    "log-cleared": "EventLogClearedMonitoringAlert",
    "audit-policy-disabled": "DirectoryServicesAdvancedAuditingNotEnabledMonitoringAlert",
    "ca-audit-filter": "CertificationServicesAuditingNotEnabledMonitoringAlert",
}


class BlindSpots:
    """The open health alert per (check, host): grown while the condition lasts, closed when it ends."""

    def __init__(self, max_evidence: int) -> None:
        self.max_evidence = max_evidence
        self.open: Lru[tuple[str, str], Alert] = Lru(10_000)  # (check, host) -> its health alert

    def get(self, check: str, host: str) -> Alert | None:
        return self.open.get((check, host))

    def raise_or_grow(self, check: str, host: str, t: datetime, evidence: list[Evidence], *, title: str,
                      technique: str, severity: str = "medium") -> Alert:
        a = self.open.get((check, host))
        if a is None or a.status != "open":
            a = Alert(type=f"health:{check}", key=host, title=title, description="", severity=severity,
                      technique=technique, start=t, end=t, count=0, kind="health",
                      details={"class": CLASSES.get(check, "MonitoringAlert"), "check": check,
                               "tactic": "Defense Evasion"})  # what blinding the sensor serves (T1070, T1562)
            a.dcs = [host]
            self.open.put((check, host), a)
        else:
            a.revision += 1
            a.end = max(a.end, t)
            a.title = title
        for e in evidence:
            if len(a.evidence) < self.max_evidence:
                a.evidence.append(e)
        a.count += 1
        return a

    def close(self, check: str, host: str, t: datetime, evidence: list[Evidence]) -> Alert | None:
        """The condition ended: the alert (if open) says so and is returned closed."""
        a = self.open.get((check, host))
        if a is None or a.status != "open":
            return None
        a.status = "closed"
        a.revision += 1
        a.end = max(a.end, t)
        a.details["closed_at"] = t.isoformat()
        for e in evidence:
            if len(a.evidence) < self.max_evidence:
                a.evidence.append(e)
        return a


def link(security: Alert, health: Alert) -> None:
    """Each alert names the other (their ids are stable: type, key and start)."""
    security.details["health_alert"] = health.id
    health.details["security_alert"] = security.id
    for acc in security.accounts:
        add_unique(health.accounts, acc)
