"""Incidents as OCSF 1.8.0 **Incident Findings** (class 2005, category 2 Findings): the attack story
beside the alerts' Detection Findings (ocsf.py). `finding_info_list` holds one entry per alert, whose
`uid` is the alert id, so a SIEM joins the incident to the findings it already has; the incident id is
`metadata.correlation_uid` and stays while the incident grows (`activity_id` 1 Create, then 2 Update,
3 Close); `is_suspected_breach` is set when the chain reached domain dominance."""

from __future__ import annotations

from ..alerts import ALERT_TYPES
from ..attack import ATTACK_VERSION, tactic, technique
from ..incidents.model import Incident, IncidentAlert
from .ocsf import _SEVERITY, OCSF_VERSION, PRODUCT, ms

_STATUS = {"open": (1, "New"), "in-progress": (2, "In Progress"), "closed": (4, "Resolved")}
_ACTIVITY = {1: "Create", 2: "Update", 3: "Close"}


def _attacks(a: IncidentAlert) -> list[dict]:
    """The alert's ATT&CK tactic and technique (OCSF's finding_info.attacks: per finding, in kill-chain
    order as the incident lists its alerts; the class-level `attacks` belongs to a profile 2005 lacks)."""
    obj: dict = {"version": ATTACK_VERSION}
    t = tactic(a.tactic) if a.tactic else None
    if t is not None:
        obj["tactic"] = {"uid": t.id, "name": t.name, "src_url": t.reference}
    if a.technique:
        tech, sub = technique(a.technique)
        obj["technique"] = {"uid": tech.id, "name": tech.name, "src_url": tech.reference}
        if sub is not None:
            obj["sub_technique"] = {"uid": sub.id, "name": sub.name, "src_url": sub.reference}
    return [obj] if len(obj) > 1 else []


def incident_finding(inc: Incident, console_url: str = "http://127.0.0.1:8080") -> dict:
    activity = 3 if inc.status == "closed" else (1 if inc.revision == 0 else 2)
    sev_id, sev = {"critical": (5, "Critical"), **_SEVERITY}.get(inc.severity, (0, "Unknown"))
    status_id, status = _STATUS.get(inc.status, (99, "Other"))
    ev: dict = {
        "class_uid": 2005, "class_name": "Incident Finding", "category_uid": 2, "category_name": "Findings",
        "activity_id": activity, "activity_name": _ACTIVITY[activity],
        "type_uid": 2005 * 100 + activity, "type_name": f"Incident Finding: {_ACTIVITY[activity]}",
        "time": ms(inc.end), "start_time": ms(inc.start), "end_time": ms(inc.end),
        "severity_id": sev_id, "severity": sev, "status_id": status_id,
        "status": inc.status if status_id == 99 else status,
        "desc": inc.title, "message": inc.title, "is_suspected_breach": inc.dominance,
        # OCSF requires an assignee or a group; dcsentry assigns nobody: the case tool does
        "assignee_group": {"name": "Unassigned", "desc": "not assigned by dcsentry"},
        "src_url": f"{console_url.rstrip('/')}/incidents/{inc.id}",
        "finding_info_list": [
            {"uid": a.id, "title": a.title or a.type, "types": [a.type] + ([a.tactic] if a.tactic else []),
             "first_seen_time": ms(a.start), "last_seen_time": ms(a.end),
             "analytic": {"uid": a.type, "name": (ALERT_TYPES[a.type].title if a.type in ALERT_TYPES else a.title)
                          or a.type, "type_id": 1, "type": "Rule"},
             **({"attacks": _attacks(a)} if _attacks(a) else {})}
            for a in inc.alerts],
        "metadata": {"version": OCSF_VERSION, "product": PRODUCT, "uid": f"{inc.id}:{inc.revision}",
                     "correlation_uid": inc.id, "event_code": "Incident", "profiles": ["incident"],
                     "log_name": "incidents", "logged_time": ms(inc.end)},
        "unmapped": {"entities": inc.entities, "links": inc.links, "merged": inc.merged, "revision": inc.revision},
    }
    return ev
