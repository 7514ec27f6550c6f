"""The service's one incident linker: every alert update, in the order the store committed it.

It runs inside the outbox forwarder (runtime/forwarder.py), which exists once per deployment: in the
one-node worker, and on the holder of the store's "leader" lock in the distributed mode. Detect
workers commit alerts to the store wherever they saw them; the outbox queues every change in commit
order; the forwarder links each one here before it is sent (so CEF carries the incident id), so the
linking never depends on which worker saw which alert. Host aliases come from the store's
`host_aliases` table, which every worker's batches fill (runtime/step.py).

After a restart, or when another node takes the lead, the linker rebuilds its state from the store:
the incidents with an alert inside the linking horizon, with all their alerts, under their stored ids.
"""

from __future__ import annotations

import time
from datetime import datetime

import msgspec

from ..activities.context import DomainContext
from ..alerts import Alert
from ..config import Incidents as IncidentSettings
from ..incidents import Incident, IncidentEngine
from ..model import iso_utc
from ..store import incidents as stored
from ..store.rows import alert_from_dict, stored_time
from ..store.store import Store

_enc = msgspec.json.Encoder()


class IncidentLinker:
    def __init__(self, store: Store, settings: IncidentSettings | None = None) -> None:
        self.store = store
        self.settings = settings or IncidentSettings()
        self.ctx = DomainContext()
        self.engine = IncidentEngine(self.settings, self.ctx)
        self._aliases_seen = 0.0
        self._newest = 0.0  # the newest alert end linked (epoch seconds): incidents well before it are done
        self._rebuild()

    def _refresh_aliases(self) -> None:
        rows = self.store.query("SELECT address, name, seen_at FROM host_aliases WHERE seen_at > ? ORDER BY seen_at",
                                (self._aliases_seen,))
        for address, name, seen_at in rows:
            self.ctx.hosts.link(name, address)
            self._aliases_seen = max(self._aliases_seen, float(seen_at))
        self.ctx.hosts.fresh.clear()

    def _rebuild(self) -> None:
        self._refresh_aliases()
        last = self.store.query("SELECT MAX(end_utc) FROM alerts WHERE kind = 'security'")
        if not last or not last[0][0]:
            return
        horizon = stored_time(last[0][0]).timestamp() - self.settings.window - self.settings.feed_window
        cut = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(horizon))
        rows = self.store.query(
            "SELECT a.body, a.status, m.incident_id FROM incident_alerts m JOIN alerts a ON a.id = m.alert_id "
            "WHERE m.incident_id IN (SELECT m2.incident_id FROM incident_alerts m2 "
            "JOIN alerts a2 ON a2.id = m2.alert_id WHERE a2.end_utc >= ?) ORDER BY a.start_utc, a.id", (cut,))
        records = {r[0]: msgspec.json.decode(r[1]) for r in
                   self.store.query("SELECT id, body FROM incidents WHERE id IN (SELECT DISTINCT m.incident_id "
                                    "FROM incident_alerts m JOIN alerts a ON a.id = m.alert_id "
                                    "WHERE a.end_utc >= ?)", (cut,))}
        for body, status, inc_id in rows:
            a = alert_from_dict(msgspec.json.decode(body))
            a.status = status
            self.engine.adopt(a, inc_id, records.get(inc_id))
        self.engine.summarise_all()

    def link(self, alerts: list[Alert]) -> list[Incident]:
        """Link each alert (sets `alert.incident`) and store what changed, in one transaction."""
        self._refresh_aliases()
        changed: dict[str, Incident] = {}
        gone: set[str] = set()
        for a in alerts:
            res = self.engine.link(a)
            if res is None:
                continue
            changed[res.incident.id] = res.incident
            gone.update(res.merged)
        for g in gone:
            changed.pop(g, None)
        newest = max((a.end.timestamp() for a in alerts), default=0.0)
        self._newest = max(self._newest, newest)
        self.engine.expire(self._newest - self.settings.window - self.settings.feed_window)
        if not changed and not gone:
            return []
        now = time.time()
        rows = [_row(i, now) for i in changed.values()]
        members = [(x.id, i.id, _iso(x.start)) for i in changed.values() for x in i.alerts]
        stored.save(self.store, rows, members, [(g, self.engine.resolve(g)) for g in sorted(gone)])
        return list(changed.values())


def _iso(t: datetime) -> str:
    return iso_utc(t)


def _row(i: Incident, now: float) -> tuple:
    d = i.to_dict()
    return (i.id, i.status, i.severity, d["start"], d["end"], i.title, None, _enc.encode(d).decode(), now)
