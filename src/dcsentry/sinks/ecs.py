"""Alerts as Elastic Common Schema 9.4 documents (docs/outputs.md has the field table).

One document per alert revision, nested (``{"event": {"kind": "alert"}}``), every field an ECS field:
what has no ECS field (the alert count, the Defender for Identity ids) goes in ``labels`` (keyword
values), the ECS place for such key/value pairs. ``event.id`` is the alert id on every revision, so an
index keyed on it (``_id`` = ``event.id``) keeps the latest state of each alert; ``event.sequence`` is
the revision. ``user.*`` is the alert's account when it names exactly one (as CEF ``suser``),
``source.*`` its first host (the source, as CEF ``shost``), ``host.*`` the DC that logged the events,
``related.*`` every account, host and address it names.
"""

from __future__ import annotations

from datetime import UTC, datetime

from .. import __version__
from ..alerts import ALERT_TYPES, CEF_SEVERITY, SIGMA_PREFIX, Alert
from ..attack import attacks_of
from .cef import signature_of
from .ocsf import is_ip, split_account

ECS_VERSION = "9.4.0"
_RISK = {"low": 21.0, "medium": 47.0, "high": 73.0}  # Elastic's risk-score bands for the three severities
_OUTCOMES = {"success": "success", "failure": "failure", "failed": "failure"}


def iso(t: datetime) -> str:
    """ECS date: ISO 8601 UTC with milliseconds and ``Z``."""
    if t.tzinfo is None:
        t = t.replace(tzinfo=UTC)
    return t.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _uniq(values: list[str]) -> list[str]:
    return list(dict.fromkeys(v for v in values if v))


def _threat(alert: Alert) -> dict:
    attacks = attacks_of(alert)
    if not attacks:
        return {}
    tactics = _uniq([t.id for a in attacks for t in a.tactics])
    by_id = {t.id: t for a in attacks for t in a.tactics}
    threat: dict = {"framework": "MITRE ATT&CK"}
    if tactics:
        threat["tactic"] = {"id": tactics, "name": [by_id[i].name for i in tactics],
                            "reference": [by_id[i].reference for i in tactics]}
    techs = {a.technique.id: a.technique for a in attacks if a.technique}
    if techs:
        threat["technique"] = {"id": list(techs), "name": [t.name for t in techs.values()],
                               "reference": [t.reference for t in techs.values()]}
        subs = {a.sub_technique.id: a.sub_technique for a in attacks if a.sub_technique}
        if subs:
            threat["technique"]["subtechnique"] = {"id": list(subs), "name": [s.name for s in subs.values()],
                                                   "reference": [s.reference for s in subs.values()]}
    return threat


def _endpoint(host: str) -> dict:
    if is_ip(host):
        return {"ip": host, "address": host}
    return {"domain": host, "address": host}


class EcsFormatter:
    """Alert -> one ECS document (a dict ready for JSON)."""

    def __init__(self, console_url: str = "http://127.0.0.1:8080") -> None:
        self.console_url = console_url.rstrip("/")

    def format(self, alert: Alert) -> dict:
        at = ALERT_TYPES.get(alert.type)
        health = alert.kind == "health"
        sigma = alert.details.get("sigma") if isinstance(alert.details.get("sigma"), dict) else None
        event: dict = {
            "kind": "alert", "id": alert.id, "code": signature_of(alert), "action": alert.type,
            "category": ["host"] if health else ["intrusion_detection"],
            "type": ["info"],  # the one type ECS expects with both categories
            "severity": CEF_SEVERITY.get(alert.severity, 5), "risk_score": _RISK.get(alert.severity, 47.0),
            "start": iso(alert.start), "end": iso(alert.end), "created": iso(alert.end),
            "duration": max(0, int((alert.end - alert.start).total_seconds() * 1e9)),
            "sequence": alert.revision, "dataset": "dcsentry.alert", "module": "dcsentry", "provider": "dcsentry",
            "reason": alert.description or alert.title,
            "url": f"{self.console_url}/{'health' if health else 'alerts'}/{alert.id}",
        }
        if alert.outcome and alert.outcome.lower() in _OUTCOMES:
            event["outcome"] = _OUTCOMES[alert.outcome.lower()]
        rule: dict = {"id": alert.type, "name": alert.title or alert.type, "description": alert.description or "",
                      "ruleset": "dcsentry", "category": "health" if health else (at.tactic if at else "security"),
                      "version": __version__, "uuid": alert.type}  # uuid: MDI's id, the Sigma rule id, or ours
        if sigma:
            rule.update(ruleset="sigma", uuid=str(sigma.get("id") or alert.type.removeprefix(SIGMA_PREFIX)))
        elif at is not None and at.external_id:
            rule["uuid"] = str(at.external_id)
        labels = {"alert_count": str(alert.count), "alert_status": alert.status, "alert_key": alert.key,
                  "signature": signature_of(alert)}
        if at is not None and at.external_id:
            labels["mdi_external_id"] = str(at.external_id)
        if at is not None and at.xdr_id:
            labels["xdr_detector_id"] = at.xdr_id
        if alert.protocol:
            labels["protocol"] = alert.protocol
        if alert.learning:
            labels["learning"] = "true"
        if getattr(alert, "incident", None):
            labels["incident_id"] = str(alert.incident)
        doc: dict = {
            "@timestamp": iso(alert.end), "ecs": {"version": ECS_VERSION},
            "message": alert.description or alert.title, "event": event, "rule": rule, "labels": labels,
            "tags": ["dcsentry", "health" if health else "security"],
            "observer": {"vendor": "dcsentry", "product": "dcsentry", "version": __version__, "type": "ids"},
        }
        threat = _threat(alert)
        if threat:
            doc["threat"] = threat
            rule["reference"] = (threat.get("technique", {}).get("subtechnique") or threat.get("technique")
                                 or threat["tactic"])["reference"][0]
        if len(alert.accounts) == 1 and alert.accounts[0]:
            name, dom = split_account(alert.accounts[0])
            doc["user"] = {"name": name or alert.accounts[0], **({"domain": dom} if dom else {})}
        if alert.hosts and alert.hosts[0]:
            doc["source"] = _endpoint(alert.hosts[0])
        if alert.dcs and alert.dcs[0]:
            dc = alert.dcs[0]
            doc["host"] = {"ip": [dc], "name": dc} if is_ip(dc) else {"name": dc, "hostname": dc}
        names = [split_account(a)[0] or a for a in alert.accounts]
        hosts = [*alert.hosts, *alert.dcs]
        related: dict = {}
        if _uniq(names):
            related["user"] = _uniq(names)
        if _uniq([h for h in hosts if not is_ip(h)]):
            related["hosts"] = _uniq([h for h in hosts if not is_ip(h)])
        if _uniq([h for h in hosts if is_ip(h)]):
            related["ip"] = _uniq([h for h in hosts if is_ip(h)])
        if related:
            doc["related"] = related
        return doc
