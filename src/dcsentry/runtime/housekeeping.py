"""What runs once per deployment, the same in both modes: the outbox forwarder, the health
checks, retention, and adding up every process's counters into the rows the console reads.

The single node runs it in its detection process; in the distributed mode the detect worker that
holds the store's "leader" lock runs it, and another takes over when that one dies.
"""

from __future__ import annotations

import threading
import time

from ..config import Config
from ..sinks.forward import Sink, open_sink
from ..store.store import Store
from .counters import merged_counters
from .forwarder import Forwarder
from .health import HealthChecker
from .linking import IncidentLinker

MERGE_EVERY = 1.0  # seconds between two sums of the processes' counters


def stored_wef_clients(counters: dict[str, dict]) -> list[dict]:
    """Every intake's WEF clients, from their `wef:<node>` rows. A client that moved to another
    ingest node is in two rows; the health check goes by its latest delivery."""
    out: list[dict] = []
    for name, data in counters.items():
        if name.startswith("wef:"):
            out.extend(r for r in data.get("clients", []) if isinstance(r, dict))
    return out


class Housekeeping:
    def __init__(self, store: Store, cfg: Config, console_url: str) -> None:
        self.store = store
        self.cfg = cfg
        secret = cfg.serve.webhook_secret or None
        sinks: dict[str, Sink] = {url: open_sink(url, console_url=console_url, webhook_secret=secret)
                                  for url in cfg.serve.forward}
        self.forwarder = Forwarder(store, sinks, IncidentLinker(store, cfg.detection.incidents))
        self.rows: dict[str, dict] = {}
        self.merged: dict[str, dict] = {}
        self.health = HealthChecker(store, cfg.health, self._ingest, cfg.serve.spool_max_rows,
                                    wef=(cfg.wef, lambda: stored_wef_clients(self.rows)))
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        now = time.monotonic()
        self._next_check = now + min(5.0, cfg.health.check_interval)
        self._next_expiry = now
        self._next_merge = now

    def _ingest(self) -> dict:
        return {**self.merged.get("ingest", {}), **self.forwarder.stats()}

    def start(self) -> None:
        self._thread = threading.Thread(target=self.forwarder.run, args=(self._stop,), name="forwarder", daemon=True)
        self._thread.start()

    def merge(self) -> None:
        """Every process's counters -> the `ingest` and `processor` rows (runtime/counters.py)."""
        self.rows = self.store.counters()
        self.merged = merged_counters(self.rows)
        for name, data in self.merged.items():
            self.store.save_counters(name, data)
        self._next_merge = time.monotonic() + MERGE_EVERY

    def tick(self) -> None:
        now = time.monotonic()
        self.forwarder.wake.set()
        if now >= self._next_merge:
            self.merge()
        if now >= self._next_expiry:  # retention: what arrived more than retention_days ago
            self.store.expire(time.time() - self.cfg.serve.retention_days * 86400)
            self._next_expiry = now + 3600
        if now >= self._next_check:
            self.health.evaluate()
            self.store.save_counters("forward", self.forwarder.stats())
            self._next_check = now + self.cfg.health.check_interval

    def close(self, drain: float = 60.0) -> None:
        """The forwarder sends what the outbox holds (for up to `drain` seconds), then stops."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=drain)
        self.merge()
        self.store.save_counters("forward", self.forwarder.stats())
