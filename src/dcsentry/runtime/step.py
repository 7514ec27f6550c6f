"""The detection step: one Windows event -> detection -> what the store keeps, into a Batch.

Every detection core (runtime/core.py) runs its events through this, whichever mode feeds it, so
the same events give the same stored rows and the same alerts either way.
"""

from __future__ import annotations

from collections import Counter

from ..audit.requirements import health_key
from ..detectors.base import Lru
from ..detectors.engine import DetectionEngine
from ..model import WindowsEvent
from ..store.rows import Batch, stored_event_ids

_STORED = stored_event_ids()


class DetectionStep:
    def __init__(self, engine: DetectionEngine) -> None:
        self.engine = engine
        self.by_event: Counter = Counter()
        self.by_alert: Counter = Counter()
        self._counted: Lru[str, None] = Lru(100_000)  # alert ids already counted as raised

    def process(self, batch: Batch, ev: WindowsEvent, received_at: float, *, store: bool = True,
                trusted: bool = False) -> None:
        """Detect on `ev`; with `store`, the event (if of the catalogue) and its DC-health mark too.
        `trusted`: it came over an authenticated transport (identity.py)."""
        if store and ev.event_id in _STORED:
            batch.events.append((ev, received_at, trusted))
            health_into(batch, ev, received_at)
        engine = self.engine
        before = engine.activities
        for alert in engine.feed(ev):
            batch.alerts[alert.id] = alert
        if engine.activities != before:
            batch.activities.extend(engine.last_activities)
        fresh = engine.ctx.hosts.fresh
        if fresh:  # names of addresses, for the one incident linker (runtime/linking.py)
            batch.aliases.update(fresh)
            fresh.clear()

    def tally(self, batch: Batch, count: bool = True) -> None:
        """Count the alerts raised for the first time in this batch, by type (for /metrics); without
        `count`, only remember them (a replay: they were counted when first raised)."""
        for alert_id, a in batch.alerts.items():
            if alert_id not in self._counted:
                self._counted.put(alert_id, None)
                self.by_alert[a.type] += count

    def release(self, batch: Batch) -> None:
        """Quiet input: 4776s still waiting for their 8004 go on without a server."""
        for alert in self.engine.finish():
            batch.alerts[alert.id] = alert
        batch.activities.extend(self.engine.last_activities)


def health_into(batch: Batch, ev: WindowsEvent, received_at: float) -> None:
    """When each DC last sent each event the health checks (and `audit --events`) look for."""
    key = health_key(ev.event_id, ev.channel, ev.computer)
    if key is None:
        return
    h = batch.health.get(key)
    if h is None:
        batch.health[key] = [received_at, received_at, ev.time, 1]
    else:
        h[1] = max(h[1], received_at)
        h[2] = ev.time  # formatted once per key, when the batch is written (Store.prepare_batch)
        h[3] += 1
