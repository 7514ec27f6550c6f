"""Alerts as OCSF 1.8.0 events (docs/outputs.md has the field table).

* A security alert is a **Detection Finding** (class 2004, category 2 Findings) with the ``host`` and
  ``security_control`` profiles (they bring ``device``, ``actor`` and ``attacks``). ``finding_info.uid`` is
  the alert id, which never changes while an alert grows: revision 0 is ``activity_id`` 1 Create, every
  later revision 2 Update, and a closed alert 3 Close. ``metadata.uid`` (``<id>:<revision>``) is unique
  per event; ``metadata.correlation_uid`` is the alert id, so a SIEM folds the updates into one finding.
* A health alert (the sensor, a DC's log or a sink in trouble) is an **Application Error** (class 6008,
  category 6 Application Activity). It is not a finding about an adversary: as a Detection Finding it
  would land in detection dashboards and ATT&CK coverage counts. OCSF describes 6008 as the class for
  issues with an application "and errors in upstream products and services", which is what a DC that
  stopped sending events or a SIEM that cannot be reached is. The same uid/correlation rules apply.
* Accounts and hosts: ``actor.user`` is the alert's account when it names exactly one (as CEF ``suser``);
  every account and host is also a ``resources[]`` entry; ``device`` is the DC that logged the events.
* Defender for Identity and XDR ids go in ``finding_info.analytic.related_analytics`` (and ``unmapped``).
"""

from __future__ import annotations

import ipaddress
from datetime import UTC, datetime

from .. import __version__
from ..alerts import ALERT_TYPES, SIGMA_PREFIX, Alert
from ..attack import ATTACK_VERSION, attacks_of
from .cef import signature_of

OCSF_VERSION = "1.8.0"
_SEVERITY = {"low": (2, "Low"), "medium": (3, "Medium"), "high": (4, "High")}
_ACTIVITY = {1: "Create", 2: "Update", 3: "Close"}
_STATUS = {"open": (1, "New"), "suppressed": (3, "Suppressed"), "closed": (4, "Resolved")}
PRODUCT = {"name": "dcsentry", "vendor_name": "dcsentry", "version": __version__, "uid": "dcsentry"}


def ms(t: datetime) -> int:
    """OCSF timestamp_t: milliseconds since the epoch (naive datetimes are UTC)."""
    if t.tzinfo is None:
        t = t.replace(tzinfo=UTC)
    return int(t.timestamp() * 1000)


def split_account(account: str) -> tuple[str, str | None]:
    """``CONTOSO\\jdoe`` -> (jdoe, CONTOSO); ``jdoe@contoso.com`` -> (jdoe, contoso.com); else (name, None)."""
    if "\\" in account:
        dom, _, name = account.partition("\\")
        return name, dom or None
    if "@" in account:
        name, _, dom = account.rpartition("@")
        return name, dom or None
    return account, None


def is_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
        return True
    except ValueError:
        return False


def _user(account: str) -> dict:
    name, dom = split_account(account)
    user: dict = {"name": name or account, "type_id": 3 if name.endswith("$") else 0}
    user["type"] = "System" if user["type_id"] == 3 else "Unknown"
    if dom:
        user["domain"] = dom
    return user


def _device(host: str, type_id: int = 0) -> dict:
    dev: dict = {"type_id": type_id, "type": "Server" if type_id == 1 else "Unknown"}
    if is_ip(host):
        dev["ip"] = host
        dev["name"] = host
    else:
        dev["hostname"] = host
        dev["name"] = host.split(".", 1)[0]
    return dev


def _activity(alert: Alert) -> int:
    if alert.status == "closed":
        return 3
    return 1 if alert.revision == 0 else 2


def _analytic(alert: Alert) -> dict:
    at = ALERT_TYPES.get(alert.type)
    sigma = alert.details.get("sigma") if isinstance(alert.details.get("sigma"), dict) else None
    an: dict = {"uid": alert.type, "name": alert.title or alert.type, "type_id": 1, "type": "Rule"}
    if sigma:
        an.update(uid=str(sigma.get("id") or alert.type.removeprefix(SIGMA_PREFIX)), category="Sigma")
        if sigma.get("level"):
            an["desc"] = f"Sigma rule, level {sigma['level']}"
    elif alert.learning:
        an.update(type_id=3, type="Statistical")
    related = []
    if at is not None and at.external_id:
        related.append({"uid": str(at.external_id), "name": at.signature, "type_id": 1, "type": "Rule",
                        "category": "Microsoft Defender for Identity"})
    if at is not None and at.xdr_id:
        related.append({"uid": at.xdr_id, "name": at.title, "type_id": 1, "type": "Rule",
                        "category": "Microsoft Defender XDR"})
    if related:
        an["related_analytics"] = related
    an["version"] = __version__
    return an


def _attacks(alert: Alert) -> list[dict]:
    out = []
    for a in attacks_of(alert):
        obj: dict = {"version": ATTACK_VERSION}
        if a.tactics:
            obj["tactic"] = {"uid": a.tactics[0].id, "name": a.tactics[0].name, "src_url": a.tactics[0].reference}
        if a.technique:
            obj["technique"] = {"uid": a.technique.id, "name": a.technique.name, "src_url": a.technique.reference}
        if a.sub_technique:
            obj["sub_technique"] = {"uid": a.sub_technique.id, "name": a.sub_technique.name,
                                    "src_url": a.sub_technique.reference}
        out.append(obj)
        for extra in a.tactics[1:]:  # OCSF's attack has one tactic: one more entry per extra tactic
            out.append({**obj, "tactic": {"uid": extra.id, "name": extra.name, "src_url": extra.reference}})
    return out


def _evidences(alert: Alert) -> list[dict]:
    out = []
    for e in alert.evidence:
        ev: dict = {"name": f"Windows event {e.event_id}", "device": _device(e.computer or "unknown", 1),
                    "data": e.to_dict()}
        if e.record_id is not None:
            ev["uid"] = str(e.record_id)
        out.append(ev)
    return out


_ROLES = {1: "Target", 2: "Actor", 4: "Related"}


def _resource(kind: str, name: str, role_id: int) -> dict:
    where = {"ip": name} if is_ip(name) else ({"hostname": name} if kind != "User Account" else {})
    return {"type": kind, "name": name, "role_id": role_id, "role": _ROLES[role_id], **where}


def _resources(alert: Alert) -> list[dict]:
    """Accounts are Related (actor in a DCSync, target in a spray: the type says which); the first
    host is the source (Actor, as CEF shost), the other hosts and the DCs are Targets."""
    res = [_resource("User Account", a, 4) for a in alert.accounts if a]
    res += [_resource("Host", h, 2 if i == 0 else 1) for i, h in enumerate(alert.hosts) if h]
    res += [_resource("Domain Controller", d, 1) for d in alert.dcs if d]
    return res


def _unmapped(alert: Alert) -> dict:
    at = ALERT_TYPES.get(alert.type)
    return {"type": alert.type, "key": alert.key, "revision": alert.revision,
            "external_id": (at.external_id or None) if at else None, "xdr_id": at.xdr_id if at else None,
            "signature": signature_of(alert), "protocol": alert.protocol, "outcome": alert.outcome,
            "learning": alert.learning, "incident": getattr(alert, "incident", None), "details": alert.details}


class OcsfFormatter:
    """Alert -> one OCSF event (a dict ready for JSON). Stateless apart from the console link base."""

    def __init__(self, console_url: str = "http://127.0.0.1:8080") -> None:
        self.console_url = console_url.rstrip("/")

    def _common(self, alert: Alert, class_uid: int, class_name: str, category: tuple[int, str],
                activity: int, activity_name: str) -> dict:
        sev_id, sev = _SEVERITY.get(alert.severity, (0, "Unknown"))
        return {
            "class_uid": class_uid, "class_name": class_name,
            "category_uid": category[0], "category_name": category[1],
            "activity_id": activity, "activity_name": activity_name,
            "type_uid": class_uid * 100 + activity, "type_name": f"{class_name}: {activity_name}",
            "time": ms(alert.end), "start_time": ms(alert.start), "end_time": ms(alert.end),
            "severity_id": sev_id, "severity": sev, "count": max(alert.count, 1),
            "message": alert.description or alert.title,
            "metadata": {"version": OCSF_VERSION, "product": PRODUCT, "uid": f"{alert.id}:{alert.revision}",
                         "correlation_uid": alert.id, "event_code": signature_of(alert),
                         "profiles": ["host", "security_control"] if class_uid == 2004 else ["host"],
                         "log_name": "alerts", "logged_time": ms(alert.end)},
            "unmapped": _unmapped(alert),
        }

    def format(self, alert: Alert) -> dict:
        """The OCSF event of an alert's current revision."""
        if alert.kind == "health":
            return self._health(alert)
        act = _activity(alert)
        status_id, status = _STATUS.get(alert.status, (99, "Other"))
        at = ALERT_TYPES.get(alert.type)
        ev = self._common(alert, 2004, "Detection Finding", (2, "Findings"), act, _ACTIVITY[act])
        ev.update({
            "status_id": status_id, "status": alert.status if status_id == 99 else status,
            "is_alert": True,
            "finding_info": {
                "uid": alert.id, "title": alert.title or alert.type, "desc": alert.description or alert.title,
                "types": [signature_of(alert)] + ([at.tactic] if at and at.tactic else []),
                "first_seen_time": ms(alert.start), "last_seen_time": ms(alert.end),
                "created_time": ms(alert.start), "modified_time": ms(alert.end),
                "analytic": _analytic(alert), "data_sources": ["Windows Security event log"],
                "src_url": f"{self.console_url}/alerts/{alert.id}",
                "related_events_count": len(alert.evidence),
            },
        })
        attacks = _attacks(alert)
        if attacks:
            ev["attacks"] = attacks
        if alert.evidence:
            ev["evidences"] = _evidences(alert)
        resources = _resources(alert)
        if resources:
            ev["resources"] = resources
        if len(alert.accounts) == 1 and alert.accounts[0]:
            ev["actor"] = {"user": _user(alert.accounts[0])}
        if alert.dcs:
            ev["device"] = _device(alert.dcs[0], 1)
        return ev

    def _health(self, alert: Alert) -> dict:
        ev = self._common(alert, 6008, "Application Error", (6, "Application Activity"), 1, "General Error")
        ev["status_id"], ev["status"] = (1, "Success") if alert.status == "closed" else (2, "Failure")
        ev["status_detail"] = f"{alert.title} ({alert.status})"
        ev["metadata"]["event_code"] = signature_of(alert)
        host = next(iter(alert.dcs or alert.hosts), None)
        if host:
            ev["device"] = _device(host, 1)
        return ev
