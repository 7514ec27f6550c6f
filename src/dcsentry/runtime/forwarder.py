"""Sends alert updates from the store's outbox to the configured sinks, at least once.

An outbox row is deleted only after every sink took it; a sink that is down keeps the rows for a
later try (the outbox is durable, so a restart loses nothing). Failures are counted per sink for
the "sink unreachable" health alert and /metrics.
"""

from __future__ import annotations

import threading

from ..alerts import Alert
from ..incidents.model import Incident
from ..sinks.forward import Sink
from ..store.rows import alert_from_dict
from ..store.store import Store
from .linking import IncidentLinker


class Forwarder:
    """Outbox -> sinks. A row leaves the outbox once every sink has delivered it (its queue is
    empty after a flush); while a sink is down, rows stay, and nothing is handed over twice."""

    def __init__(self, store: Store, sinks: dict[str, Sink], linker: IncidentLinker | None = None) -> None:
        self.store = store
        self.sinks = sinks  # url -> sink
        self.linker = linker  # the deployment's one incident linker: every alert passes here once in order
        self.link_errors = 0
        self.last_link_error = ""
        self.handed_upto: int | None = None  # outbox rows given to the sinks, not yet delivered
        self.wake = threading.Event()

    def _flushed(self) -> bool:
        ok = True
        for sink in self.sinks.values():
            ok = sink.flush(force=True) and ok
        return ok

    def pump(self) -> int:
        """Deliver what the outbox holds; returns how many rows left it."""
        if not self.sinks:
            rows = self.store.outbox_take(5000)  # the store is the only destination
            if rows:
                self._link([alert_from_dict(body) for _, body in rows])
            if rows:
                self.store.outbox_done(rows[-1][0])
            return len(rows)
        if self.handed_upto is not None:
            if not self._flushed():
                return 0
            self.store.outbox_done(self.handed_upto)
            self.handed_upto = None
        rows = self.store.outbox_take()
        if not rows:
            return 0
        alerts = [alert_from_dict(body) for _, body in rows]
        incidents = self._link(alerts)  # before sending: CEF carries the incident id
        for alert in alerts:
            for sink in self.sinks.values():
                sink.send(alert)
        for inc in incidents:  # after their alerts: OCSF Incident Findings (sinks without a class skip them)
            for sink in self.sinks.values():
                send = getattr(sink, "send_incident", None)
                if send is not None:
                    send(inc)
        self.handed_upto = rows[-1][0]
        if self._flushed():
            self.store.outbox_done(self.handed_upto)
            self.handed_upto = None
            return len(rows)
        return 0

    def _link(self, alerts: list[Alert]) -> list[Incident]:
        """Into their incidents; the incidents they changed. A failure (the store away past its
        retries) must not stop forwarding: the alerts go out without an incident id, counted."""
        if self.linker is None:
            return []
        try:
            return self.linker.link(alerts)
        except Exception as exc:  # noqa: BLE001 - any: forwarding goes on
            self.link_errors += 1
            self.last_link_error = f"{type(exc).__name__}: {exc}"[:300]
            return []

    def stats(self) -> dict[str, dict[str, int]]:
        sent, failed, dead = {}, {}, {}
        for url, sink in self.sinks.items():
            st = sink.stats
            sent[url], failed[url], dead[url] = st.sent, st.failed, st.dead_letter
        return {"sink_sent": sent, "sink_failed": failed, "sink_dead_letter": dead,
                "incident_link_errors": {"linker": self.link_errors}}

    def run(self, stop: threading.Event, interval: float = 0.5) -> None:
        while not stop.is_set():
            self.wake.clear()  # before the pump: a wake-up set while it runs is not lost
            if self.pump() == 0:
                self.wake.wait(interval)
        self.pump()
        for sink in self.sinks.values():
            sink.close()
