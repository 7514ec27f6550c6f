"""The processing half of the service: spool -> events -> detections -> store (+ outbox).

It reads the spool in order after its checkpoint, and commits each batch's events, activities,
alert updates, DC-health counts and the new checkpoint in one store transaction. On start it first
replays the rows just behind the checkpoint with forwarding off, to rebuild detector state (alert
updates in that replay are idempotent upserts): a restart raises nothing twice.
"""

from __future__ import annotations

import threading
import time
from collections import Counter, OrderedDict
from collections.abc import Callable

from ..config import Detection, Wef
from ..detectors.engine import DetectionEngine
from ..detectors.senders import SenderCheck
from ..identity import event_identity, trusted_source
from ..model import Origin, WindowsEvent
from ..sources.wef.identity import WefChecks, decode_wef
from ..store.spool import Spool, SpoolRow
from ..store.rows import Batch
from ..store.store import Store
from .pipeline import Pipeline
from .settings_watch import SettingsWatch, apply, apply_inventory

Decoder = Callable[[bytes, Origin], tuple[str, WindowsEvent]]  # -> (layout, event); raises ValueError

SEEN_IDS = 200_000  # message identities remembered for de-duplication (as a detect worker's partition)
REPLAY_ROWS = 200_000  # messages kept behind the checkpoint and replayed after a restart (whole spool rows)


class Processor:
    def __init__(self, store: Store, spool: Spool, detection: Detection, decode: Decoder,
                 batch_rows: int = 5000, wef: Wef | None = None, senders: list[str] | None = None) -> None:
        self.store = store
        self.spool = spool
        self.decode = decode
        self.batch_rows = batch_rows
        self.settings = SettingsWatch(store, detection)  # the file's lists plus the run-time ones
        self.engine = DetectionEngine(detection, store.load_baseline(), keep_alerts=False)
        self.pipeline = Pipeline(self.engine)  # the step a detect worker of the distributed mode runs too
        self.checkpoint = store.checkpoint()
        self.inventory_version = 0.0  # the stored inventory import the engine holds (settings_watch)
        self.counters: Counter = Counter()
        self.by_layout: Counter = Counter()
        self.failed_by_peer: Counter = Counter()
        self.parsed_by_peer: Counter = Counter()
        self.by_event = self.pipeline.by_event
        self.by_alert = self.pipeline.by_alert
        self.samples: dict[str, str] = {}  # peer -> a message that fit no layout, for the operator
        self.seen: OrderedDict[str, None] = OrderedDict()  # identities of the last messages fed
        self.senders = SenderCheck(senders or [])  # [serve] senders: who may speak for which computers
        self._last_save = time.monotonic()
        self._dirty = False
        self._last_input = 0.0
        self.wef = WefChecks(detection, wef.intermediate_collectors if wef else [], self._stored, self._highest)

    def _repeat(self, identity: str) -> bool:
        """Seen among the last SEEN_IDS messages (what a detect worker of the distributed mode drops
        by the same id: bus/partition.py)."""
        seen = self.seen
        if identity in seen:
            return True
        seen[identity] = None
        if len(seen) > SEEN_IDS:
            seen.popitem(last=False)
        return False

    def _stored(self, computer: str, channel: str, record_id: int) -> bool:
        """A WEF copy is a duplicate of a stored authenticated copy only: an unauthenticated sender
        who guessed the key first does not make the DC's real event disappear (identity.py)."""
        return bool(self.store.query("SELECT 1 FROM events WHERE computer = ? AND channel = ? AND record_id = ? "
                                     "AND trusted = 1", (computer, channel, record_id)))

    def _highest(self, computer: str, channel: str) -> int | None:
        rows = self.store.query("SELECT MAX(record_id) FROM events WHERE computer = ? AND channel = ? AND trusted = 1",
                                (computer, channel))
        return rows[0][0] if rows else None

    def refresh_settings(self, force: bool = False) -> bool:
        """Apply run-time lists (honeytokens, sensitive groups, excluded sources, replication
        allow-list) changed through the console or API, and a new inventory import. The detectors are
        updated in place: their windows and open incidents stay."""
        eff = self.settings.poll(force)
        changed = False
        if self.settings.inventory_seen != self.inventory_version:
            self.inventory_version, accounts = self.settings.inventory()
            apply_inventory(self.engine, accounts)
            changed = True
        if eff is None:
            return changed
        apply(self.engine, eff)
        return True

    def warm_up(self) -> int:
        """Replay the messages behind the checkpoint (forwarding off) to rebuild detector state."""
        start = max(0, self.checkpoint - REPLAY_ROWS)
        n = 0
        while start < self.checkpoint:
            rows = self.spool.read(start, self.batch_rows, upto=self.checkpoint)
            if not rows:
                break
            batch = self._process(rows, count=False)
            self.engine.describe_pending()
            batch.forward = False
            batch.events.clear()
            batch.activities.clear()
            batch.health.clear()
            batch.checkpoint = None
            self.store.commit_batch(batch)
            start = rows[-1].seq
            n += len(rows)
        return n

    def step(self) -> int:
        """Process one batch (up to `batch_rows` messages); returns the number of messages consumed.
        The checkpoint is a message position, so a spool row taken in part is finished next time."""
        rows = self.spool.read(self.checkpoint, self.batch_rows)
        if not rows:
            return 0
        batch = self._process(rows, count=True)
        self.engine.describe_pending()
        batch.checkpoint = rows[-1].seq
        self.store.commit_batch(batch)
        self.checkpoint = rows[-1].seq
        self._dirty = True
        if time.monotonic() - self._last_save > 5:
            self.save_state()
        return len(rows)

    def _process(self, rows: list[SpoolRow], count: bool) -> Batch:
        batch = Batch()
        pipeline = self.pipeline
        for row in rows:
            origin = Origin(row.peer, row.seq)
            host = row.peer.split("://", 1)[-1].rsplit(":", 1)[0]
            wef = row.transport == "wef"
            try:
                layout, ev = decode_wef(row.data, origin) if wef else self.decode(row.data, origin)
            except ValueError as exc:
                if count:
                    self.counters["failed"] += 1
                    self.failed_by_peer[host] += 1
                    if host not in self.samples or len(self.samples) < 1000:
                        self.samples[host] = f"{exc}: {row.data[:300]!r}"
                continue
            if not wef and self.senders.active:
                name = row.peer.split("#", 1)[1] if "#" in row.peer else None
                address = host.split("#", 1)[0].strip("[]")
                if not self.senders.allows(address, name, ev.computer):  # replayed too: the same alert grows
                    if count:
                        self.counters["sender_mismatch"] += 1
                    a = self.senders.mismatch(ev, address, name)
                    batch.alerts[a.id] = a
                    continue
            trusted = trusted_source(row.transport, row.peer)
            if self._repeat(event_identity(ev, trusted)):  # a re-sent copy: stored and counted once
                if count:
                    self.counters["wef_duplicates" if wef else "duplicates"] += 1
                continue
            if wef:
                if self.wef.duplicate(ev, replay=not count):
                    if count:
                        self.counters["wef_duplicates"] += 1
                    continue
                mismatch = self.wef.check_sender(ev, row.peer)
                if mismatch is not None:
                    batch.alerts[mismatch.id] = mismatch
            if count:
                self.counters["parsed"] += 1
                self.by_layout[layout] += 1
                self.parsed_by_peer[host] += 1
                self.by_event[ev.event_id] += 1
            pipeline.add(batch, ev, row.received_at, trusted=trusted)
        if count:
            pipeline.tally(batch)
        return batch

    def release_pending(self) -> None:
        """Nothing came for a while: 4776s still waiting for their 8004 go on without a server, so
        a quiet stream cannot hold an attack's last attempts back."""
        self._last_input = 0.0
        batch = Batch()
        self.pipeline.release(batch)
        if batch.alerts or batch.activities:
            self.store.commit_batch(batch)

    def save_state(self) -> None:
        """Baseline and counters to the store (every few seconds, and when idle); old spool rows go."""
        self.store.save_baseline(self.engine.baseline)
        self.store.save_counters("processor", self.snapshot())
        self._last_save = time.monotonic()
        self._dirty = False
        horizon = self.checkpoint - REPLAY_ROWS
        if horizon > 0:
            self.spool.trim(horizon)

    def snapshot(self) -> dict:
        return {"parsed": self.counters["parsed"], "failed": self.counters["failed"],
                "wef_duplicates": self.counters["wef_duplicates"], "duplicates": self.counters["duplicates"],
                "sender_mismatch": self.counters["sender_mismatch"],
                "by_layout": dict(self.by_layout), "by_event": {str(k): v for k, v in self.by_event.items()},
                "by_alert": dict(self.by_alert), "failed_by_peer": dict(self.failed_by_peer),
                "parsed_by_peer": dict(self.parsed_by_peer), "samples": dict(list(self.samples.items())[:50]),
                "checkpoint": self.checkpoint, "settings_version": self.settings.version}

    def run(self, stop: threading.Event, idle_sleep: float = 0.02) -> None:
        """Until `stop` is set. The batch in hand is finished; what is still in the spool stays there
        (it is durable) and is processed after the restart, so a stop is quick even with a backlog."""
        self.refresh_settings(force=True)
        self.warm_up()
        while not stop.is_set():
            self.refresh_settings()
            n = self.step()
            if n:
                self._last_input = time.monotonic()
            else:
                if self._last_input and time.monotonic() - self._last_input > 2 * self.engine.builder.join_window:
                    self.release_pending()
                if self._dirty and time.monotonic() - self._last_save > 0.5:
                    self.save_state()
                time.sleep(idle_sleep)
        for alert in self.engine.finish():
            self.store.put_alert(alert)
        self.save_state()
