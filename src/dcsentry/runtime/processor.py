"""The single node's detection driver: its spool's messages, in order, through one detection core.

It reads the spool after its checkpoint and commits each batch's events, activities, alert
updates, DC-health marks and the new checkpoint in one store transaction. On start it first feeds
the messages just behind the checkpoint again with `replay` (runtime/core.py) to rebuild detector
state: a restart raises nothing twice. The distributed mode's partition runner (bus/partition.py)
is the same driver over a stream subject.

Rows spooled by a version that decoded after the spool hold raw messages; they are decoded here
with the intake's decoder, so an upgrade neither loses nor repeats what was waiting.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from functools import partial

from ..config import Config
from ..sources.spool import Spool, SpoolRow
from ..store.rows import Batch
from ..store.store import Store
from .committer import Committer
from .core import DetectionCore
from .decode import IntakeDecoder
from .routing import ALERT, EVENT
from .settings import SettingsWatch

REPLAY_ROWS = 200_000  # messages kept behind the checkpoint and replayed after a restart
COUNTERS = "detect:local"  # this process's row of counters (runtime/counters.py adds them up)


class Processor:
    def __init__(self, store: Store, spool: Spool, cfg: Config, batch_rows: int = 5000,
                 alerts_stored: Callable[[], None] | None = None) -> None:
        self.store = store
        # called on the writer thread once a batch holding alerts is committed: the forwarder sends
        # them now instead of at its next poll (runtime/single.py)
        self.alerts_stored = alerts_stored
        self.spool = spool
        self.batch_rows = batch_rows
        self.settings = SettingsWatch(store, cfg.detection)  # the file's lists plus the run-time ones
        self.counters: Counter = Counter()
        self.core = DetectionCore(cfg.detection, store.load_baseline(), settings=self.settings,
                                  counters=self.counters)
        self.legacy = IntakeDecoder(cfg)  # raw rows of an older spool layout
        self.checkpoint = store.checkpoint()  # the last message whose batch is stored
        self.position = self.checkpoint  # the last message read (its batch may still be being written)
        self.committer = Committer(store)
        self._last_save = time.monotonic()
        self._dirty = False
        self._last_input = 0.0

    def refresh_settings(self, force: bool = False) -> bool:
        """Read the run-time lists and inventory if they changed; the core applies them in place."""
        self.settings.poll(force)
        return self.core.sync_settings()

    def _messages(self, rows: list[SpoolRow]) -> list[tuple[str, bytes]]:
        out: list[tuple[str, bytes]] = []
        for row in rows:
            if row.transport in (EVENT, ALERT):
                out.append((row.transport, row.data))
                continue
            legacy = self.legacy.decode_all([(row.data, row.received_at, row.peer, row.transport)])
            out.extend((m.kind, m.data) for m in legacy)
        return out

    def warm_up(self) -> int:
        """Feed the messages behind the checkpoint again (`replay`) to rebuild detector state."""
        start = max(0, self.checkpoint - REPLAY_ROWS)
        n = 0
        replayed = Batch()
        while start < self.checkpoint:
            rows = self.spool.read(start, self.batch_rows, upto=self.checkpoint)
            if not rows:
                break
            self.core.feed(self._messages(rows), Batch(), replayed, replay=True)
            self.core.end_batch(Batch(), replayed)
            replayed = Batch()
            start = rows[-1].seq
            n += len(rows)
        return n

    def step(self) -> int:
        """Process one batch (up to `batch_rows` messages); returns the number of messages consumed.
        The checkpoint is a message position, so a spool row taken in part is finished next time."""
        rows = self.spool.read(self.position, self.batch_rows)
        if not rows:
            self.committer.flush()  # nothing new: what was read is stored when step() says 0
            return 0
        batch = Batch()
        self.core.feed(self._messages(rows), batch, Batch(), replay=False)
        self.core.end_batch(batch)
        batch.checkpoint = self.position = rows[-1].seq
        done = partial(self._stored, rows[-1].seq, bool(batch.alerts))
        self.committer.submit(batch, done)  # written while the next is detected
        self._dirty = True
        if time.monotonic() - self._last_save > 5:
            self.save_state()
        return len(rows)

    def _stored(self, seq: int | None, alerts: bool) -> None:
        if seq is not None:
            self.checkpoint = seq
        if alerts and self.alerts_stored is not None:
            self.alerts_stored()

    def release_pending(self) -> None:
        """Nothing came for a while: 4776s still waiting for their 8004 go on without a server, so
        a quiet stream cannot hold an attack's last attempts back."""
        self._last_input = 0.0
        batch = Batch()
        self.core.release(batch)
        self.core.end_batch(batch)
        if batch.alerts or batch.activities:
            self.committer.submit(batch, partial(self._stored, None, bool(batch.alerts)))

    def save_state(self) -> None:
        """Baseline and counters to the store (every few seconds, and when idle); old spool rows go.
        The batch being written is waited for: the saved baseline never runs ahead of the stored
        checkpoint (a restart would learn that batch twice)."""
        self.committer.flush()
        self.store.save_baseline(self.core.baseline)
        self.store.save_counters(COUNTERS, self.snapshot())
        self._last_save = time.monotonic()
        self._dirty = False
        horizon = self.checkpoint - REPLAY_ROWS
        if horizon > 0:
            self.spool.trim(horizon)

    def snapshot(self) -> dict:
        return {**self.counters, "by_event": {str(k): v for k, v in self.core.by_event.items()},
                "by_alert": dict(self.core.by_alert), "checkpoint": self.checkpoint,
                "lag": self.spool.depth(self.checkpoint), "partitions": 1,
                "settings_version": self.settings.version, "saved_at": time.time()}

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
                if self._last_input and time.monotonic() - self._last_input > 2 * self.core.join_window:
                    self.release_pending()
                if self._dirty and time.monotonic() - self._last_save > 0.5:
                    self.save_state()
                time.sleep(idle_sleep)
        batch = self.core.finish()
        if batch.alerts or batch.activities:
            self.committer.submit(batch, partial(self._stored, None, bool(batch.alerts)))
        self.save_state()
        self.committer.close()
