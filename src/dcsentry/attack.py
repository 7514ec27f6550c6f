"""MITRE ATT&CK for alerts: the tactic, technique and sub-technique an alert claims, with ids and names.

The catalogue (alerts.py) names a technique id and one tactic name per type, as Defender for Identity
lists them; Sigma alerts carry their rule's tags (``attack.t1003.006``, ``attack.credential-access``).
OCSF ``attacks[]``, ECS ``threat.*`` and the Navigator layer all come from `attacks_of`, so the formats
cannot disagree. Names are ATT&CK Enterprise v17's; only the techniques dcsentry detects (and their
parents) are listed: an unknown id still goes out, with its id as its name.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from .alerts import ALERT_TYPES, Alert

ATTACK_VERSION = "17"
NAVIGATOR_LAYER_VERSION = "4.5"
NAVIGATOR_VERSION = "5.1.0"
URL = "https://attack.mitre.org"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

TACTICS: dict[str, tuple[str, str]] = {  # name -> (id, Sigma/ATT&CK short name)
    "Reconnaissance": ("TA0043", "reconnaissance"), "Resource Development": ("TA0042", "resource-development"),
    "Initial Access": ("TA0001", "initial-access"), "Execution": ("TA0002", "execution"),
    "Persistence": ("TA0003", "persistence"), "Privilege Escalation": ("TA0004", "privilege-escalation"),
    "Defense Evasion": ("TA0005", "defense-evasion"), "Credential Access": ("TA0006", "credential-access"),
    "Discovery": ("TA0007", "discovery"), "Lateral Movement": ("TA0008", "lateral-movement"),
    "Collection": ("TA0009", "collection"), "Command and Control": ("TA0011", "command-and-control"),
    "Exfiltration": ("TA0010", "exfiltration"), "Impact": ("TA0040", "impact"),
}
_BY_SHORT = {short: name for name, (_, short) in TACTICS.items()}

TECHNIQUES: dict[str, str] = {
    "T1003": "OS Credential Dumping", "T1003.006": "DCSync",
    "T1070": "Indicator Removal", "T1070.001": "Clear Windows Event Logs",
    "T1087": "Account Discovery", "T1087.002": "Domain Account",
    "T1098": "Account Manipulation",
    "T1110": "Brute Force", "T1110.001": "Password Guessing", "T1110.003": "Password Spraying",
    "T1134": "Access Token Manipulation", "T1134.001": "Token Impersonation/Theft",
    "T1134.005": "SID-History Injection",
    "T1207": "Rogue Domain Controller",
    "T1222": "File and Directory Permissions Modification",
    "T1222.001": "Windows File and Directory Permissions Modification",
    "T1484": "Domain or Tenant Policy Modification", "T1484.001": "Group Policy Modification",
    "T1484.002": "Trust Modification",
    "T1543": "Create or Modify System Process", "T1543.003": "Windows Service",
    "T1550": "Use Alternate Authentication Material", "T1550.002": "Pass the Hash",
    "T1550.003": "Pass the Ticket",
    "T1555": "Credentials from Password Stores", "T1555.004": "Windows Credential Manager",
    "T1558": "Steal or Forge Kerberos Tickets", "T1558.001": "Golden Ticket", "T1558.002": "Silver Ticket",
    "T1558.003": "Kerberoasting", "T1558.004": "AS-REP Roasting",
    "T1562": "Impair Defenses", "T1562.002": "Disable Windows Event Logging",
    "T1565": "Data Manipulation", "T1565.002": "Transmitted Data Manipulation",
    "T1569": "System Services", "T1569.002": "Service Execution",
    "T1649": "Steal or Forge Authentication Certificates",
    "T1021": "Remote Services", "T1021.002": "SMB/Windows Admin Shares",
    "T1078": "Valid Accounts", "T1078.002": "Domain Accounts",
    "T1136": "Create Account", "T1136.002": "Domain Account",
    "T1047": "Windows Management Instrumentation", "T1053": "Scheduled Task/Job", "T1053.005": "Scheduled Task",
}


@dataclass(frozen=True)
class Ref:
    """One ATT&CK object: id (``TA0006``, ``T1558``, ``T1558.003``), name and its attack.mitre.org page."""

    id: str
    name: str

    @property
    def reference(self) -> str:
        if self.id.startswith("TA"):
            return f"{URL}/tactics/{self.id}/"
        return f"{URL}/techniques/{self.id.replace('.', '/')}/"


@dataclass(frozen=True)
class Attack:
    """What one alert claims: its tactics, and a technique with its sub-technique where it names one."""

    tactics: tuple[Ref, ...]
    technique: Ref | None
    sub_technique: Ref | None


def tactic(name: str) -> Ref | None:
    """A tactic by name (``Credential Access``) or short name (``credential-access``)."""
    name = _BY_SHORT.get(name.strip().lower().replace("_", "-"), name.strip())
    found = TACTICS.get(name)
    return Ref(found[0], name) if found else None


def technique(tid: str) -> tuple[Ref, Ref | None]:
    """(technique, sub-technique) of an id such as ``T1558.003`` (sub-technique None for ``T1558``)."""
    tid = tid.strip().upper()
    parent = tid.split(".", 1)[0]
    tech = Ref(parent, TECHNIQUES.get(parent, parent))
    return (tech, Ref(tid, TECHNIQUES.get(tid, tid))) if "." in tid else (tech, None)


def _sigma_tags(alert: Alert) -> list[str]:
    sigma = alert.details.get("sigma")
    return [str(t) for t in sigma.get("tags", [])] if isinstance(sigma, dict) else []


def tactic_names(alert: Alert) -> list[str]:
    """The tactic names an alert claims: the catalogue's, else its Sigma rule's tags, else its details."""
    at = alert.alert_type
    if at is not None and at.tactic:
        return [at.tactic]
    out = [_BY_SHORT[t.split(".", 1)[1]] for t in _sigma_tags(alert)
           if t.startswith("attack.") and t.split(".", 1)[1] in _BY_SHORT]
    if not out and isinstance(alert.details.get("tactic"), str):
        out = [alert.details["tactic"]]
    return list(dict.fromkeys(out))


def technique_ids(alert: Alert) -> list[str]:
    """The technique ids an alert claims: its own first, then any other ATT&CK tags of its Sigma rule."""
    ids = [alert.technique.upper()] if alert.technique else []
    ids += [t.split(".", 1)[1].upper() for t in _sigma_tags(alert)
            if t.lower().startswith("attack.t") and t[8:9].isdigit()]
    return list(dict.fromkeys(ids))


def attacks_of(alert: Alert) -> list[Attack]:
    """One Attack per technique (each with all the alert's tactics); one without a technique when the
    alert names only tactics; none when it names neither."""
    tactics = tuple(r for r in (tactic(n) for n in tactic_names(alert)) if r is not None)
    out = [Attack(tactics, *technique(tid)) for tid in technique_ids(alert)]
    if not out and tactics:
        out = [Attack(tactics, None, None)]
    return out


def navigator_layer(sigma_metas: list | None = None, name: str = "dcsentry coverage") -> dict:
    """An ATT&CK Navigator layer of what dcsentry detects: every technique (and sub-technique) with the
    alert types (built-in types, Sigma rules given as `RuleMeta`s) that cover it, scored by their count."""
    from . import __version__

    cover: dict[tuple[str, str], list[str]] = {}  # (technique id, tactic short name or "") -> alert types

    def add(tid: str, tactics: list[str], label: str) -> None:
        for short in tactics or [""]:
            cover.setdefault((tid, short), []).append(label)

    for at in ALERT_TYPES.values():
        t = tactic(at.tactic) if at.tactic else None
        add(at.technique.upper(), [TACTICS[t.name][1]] if t else [], at.type)
    for meta in sigma_metas or []:
        probe = Alert(type=meta.alert_type, key="", title=meta.title, description="", severity=meta.severity,
                      technique=meta.technique, start=_EPOCH, end=_EPOCH, details={"sigma": {"tags": list(meta.tags)}})
        shorts = [TACTICS[n][1] for n in tactic_names(probe) if n in TACTICS]
        for tid in technique_ids(probe):
            add(tid, shorts, f"{meta.alert_type} ({meta.title})")
    techniques = []
    for (tid, short), types in sorted(cover.items()):
        entry: dict = {"techniqueID": tid, "score": len(types), "color": "", "enabled": True,
                       "comment": "Detected by: " + ", ".join(types),
                       "metadata": [{"name": "alert type", "value": t} for t in types], "showSubtechniques": True}
        if short:
            entry["tactic"] = short
        techniques.append(entry)
    top = max((t["score"] for t in techniques), default=1)
    return {
        "name": name, "versions": {"attack": ATTACK_VERSION, "navigator": NAVIGATOR_VERSION,
                                   "layer": NAVIGATOR_LAYER_VERSION},
        "domain": "enterprise-attack",
        "description": f"Techniques dcsentry {__version__} raises alerts for (built-in types and loaded Sigma rules).",
        "sorting": 3, "hideDisabled": False, "techniques": techniques,
        "gradient": {"colors": ["#c6dbef", "#08519c"], "minValue": 0, "maxValue": top},
        "legendItems": [], "metadata": [{"name": "generator", "value": f"dcsentry {__version__}"}],
        "showTacticRowBackground": False, "selectTechniquesAcrossTactics": True, "selectSubtechniquesWithParent": False,
    }
