"""The incident record: what `hunt --incidents` prints, the store keeps and the API shows."""

from __future__ import annotations

import hashlib
from datetime import datetime

import msgspec

from ..model import iso_utc


def incident_id(first_alert_id: str) -> str:
    """Stable: the id of the incident's first alert, hashed (replays and restarts give the same)."""
    return "inc-" + hashlib.sha256(f"incident|{first_alert_id}".encode()).hexdigest()[:16]


class IncidentAlert(msgspec.Struct):
    id: str
    type: str
    title: str
    severity: str
    tactic: str
    technique: str
    start: datetime
    end: datetime
    events: list[dict] = msgspec.field(default_factory=list)  # key events: the alert's first and last evidence

    def to_dict(self) -> dict:
        return {"id": self.id, "type": self.type, "title": self.title, "severity": self.severity,
                "tactic": self.tactic, "technique": self.technique, "start": iso_utc(self.start),
                "end": iso_utc(self.end), "events": self.events}


class Incident(msgspec.Struct):
    """One attack story. `alerts` in time order; `entities` each with its roles; `links` say why each
    alert joined (the shared entity or the feed rule); `merged` the incidents folded into this one."""

    id: str
    start: datetime
    end: datetime
    title: str = ""
    severity: str = "low"
    status: str = "open"
    dominance: bool = False
    alerts: list[IncidentAlert] = msgspec.field(default_factory=list)
    entities: list[dict] = msgspec.field(default_factory=list)
    edges: list[dict] = msgspec.field(default_factory=list)  # who touched what: {from, to, type}
    links: list[dict] = msgspec.field(default_factory=list)
    merged: list[dict] = msgspec.field(default_factory=list)
    revision: int = 0

    def to_dict(self) -> dict:
        """The `hunt --incidents` shape (a contract, as the alerts': keys only get added)."""
        return {"id": self.id, "title": self.title, "severity": self.severity, "status": self.status,
                "start": iso_utc(self.start), "end": iso_utc(self.end), "dominance": self.dominance,
                "entities": self.entities, "alerts": [a.to_dict() for a in self.alerts], "edges": self.edges,
                "links": self.links, "merged": self.merged, "revision": self.revision}
