"""Alert exclusions, as Defender for Identity has them: per alert type, accounts, sources or destinations
whose alerts are kept but not raised (docs/outputs.md, "Suppression").

One rule per line, ``<alert type> <account|source|destination>=<pattern>``:

    brute-force source=SCANNER01            the vulnerability scanner's lockout tests
    dcsync account=MSOL_*                   Entra Connect (also: replication_allowed, which never alerts)
    sigma:* destination=10.0.0.9            every Sigma rule, for one noisy host
    * account=CONTOSO\\svc_backup            every type

Types and patterns are case-insensitive shell patterns (``*``, ``?``, ``[..]``). An account matches by its
whole spelling (``CONTOSO\\jdoe``, ``jdoe@contoso.com``) or by its bare name; a host by its whole name
or address, or by its first label. A rule suppresses an alert when it covers every account (every
destination) the alert names, so a password spray that also hits real accounts is never hidden by the
exclusion of one of them. Sources are the alert's first host (CEF ``shost``); destinations its other
hosts and its DCs. Health alerts are never suppressed.

A suppressed alert is stored with status ``suppressed`` and the rules that matched in
``details.suppressed_by``, and is not forwarded (store/store.py leaves it out of the outbox).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from fnmatch import fnmatchcase

from ..alerts import Alert

KINDS = ("account", "source", "destination")
_RULE = re.compile(r"\s*(\S+)\s+(account|source|destination)\s*=\s*(\S(?:.*\S)?)\s*", re.IGNORECASE)


@dataclass(frozen=True)
class Exclusion:
    alert_type: str  # lower-case pattern
    kind: str
    pattern: str  # lower-case pattern
    text: str  # as written


def parse(text: str) -> Exclusion:
    """One rule; ValueError says what is wrong with it."""
    m = _RULE.fullmatch(text)
    if not m:
        raise ValueError(f"{text!r}: expected '<alert type> account|source|destination=<name or pattern>'")
    return Exclusion(m.group(1).lower(), m.group(2).lower(), m.group(3).lower(), text.strip())


def _names(value: str, kind: str) -> tuple[str, ...]:
    v = value.strip().lower()
    if kind == "account":
        if "\\" in v:
            return v, v.split("\\", 1)[1]
        if "@" in v:
            return v, v.rsplit("@", 1)[0]
        return (v,)
    return (v, v.split(".", 1)[0]) if "." in v and not v.replace(".", "").isdigit() else (v,)


class Exclusions:
    """The rules in force; `mark` suppresses an alert they cover. Bad rules are skipped (`problems`):
    the API refuses them, so only a configuration file can bring one."""

    def __init__(self, texts: list[str]) -> None:
        self.rules: list[Exclusion] = []
        self.problems: list[str] = []
        for t in texts:
            try:
                self.rules.append(parse(t))
            except ValueError as e:
                self.problems.append(str(e))

    def matching(self, alert: Alert) -> list[str]:
        """The rules (as written) that together cover the alert; [] when it stays."""
        if alert.kind == "health" or not self.rules:
            return []
        t = alert.type.lower()
        values = {"account": alert.accounts, "source": alert.hosts[:1], "destination": [*alert.hosts[1:], *alert.dcs]}
        for kind in KINDS:
            rules = [r for r in self.rules if r.kind == kind and fnmatchcase(t, r.alert_type)]
            vals = [v for v in values[kind] if v]
            if not rules or not vals:
                continue
            used: list[str] = []
            for v in vals:
                hit = next((r for r in rules if any(fnmatchcase(n, r.pattern) for n in _names(v, kind))), None)
                if hit is None:
                    break
                if hit.text not in used:
                    used.append(hit.text)
            else:
                return used
        return []

    def mark(self, alert: Alert) -> bool:
        """Suppress an open alert the rules cover; True when it is (or already was) suppressed."""
        if alert.status == "suppressed":
            return True
        if alert.status != "open":
            return False
        used = self.matching(alert)
        if used:
            alert.status = "suppressed"
            alert.details["suppressed_by"] = used
        return bool(used)
