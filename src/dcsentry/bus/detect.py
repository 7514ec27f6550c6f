"""The detect worker process: owned partitions -> detection -> the shared store.

Each owned partition runs as its own asyncio task (fetch, then the CPU part in a thread, commit,
ack); the lease loop renews, takes and gives back partitions every third of the lease. One worker
of the deployment (the holder of the store's "leader" lock) also runs the deployment's
housekeeping (runtime/housekeeping.py: the outbox forwarder, health checks, retention, the sum of
every process's counters), as the single node's detection process does.

DC-health marks (when each DC last sent each event id) are gathered from all owned partitions and
written every `HEALTH_EVERY` seconds in a transaction of their own: they are a handful of rows
per DC that every batch of every worker would otherwise update, and two workers' transactions
would queue on those row locks. A worker killed loses at most that long of health counts (the
next events of each DC set `last_seen` again); events, alerts and checkpoints are not affected.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter
from pathlib import Path

import nats

from ..config import Config
from ..gcpolicy import tune_for_throughput
from ..runtime.child import child_setup, node_name
from ..runtime.housekeeping import Housekeeping
from ..runtime.settings import SettingsWatch, follow
from ..store.rows import Batch
from ..store.store import Store, open_store
from .connect import Names, connect, ensure_stream
from .leases import Leases
from .partition import LeaseLost, PartitionRunner

HEALTH_EVERY = 2.0


class DetectWorker:
    def __init__(self, cfg: Config, store: Store, announce=print, node: str | None = None,
                 console_url: str = "http://127.0.0.1:8080") -> None:
        self.cfg = cfg
        self.console_url = console_url
        self.lag = 0
        self.store = store
        self.announce = announce
        self.node = node or node_name()
        self.names = Names(cfg.bus.name)
        self.by_event: Counter = Counter()
        self.by_alert: Counter = Counter()
        self.counters: Counter = Counter()
        self.tasks: dict[int, tuple[PartitionRunner, asyncio.Task]] = {}
        self.health: dict[tuple[str, int], list] = {}
        self._health_at = time.monotonic()
        self.leases: Leases | None = None
        self.settings = SettingsWatch(store, cfg.detection)  # every owned partition applies what it reads
        # compiled once per node: every partition (and each one reopened after an error) shares it
        self.sigma = None
        if cfg.detection.sigma:
            from ..detectors.sigma import load_rules

            self.sigma = load_rules(cfg.detection.sigma)

    # -- partitions -------------------------------------------------------------------------------
    async def _partition(self, runner: PartitionRunner) -> None:
        p = runner.p
        leases = self.leases
        assert leases is not None  # opened in run() before any partition starts
        while not runner.stopping:
            try:
                if not leases.valid(p):
                    await asyncio.sleep(0.1)
                    continue
                if runner.sub is None:
                    n = await runner.open()
                    self.announce(f"partition {p}: taken by {self.node} (replaying {n} message(s))")
                await runner.step(lambda: leases.valid(p))
            except asyncio.CancelledError:
                raise
            except LeaseLost:
                self.counters["lease_lapsed"] += 1
                return
            except Exception as exc:  # bus or store away: start the partition afresh from its checkpoint
                self.counters["partition_errors"] += 1
                self.announce(f"partition {p}: {type(exc).__module__}.{type(exc).__name__}: {exc}; reopening")
                await runner.close()
                await asyncio.sleep(0.5)
                runner = self._runner(p)
                self.tasks[p] = (runner, self.tasks[p][1])
        await runner.save()
        await runner.close()

    def _runner(self, p: int) -> PartitionRunner:
        return PartitionRunner(p, self.js, self.names, self.store, self.cfg, self.by_event, self.by_alert,
                               self.counters, self._add_health, self.settings, sigma=self.sigma)

    def _add_health(self, marks: dict) -> None:
        for key, (first, last, last_utc, n) in marks.items():
            h = self.health.get(key)
            if h is None:
                self.health[key] = [first, last, last_utc, n]
            else:
                h[1], h[2], h[3] = max(h[1], last), last_utc, h[3] + n

    async def _flush_health(self) -> None:
        self._health_at = time.monotonic()
        if self.health:
            marks, self.health = self.health, {}
            await asyncio.to_thread(self.store.commit_batch, Batch(health=marks))

    def _start(self, p: int) -> None:
        runner = self._runner(p)
        self.tasks[p] = (runner, asyncio.create_task(self._partition(runner)))

    async def _drop(self, p: int) -> None:
        """Lost: stop now, commit nothing more."""
        runner, task = self.tasks.pop(p)
        task.cancel()
        try:
            await task
        except (asyncio.CancelledError, Exception):
            pass
        await runner.close()
        self.announce(f"partition {p}: lost by {self.node}")

    async def _give_back(self, p: int) -> None:
        """Finish the batch in hand, save, then release the lease for another worker."""
        runner, task = self.tasks.pop(p)
        runner.stopping = True
        try:
            await asyncio.wait_for(task, timeout=30)
        except (TimeoutError, Exception):
            task.cancel()
        if self.leases is not None:
            await self.leases.release(p)

    # -- the lease loop ---------------------------------------------------------------------------
    async def run(self, stop: threading.Event | asyncio.Event, ready: threading.Event | None = None) -> None:
        cfg = self.cfg
        self.nc = await connect(cfg.serve.bus, f"dcsentry-detect-{self.node}", self.announce)
        self.js = self.nc.jetstream(timeout=5.0)
        await ensure_stream(self.js, self.names, cfg.bus)
        self.leases = Leases(self.js, self.names, self.node, cfg.bus.partitions, cfg.bus.lease_seconds)
        await self.leases.open()
        leader = LeaderJobs(self.store, cfg, self)
        # read before any partition processes a message; each applies the latest between its batches
        settings_task = await follow(self.settings, lambda eff: None, self.counters)
        if ready is not None:
            ready.set()
        self.announce(f"detect worker {self.node} on {cfg.bus.partitions} partitions")
        period = cfg.bus.lease_seconds / 3
        while not stop.is_set():
            t0 = time.monotonic()
            try:
                gained, lost, extra = await asyncio.wait_for(self.leases.tick(), timeout=period * 2)
            except (TimeoutError, nats.errors.Error, OSError):
                self.counters["lease_errors"] += 1
                gained, lost, extra = [], [], []
            for p in lost:
                if p in self.tasks:
                    await self._drop(p)
            for p in extra:
                if p in self.tasks:
                    await self._give_back(p)
            for p in gained:
                self._start(p)
            for p, (_, task) in list(self.tasks.items()):
                if task.done() and p in self.tasks:  # its lease lapsed mid-batch: give it up properly
                    self.tasks.pop(p)
                    await self.leases.release(p)
            await self._measure_lag()
            if time.monotonic() - self._health_at >= HEALTH_EVERY:
                await self._flush_health()
            await asyncio.to_thread(leader.tick)
            await asyncio.sleep(max(0.0, period - (time.monotonic() - t0)))
        for p in list(self.tasks):
            await self._give_back(p)
        settings_task.cancel()
        await self.leases.release_all()
        await self._flush_health()
        await asyncio.to_thread(leader.close)
        await self.nc.drain()

    async def _measure_lag(self) -> None:
        """Messages of the owned partitions not yet processed (the spool depth of this mode)."""
        lag = 0
        for p in list(self.tasks):
            try:
                ci = await self.js.consumer_info(self.names.stream, self.names.consumer(p), timeout=1.0)
                lag += ci.num_pending + ci.num_ack_pending
            except Exception:
                pass  # a partition being opened, or the bus away: counted at the next tick
        self.lag = lag

    def snapshot(self) -> dict:
        return {"by_event": {str(k): v for k, v in self.by_event.items()}, "by_alert": dict(self.by_alert),
                "partitions": len(self.tasks), "lag": self.lag,
                "settings_version": self.settings.version, **self.counters, "saved_at": time.time()}


class LeaderJobs:
    """The node's counters every tick; the deployment's housekeeping while this node leads
    (another worker takes over when the leader dies)."""

    def __init__(self, store: Store, cfg: Config, worker: DetectWorker) -> None:
        self.store = store
        self.cfg = cfg
        self.worker = worker
        self.house: Housekeeping | None = None

    def tick(self) -> None:
        self.store.save_counters(f"detect:{self.worker.node}", self.worker.snapshot())
        if not self.store.lead("leader"):
            return
        if self.house is None:
            self.house = Housekeeping(self.store, self.cfg, self.worker.console_url)
            self.house.start()
            self.worker.announce(f"{self.worker.node} leads: forwarding, health checks, retention")
        self.house.tick()

    def close(self) -> None:
        if self.house is not None:
            self.house.close(drain=0)
        self.store.save_counters(f"detect:{self.worker.node}", self.worker.snapshot())


def detect_main(cfg: Config, store_url: str, data_dir: Path, console_url: str, parent_pid: int,
                stop: threading.Event, ready: threading.Event) -> None:
    """Entry point of the detect child process of `serve --bus` (role detect or all)."""
    child_setup(parent_pid)

    def announce(line: str) -> None:
        print(line, flush=True)

    store = open_store(store_url, data_dir, raw_events=cfg.serve.raw_events)
    tune_for_throughput()
    try:
        asyncio.run(DetectWorker(cfg, store, announce, console_url=console_url).run(stop, ready))
    finally:
        store.close()
