"""Honeytoken activity: any authentication by, or group change of, a decoy account.

Decoys are never used legitimately, so there is no threshold and no learning period.
"""

from __future__ import annotations

from collections.abc import Iterable

from ..activities import Activity, AuthActivity, GroupChange
from ..alerts import Alert
from ..config import Detection
from .base import Incidents, add_unique

TYPE = "honeytoken-activity"


class HoneytokenDetector:
    def __init__(self, cfg: Detection, incidents: Incidents) -> None:
        self.names = {h.lower().split("\\")[-1].split("@")[0] for h in cfg.honeytokens if not h.upper().startswith("S-1-")}
        self.sids = {h.upper() for h in cfg.honeytokens if h.upper().startswith("S-1-")}
        self.incidents = incidents

    def _match(self, name: str, sid: str = "") -> str | None:
        short = (name or "").lower().split("\\")[-1].split("@")[0]
        if short.startswith("cn="):
            short = short[3:].split(",", 1)[0]
        if short in self.names:
            return short
        return sid.upper() if sid and sid.upper() in self.sids else None

    def on_activity(self, act: Activity) -> Iterable[Alert]:
        if not self.names and not self.sids:
            return ()
        if isinstance(act, AuthActivity):
            token = self._match(act.account, act.account_sid)
            if token is None:
                return ()
            line = (f"{'Authenticated' if not act.failed else 'Failed to authenticate (' + act.result + ')'} "
                    f"from {act.source} using {act.protocol}"
                    + (f" when accessing {act.server}" if act.server else "") + f" via {act.reporter}")
            a = self.incidents.raise_or_grow(TYPE, token, act.time, act.evidence)
            add_unique(a.accounts, act.account)
            add_unique(a.hosts, act.source)
            if act.server:
                add_unique(a.hosts, act.server)
            add_unique(a.dcs, act.reporter)
            a.protocol = act.protocol
        elif isinstance(act, GroupChange):
            token = self._match(act.member_name, act.member_sid)
            if token is None:
                return ()
            verb = "added to" if act.added else "removed from"
            line = f"Group membership changed: {verb} {act.group_name} by {act.actor} on {act.dc}"
            a = self.incidents.raise_or_grow(TYPE, token, act.time, act.evidence)
            add_unique(a.accounts, act.member)
            add_unique(a.accounts, act.actor)
            add_unique(a.dcs, act.dc)
            a.severity = "high"
        else:
            return ()
        a.count += 1
        lines = a.details.setdefault("activities", [])
        add_unique(lines, f"{act.time:%Y-%m-%d %H:%M:%S} {line}", cap=50)
        a.description = (f"The honeytoken account {a.accounts[0]} was used ({a.count} "
                         f"{'activity' if a.count == 1 else 'activities'}); it is never used legitimately:\n"
                         + "\n".join(lines[-10:]))
        return (a,)
