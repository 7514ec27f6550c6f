"""The processor process: spool -> detection -> store, the outbox forwarder and health checks.

It runs apart from the receiving process so that parsing and detection get a core of their own
while the listeners keep accepting; the two meet only in the SQLite spool and the store.
"""

from __future__ import annotations

import signal
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from ..config import Config
from ..lifeline import die_with_parent
from ..sinks.forward import open_sink
from ..store.spool import Spool
from ..store.store import open_store
from .decode import decode_message
from .forwarder import Forwarder
from .incidents import IncidentLinker
from .health import HealthChecker
from .processor import Processor


@dataclass(frozen=True)
class WorkerPaths:
    store: str  # the store's URL, SQLite paths absolute (store.backend.resolve_store_url)
    spool: Path
    console_url: str
    parent_pid: int


def worker_main(cfg: Config, paths: WorkerPaths, stop: "threading.Event", ready: "threading.Event") -> None:
    """Entry point of the child process. `stop`/`ready` are multiprocessing events."""
    die_with_parent(paths.parent_pid)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when to stop
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    store = open_store(paths.store, paths.spool.parent)
    spool = Spool(paths.spool, cfg.serve.spool_max_rows)
    sinks = {url: open_sink(url, console_url=paths.console_url, webhook_secret=cfg.serve.webhook_secret or None)
             for url in cfg.serve.forward}
    forwarder = Forwarder(store, sinks, IncidentLinker(store, cfg.detection.incidents))
    processor = Processor(store, spool, cfg.detection, decode_message, wef=cfg.wef, senders=cfg.serve.senders)
    proc_stop, fwd_stop = threading.Event(), threading.Event()

    def ingest_counters() -> dict:
        c = dict(store.counters().get("ingest", {}))
        c.update(forwarder.stats())
        c["spool_depth"] = spool.depth(processor.checkpoint)
        return c

    wef = (cfg.wef, spool.wef_clients) if cfg.wef.https or cfg.wef.http else None
    health = HealthChecker(store, cfg.health, ingest_counters, cfg.serve.spool_max_rows, wef=wef)
    fwd_thread = threading.Thread(target=forwarder.run, args=(fwd_stop,), name="forwarder", daemon=True)
    proc_thread = threading.Thread(target=processor.run, args=(proc_stop,), name="processor", daemon=True)
    fwd_thread.start()
    proc_thread.start()
    ready.set()
    next_check = time.monotonic() + min(5.0, cfg.health.check_interval)
    next_expiry = time.monotonic()
    try:
        while not stop.wait(0.2):
            forwarder.wake.set()
            if time.monotonic() >= next_expiry:  # retention: what arrived more than retention_days ago
                store.expire(time.time() - cfg.serve.retention_days * 86400)
                next_expiry = time.monotonic() + 3600
            if time.monotonic() >= next_check:
                health.evaluate()
                store.save_counters("forward", forwarder.stats())
                next_check = time.monotonic() + cfg.health.check_interval
    finally:
        proc_stop.set()  # the processor drains the spool first, then the forwarder the outbox
        proc_thread.join()
        fwd_stop.set()
        fwd_thread.join(timeout=60)
        store.save_counters("forward", forwarder.stats())
        spool.close()
        store.close()
