"""What an alert says about the Sigma rule behind it: id, title, level -> severity, ATT&CK technique."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sigma.rule.base import SigmaRuleBase

from ...alerts import SIGMA_PREFIX, SIGMA_SEVERITY


@dataclass(frozen=True)
class RuleMeta:
    uid: str  # the rule's id (a UUID in SigmaHQ rules), else its name, else its file name
    title: str
    description: str
    level: str  # Sigma's: informational, low, medium, high, critical
    severity: str  # dcsentry's: low, medium, high
    technique: str  # first ATT&CK technique tag, e.g. T1543.003
    tags: tuple[str, ...]
    path: str

    @property
    def alert_type(self) -> str:
        return f"{SIGMA_PREFIX}{self.uid}"


def meta_of(rule: SigmaRuleBase) -> RuleMeta:
    level = rule.level.name.lower() if rule.level else "medium"
    technique = next((t.name.upper() for t in rule.tags
                      if t.namespace == "attack" and t.name[:1].lower() == "t" and t.name[1:2].isdigit()), "")
    path = str(rule.source.path) if rule.source else ""
    uid = str(rule.id) if rule.id else (rule.name or (Path(path).stem if path else rule.title))
    return RuleMeta(uid, rule.title, " ".join((rule.description or "").split()), level,
                    SIGMA_SEVERITY.get(level, "medium"), technique, tuple(str(t) for t in rule.tags), path)
