"""The single node's detection process: spool -> detection core -> store, and the housekeeping.

It runs apart from the receiving process so that detection gets a core of its own while the
listeners keep accepting (and decoding: runtime/decode.py); the two meet only in the spool and
the store. The distributed mode's counterpart is bus/detect.py.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

from ..config import Config
from ..gcpolicy import tune_for_throughput
from ..sources.spool import Spool
from ..store.store import open_store
from .child import child_setup
from .housekeeping import Housekeeping
from .processor import Processor


@dataclass(frozen=True)
class ProcessPaths:
    store: str  # the store's URL, SQLite paths absolute (store.backend.resolve_store_url)
    spool: Path
    console_url: str
    parent_pid: int


def single_node_main(cfg: Config, paths: ProcessPaths, stop: threading.Event, ready: threading.Event) -> None:
    """Entry point of the child process. `stop`/`ready` are multiprocessing events."""
    child_setup(paths.parent_pid)
    store = open_store(paths.store, paths.spool.parent, raw_events=cfg.serve.raw_events)
    spool = Spool(paths.spool, cfg.serve.spool_max_rows)
    house = Housekeeping(store, cfg, paths.console_url)
    processor = Processor(store, spool, cfg, alerts_stored=house.forwarder.wake.set)
    tune_for_throughput()  # the baseline is loaded: freeze it out of the collector's walks
    proc_stop = threading.Event()
    house.start()
    proc_thread = threading.Thread(target=processor.run, args=(proc_stop,), name="processor", daemon=True)
    proc_thread.start()
    ready.set()
    try:
        while not stop.wait(0.2):
            house.tick()
    finally:
        proc_stop.set()  # the processor finishes its batch first, then the forwarder drains the outbox
        proc_thread.join()
        house.close()
        spool.close()
        store.close()
