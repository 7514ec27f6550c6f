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
import copy
import dataclasses
import time
from collections import Counter, OrderedDict, deque
from collections.abc import Callable
from typing import TYPE_CHECKING

import msgspec
import nats
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.errors import NotFoundError

from ..config import Config
from ..detectors.baseline import Baseline
from ..detectors.engine import DetectionEngine
from ..detectors.honeytoken import HoneytokenDetector
from ..service.pipeline import Pipeline
from ..service.settings_watch import Applied, SettingsWatch
from ..store.rows import Batch
from ..store.store import Store
from .connect import Names
from .wire import KIND_HEADER, decode, decode_alert

if TYPE_CHECKING:
    from ..detectors.sigma import SigmaRuleset  # imported when rules are configured (pySigma is slow to load)

FETCH_WAIT = 0.5
SEEN_IDS = 200_000  # message ids remembered per partition (duplicates past JetStream's window)


class LeaseLost(Exception):
    """The partition's lease lapsed before a commit: the batch is dropped, the state too."""


def token_engine(cfg: Config) -> DetectionEngine:
    """Only the honeytoken detector: it sees the flagged copies of honeytoken events. Its own copy
    of the settings, which run-time changes update in place. No Sigma rules (not even compiled):
    the main engine runs them on the original event, not twice."""
    engine = DetectionEngine(dataclasses.replace(copy.deepcopy(cfg.detection), sigma=[]), Baseline(),
                             keep_alerts=False)
    engine.detectors = [d for d in engine.detectors if isinstance(d, HoneytokenDetector)]
    return engine


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
        no_tokens = dataclasses.replace(cfg.detection, honeytokens=[])  # their alerts come from `tokens`
        self.main = Pipeline(DetectionEngine(no_tokens, store.load_baseline(self.baseline_name), keep_alerts=False,
                                             sigma=sigma))
        self.tokens = Pipeline(token_engine(cfg))
        for pl in (self.main, self.tokens):
            pl.by_event, pl.by_alert = by_event, by_alert
        # run-time settings (console / API), applied between batches; the main engine's honeytoken
        # list stays empty: the token engine raises those alerts
        self.settings = [Applied(settings, self.main.engine, tokens=False), Applied(settings, self.tokens.engine)]
        self.counters = counters
        self.health = health  # takes each batch's DC-health marks (written apart: see DetectWorker)
        self.seen: OrderedDict[str, None] = OrderedDict()
        self.checkpoint = 0
        self.replay_upto = 0
        self.fed = 0
        self.marks: deque[tuple[float, int]] = deque()  # (commit time, first sequence of the batch)
        self.sub = None
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
        c, t0 = self.counters, time.perf_counter()
        try:
            msgs = await self.sub.fetch(self.cfg.bus.batch, timeout=FETCH_WAIT)
        except (asyncio.TimeoutError, nats.errors.TimeoutError):  # nothing new (FetchTimeoutError included)
            msgs = []
        if not msgs:
            await self._idle(valid)
            return 0
        for applied in self.settings:  # what the watch read before this fetch returned applies to it
            applied.sync()
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
        batch, replayed = Batch(), Batch()
        live = 0
        first = last = 0
        for m in msgs:
            seq = m.metadata.sequence.stream
            if seq <= self.fed:  # redelivered after a lost ack: already in hand
                self.counters["redelivered"] += 1
                continue
            self.fed = seq
            mid = (m.headers or {}).get("Nats-Msg-Id")
            if mid is not None:
                if mid in self.seen:
                    self.counters["duplicates"] += 1
                    continue
                self.seen[mid] = None
                if len(self.seen) > SEEN_IDS:
                    self.seen.popitem(last=False)
            replay = seq <= self.replay_upto
            if (m.headers or {}).get(KIND_HEADER) == "alert":  # raised on an ingest node: upsert its latest state
                self._alert(m.data, replay, batch)
                if not replay:
                    live += 1
                    first = first or seq
                    last = seq
                continue
            try:
                env = decode(m.data)
            except (msgspec.DecodeError, msgspec.ValidationError):
                self.counters["bad_messages"] += 1
                continue
            ev = env.event
            if replay:
                self.counters["replayed"] += 1
            else:
                live += 1
                first = first or seq
                last = seq
            if env.dc:
                self.main.engine.builder.dcs.add(ev.computer.split(".", 1)[0].upper())
            target = replayed if replay else batch
            if env.token:
                self.tokens.add(target, ev, env.received_at, store=False)
            else:
                if not replay:
                    self.main.by_event[ev.event_id] += 1
                self.main.add(target, ev, env.received_at, store=not replay, trusted=env.trusted)
        self.main.engine.describe_pending()
        self.tokens.engine.describe_pending()
        self.main.tally(replayed, count=False)
        if live:
            self.main.tally(batch)
            self.marks.append((time.time(), first))
            last = max(last, self.checkpoint)
        return batch, live, last

    def _alert(self, data: bytes, replay: bool, batch: Batch) -> None:
        """An alert an ingest node raised (WEF sender check). In replay its state is in the store
        already; live, the batch upserts it by id with the partition's checkpoint."""
        try:
            alert = decode_alert(data)
        except (msgspec.DecodeError, msgspec.ValidationError):
            self.counters["bad_messages"] += 1
            return
        if not replay:
            batch.alerts[alert.id] = alert  # counted for /metrics by the batch's tally

    def _replay_from(self) -> int:
        """The first sequence committed within the last `replay_seconds`."""
        horizon = time.time() - self.cfg.bus.replay_seconds
        while len(self.marks) > 1 and self.marks[1][0] < horizon:
            self.marks.popleft()
        return self.marks[0][1]

    async def _idle(self, valid: Callable[[], bool]) -> None:
        """Quiet partition: release 4776s still waiting for their 8004; save the baseline."""
        join = self.main.engine.builder.join_window
        if self._last_input and time.monotonic() - self._last_input > 2 * join:
            self._last_input = 0.0
            batch = Batch()
            self.main.release(batch)
            self.tokens.release(batch)
            if (batch.alerts or batch.activities) and valid():
                await asyncio.to_thread(self.store.commit_batch, batch)
        if time.monotonic() - self._last_save > 5 and valid():
            await self.save()

    async def save(self) -> None:
        self._last_save = time.monotonic()
        await asyncio.to_thread(self.store.save_baseline, self.main.engine.baseline, self.baseline_name)

    async def close(self) -> None:
        if self.sub is not None:
            try:
                await self.sub.unsubscribe()
            except Exception:
                pass  # the connection is gone already: the subscription with it
