"""One partition in the hands of its owner: durable consumer, detector state, checkpoint.

Taking a partition over (`open`):
1. read its checkpoint (the last stream sequence committed to the store, in the same transaction
   as the results) and its replay start (the sequence processed `replay_seconds` before);
2. (re)create the partition's durable consumer to deliver from the replay start, in order, with
   AckPolicy.ALL, so whatever the previous owner fetched but did not ack is delivered again;
3. messages up to the checkpoint rebuild the detectors' state (their results are in the store
   already: nothing is written or sent for them), later ones are processed for real.

An attack split across a failover is thus still one alert counting every attempt: the new owner's
detectors hold what the old one had seen. Each batch is committed (events, activities, alerts,
health, checkpoint: one transaction) before its messages are acked; a message redelivered after a
lost ack is below the checkpoint and skipped; one re-published after the duplicate window is
dropped by its message id.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter, deque
from collections.abc import Callable
from typing import TYPE_CHECKING, cast

import nats
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.errors import NotFoundError

from ..config import Config
from ..runtime.core import DetectionCore
from ..runtime.routing import ALERT, EVENT, KIND_HEADER
from ..runtime.settings import SettingsWatch
from ..store.rows import Batch
from ..store.store import Store
from .connect import Names

if TYPE_CHECKING:
    from ..detectors.sigma import SigmaRuleset  # imported when rules are configured (pySigma is slow to load)

FETCH_WAIT = 0.5


class LeaseLost(Exception):
    """The partition's lease lapsed before a commit: the batch is dropped, the state too."""


class PartitionRunner:
    def __init__(self, p: int, js: JetStreamContext, names: Names, store: Store, cfg: Config,
                 by_event: Counter, by_alert: Counter, counters: Counter,
                 health: Callable[[dict], None] | None = None, settings: SettingsWatch | None = None,
                 sigma: SigmaRuleset | None = None) -> None:
        """`sigma`: the node's compiled rules, shared by its partitions (each matcher keeps its own
        correlation state); None compiles `cfg.detection.sigma` here."""
        self.p = p
        self.js = js
        self.names = names
        self.store = store
        self.cfg = cfg
        self.progress_name = f"bus:{names.prefix}:p{p}"
        self.replay_name = f"{self.progress_name}:replay"
        self.baseline_name = f"bus:{names.prefix}:p{p}"
        self.core = DetectionCore(cfg.detection, store.load_baseline(self.baseline_name), partitions=cfg.bus.partitions,
                                  settings=settings, sigma=sigma, by_event=by_event, by_alert=by_alert,
                                  counters=counters)
        self.counters = counters
        self.health = health  # takes each batch's DC-health marks (written apart: see DetectWorker)
        self.checkpoint = 0
        self.replay_upto = 0
        self.fed = 0
        self.marks: deque[tuple[float, int]] = deque()  # (commit time, first sequence of the batch)
        self.sub: JetStreamContext.PullSubscription | None = None
        self.stopping = False
        self._last_input = 0.0
        self._last_save = time.monotonic()

    # -- taking over ----------------------------------------------------------------------------------
    async def open(self) -> int:
        """Returns the number of messages that will be replayed to rebuild state."""
        checkpoint = await asyncio.to_thread(self.store.progress, self.progress_name) or 0
        replay_from = await asyncio.to_thread(self.store.progress, self.replay_name) or 0
        info = await self.js.stream_info(self.names.stream)
        if checkpoint > info.state.last_seq:  # the stream was deleted and made again: start over
            self.counters["stream_reset"] += 1
            checkpoint = replay_from = 0
        start = checkpoint + 1
        if self.cfg.bus.replay_seconds > 0 and 0 < replay_from <= checkpoint:
            start = replay_from
        self.checkpoint = self.replay_upto = checkpoint
        self.fed = start - 1
        self.marks.append((time.time(), start))
        durable = self.names.consumer(self.p)
        try:
            await self.js.delete_consumer(self.names.stream, durable)
        except NotFoundError:
            pass
        await self.js.add_consumer(self.names.stream, ConsumerConfig(
            durable_name=durable, filter_subject=self.names.subject(self.p),
            deliver_policy=DeliverPolicy.BY_START_SEQUENCE, opt_start_seq=max(1, start),
            ack_policy=AckPolicy.ALL, ack_wait=60.0, max_ack_pending=-1, max_deliver=-1))
        self.sub = await self.js.pull_subscribe_bind(durable, stream=self.names.stream)
        return max(0, checkpoint - start + 1)

    # -- one step -----------------------------------------------------------------------------------
    async def step(self, valid: Callable[[], bool]) -> int:
        """Fetch, process, commit, ack. Returns the number of new messages processed."""
        # the timings are kept as float seconds beside the integer counts
        c, t0 = cast("dict[str, float]", self.counters), time.perf_counter()
        assert self.sub is not None  # open() ran
        try:
            msgs = await self.sub.fetch(self.cfg.bus.batch, timeout=FETCH_WAIT)
        except (TimeoutError, nats.errors.TimeoutError):  # nothing new (FetchTimeoutError included)
            msgs = []
        if not msgs:
            await self._idle(valid)
            return 0
        self.core.sync_settings()  # what the watch read before this fetch returned applies to it
        t1 = time.perf_counter()
        batch, live, last = await asyncio.to_thread(self._process, msgs)
        t2 = time.perf_counter()
        c["fetch_seconds"] += t1 - t0
        c["process_seconds"] += t2 - t1
        if self.health is not None and batch.health:
            self.health(batch.health)
            batch.health = {}
        if live:
            if not valid():
                raise LeaseLost(self.p)
            batch.progress = {self.progress_name: last, self.replay_name: self._replay_from()}
            await asyncio.to_thread(self.store.commit_batch, batch)
            c["commit_seconds"] += time.perf_counter() - t2
            c["batches"] += 1
            self.checkpoint = max(self.checkpoint, last)
            self._last_input = time.monotonic()
        await msgs[-1].ack()
        return live

    def _process(self, msgs: list) -> tuple[Batch, int, int]:
        """The fetched messages in order: those up to the checkpoint replayed (state only), the
        rest live (runtime/core.py)."""
        batch, replayed = Batch(), Batch()
        live = first = last = 0
        replay_part: list[tuple[str, bytes]] = []
        live_part: list[tuple[str, bytes]] = []
        for m in msgs:
            seq = m.metadata.sequence.stream
            if seq <= self.fed:  # redelivered after a lost ack: already in hand
                self.counters["redelivered"] += 1
                continue
            self.fed = seq
            kind = ALERT if (m.headers or {}).get(KIND_HEADER) == ALERT else EVENT
            if seq <= self.replay_upto:
                replay_part.append((kind, m.data))
            else:
                live_part.append((kind, m.data))
                live += 1
                first = first or seq
                last = seq
        if replay_part:
            self.core.feed(replay_part, Batch(), replayed, replay=True)
        if live_part:
            self.core.feed(live_part, batch, replayed, replay=False)
        self.core.end_batch(batch, replayed)
        if live:
            self.marks.append((time.time(), first))
            last = max(last, self.checkpoint)
        return batch, live, last

    def _replay_from(self) -> int:
        """The first sequence committed within the last `replay_seconds`."""
        horizon = time.time() - self.cfg.bus.replay_seconds
        while len(self.marks) > 1 and self.marks[1][0] < horizon:
            self.marks.popleft()
        return self.marks[0][1]

    async def _idle(self, valid: Callable[[], bool]) -> None:
        """Quiet partition: release 4776s still waiting for their 8004; save the baseline."""
        if self._last_input and time.monotonic() - self._last_input > 2 * self.core.join_window:
            self._last_input = 0.0
            batch = Batch()
            self.core.release(batch)
            self.core.end_batch(batch)
            if (batch.alerts or batch.activities) and valid():
                await asyncio.to_thread(self.store.commit_batch, batch)
        if time.monotonic() - self._last_save > 5 and valid():
            await self.save()

    async def save(self) -> None:
        self._last_save = time.monotonic()
        await asyncio.to_thread(self.store.save_baseline, self.core.baseline, self.baseline_name)

    async def close(self) -> None:
        if self.sub is not None:
            try:
                await self.sub.unsubscribe()
            except Exception:
                pass  # the connection is gone already: the subscription with it
