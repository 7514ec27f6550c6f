"""Incidents: alerts that tell one attack story, linked by shared entities and feed rules (rules.py).

A package beside detectors/: alerts in, incidents out (engine.py). docs/incidents.md has the rules.
"""

from __future__ import annotations

from .engine import IncidentEngine, LinkResult
from .model import Incident, IncidentAlert, incident_id

__all__ = ["Incident", "IncidentAlert", "IncidentEngine", "LinkResult", "incident_id"]
