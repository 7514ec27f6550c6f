"""Event log cleared (1102 Security, 104 any log; reference/dc-log-alerts.md B13).

No threshold: clearing a log erases evidence and is rare outside a rebuild. One alert per host and
incident: a `wevtutil cl` loop (one 104 per channel, 90 in a minute) grows one alert that lists the
channels. On a DC, clearing a log dcsentry reads is also a health alert of that DC: whatever the
DC had not yet forwarded is gone.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from ...activities import Activity
from ...activities.context import DomainContext
from ...activities.dclog.system import LogCleared
from ...alerts import Alert, Evidence
from ...config import Detection
from ..base import Incidents, Lru, add_unique, plural
from .blind import BlindSpots, link

TYPE = "log-cleared"
DAY = 86400.0
CHECK = "log-cleared"


def actor_of(name: str, domain: str) -> str:
    if not name or name == "-":
        return ""
    return f"{domain}\\{name}" if domain and domain != "-" else name


class LogClearedDetector:
    def __init__(self, cfg: Detection, incidents: Incidents, ctx: DomainContext) -> None:
        self.cfg = cfg.tampering
        self.watched = {c.lower() for c in self.cfg.health_channels}
        self.incidents = incidents
        self.ctx = ctx
        self.blind = BlindSpots(cfg.max_evidence)
        # host not (yet) known as a DC -> (its log-cleared alert, watched channels)
        self.pending: Lru[str, tuple[Alert, list[str]]] = Lru(1000)
        self._known_dcs = 0

    def on_activity(self, act: Activity) -> Iterable[Alert]:
        out: list[Alert] = []
        if self.pending and len(self.ctx.dcs) != self._known_dcs:  # a host that cleared a log turned out a DC
            self._known_dcs = len(self.ctx.dcs)
            out = self._promote()
        if not isinstance(act, LogCleared):
            return out
        a = self.incidents.raise_or_grow(TYPE, act.host, act.time, act.evidence)
        a.count += 1
        channel = act.channel or "unknown log"
        channels: list[str] = a.details.setdefault("channels", [])
        add_unique(channels, channel, cap=500)
        actor = actor_of(act.actor, act.actor_domain)
        add_unique(a.accounts, actor)
        add_unique(a.details.setdefault("subjects", []), actor or act.actor_sid)
        if act.backup_path:
            add_unique(a.details.setdefault("backups", []), f"{channel}: {act.backup_path}")
        add_unique(a.hosts, act.source if act.session is not None and act.session.remote else act.host)
        add_unique(a.dcs, act.host)
        if act.actor_sid:
            a.details["subject_sid"] = act.actor_sid
        if act.session is not None and act.session.remote:
            a.details["source"] = act.source
        out.append(a)
        watched = not act.channel or act.channel.lower() in self.watched
        if self.ctx.inventory.is_dc(act.host):
            a.details["dc"] = True
            if watched:
                out.append(self._health(a, act.host, [channel], act.time, act.evidence))
        else:
            a.details["dc"] = False
            if watched:  # the 1102 is the first record of a cleared log: what shows the host is a DC comes later
                entry = self.pending.get(act.host)
                if entry is None or entry[0] is not a:
                    self.pending.put(act.host, (a, [channel]))
                else:
                    add_unique(entry[1], channel, cap=50)
                self._known_dcs = len(self.ctx.dcs)
        a.description = self._text(act.host, a, a.details["dc"])
        return out

    def _health(self, a: Alert, host: str, channels: list[str], t: datetime, evidence: list[Evidence]) -> Alert:
        h = self.blind.raise_or_grow(CHECK, host, t, evidence, technique=a.technique,
                                     title=f"dcsentry is going blind on {host}: event log cleared")
        for c in channels:
            add_unique(h.details.setdefault("channels", []), c, cap=50)
        h.severity = "high" if "Security" in h.details["channels"] else "medium"
        link(a, h)
        h.description = self._health_text(host, h.details["channels"], a)
        return h

    def _promote(self) -> list[Alert]:
        out: list[Alert] = []
        for host, (a, channels) in list(self.pending.items()):
            if not self.ctx.inventory.is_dc(host):
                continue
            del self.pending[host]
            if self.ctx.clock and self.ctx.clock - a.end.timestamp() > DAY:
                continue  # long past: the gap is history, the security alert tells of it
            a.details["dc"] = True
            out.append(self._health(a, host, channels, a.start, a.evidence[:1]))
            a.description = self._text(host, a, True)
            a.revision += 1
            out.append(a)
        return out

    @staticmethod
    def _who(a: Alert) -> str:
        subjects = [s for s in a.details.get("subjects", []) if s]
        who = ", ".join(subjects) if subjects else "an unknown account (the record does not name it)"
        src = a.details.get("source")
        return who + (f" (logged on from {src})" if src else "")

    def _text(self, host: str, a: Alert, dc: bool) -> str:
        channels = a.details["channels"]
        shown = ", ".join(channels[:12]) + (f" and {len(channels) - 12} more" if len(channels) > 12 else "")
        span = f"at {a.start:%Y-%m-%d %H:%M:%S} UTC" if a.start == a.end else \
            f"between {a.start:%Y-%m-%d %H:%M:%S} and {a.end:%H:%M:%S} UTC"
        backups = a.details.get("backups")
        what = (f"{self._who(a)} cleared {plural(len(channels), 'event log')} on "
                f"{'domain controller ' if dc else ''}{host} {span}: {shown}.")
        why = (" Clearing a log erases the record of what happened before it"
               + (f"; archived copies: {'; '.join(backups[:5])}." if backups else ".")
               + (" On a domain controller this hides logons, directory changes and service installs."
                  if dc else ""))
        todo = (f" Confirm with the account's owner whether this was planned; if not, treat {host} and the account as "
                f"compromised: look at the account's recent logons and what ran on {host} before the clear, keep "
                "any forwarded or SIEM copies of the lost events, and reset the account's credentials.")
        if "health_alert" in a.details:
            todo += " A health alert tracks the evidence gap on this DC."
        return what + why + todo

    def _health_text(self, host: str, channels: list[str], a: Alert) -> str:
        return (f"The {', '.join(channels)} log(s) of {host} were cleared by {self._who(a)} "
                f"(security alert {a.id}). Events {host} logged before the clear and had not yet forwarded are lost, "
                f"so detections for {host} are blind for that period. Check the forwarding (WEF bookmark, agent "
                f"spool) of {host} for a gap, collect the archived log if one was saved, and close this alert once "
                "the gap is understood.")
