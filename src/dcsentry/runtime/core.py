"""The detection core: one partition's messages -> detection -> a store Batch, in either mode.

The single node has one partition (its spool), a distributed detect worker one core per partition
it owns (its stream subject); both hand their messages here in order, with the same flags:

- `replay`: a message already processed before a restart or a takeover, fed again only to rebuild
  the detectors' state (nothing of it is stored or counted again; alert updates are idempotent);
- duplicates are dropped by message id (routing.msg_id: the event's identity in its trust class)
  among the last SEEN_IDS messages, the replayed ones included, so a re-sent copy is fed once;
- an honeytoken copy (only with several partitions) goes to the token engine alone;
- an intake alert (a sender check) is upserted by id in the batch.

Between batches the owner calls `sync_settings` (run-time lists), `release` when the input is
quiet (4776s waiting for their 8004) and saves `baseline` every few seconds.
"""

from __future__ import annotations

import copy
import dataclasses
from collections import Counter
from collections.abc import Iterable
from typing import TYPE_CHECKING

import msgspec

from ..config import Detection
from ..detectors.baseline import Baseline
from ..detectors.engine import DetectionEngine
from ..detectors.honeytoken import HoneytokenDetector
from ..lru import RecentSet
from ..store.rows import Batch
from .routing import ALERT, decode, decode_alert, msg_id
from .settings import Applied, SettingsWatch
from .step import DetectionStep

if TYPE_CHECKING:
    from ..detectors.sigma import SigmaRuleset

SEEN_IDS = 200_000  # message ids remembered (duplicates past the stream's window, re-sent WEF batches)


def token_engine(detection: Detection) -> DetectionEngine:
    """Only the honeytoken detector: it sees the flagged copies of honeytoken events. Its own copy
    of the settings, which run-time changes update in place. No Sigma rules (not even compiled):
    the main engine runs them on the original event, not twice."""
    engine = DetectionEngine(dataclasses.replace(copy.deepcopy(detection), sigma=[]), Baseline(), keep_alerts=False)
    engine.detectors = [d for d in engine.detectors if isinstance(d, HoneytokenDetector)]
    return engine


class DetectionCore:
    def __init__(self, detection: Detection, baseline: Baseline, *, partitions: int = 1,
                 settings: SettingsWatch | None = None, sigma: SigmaRuleset | None = None,
                 by_event: Counter | None = None, by_alert: Counter | None = None,
                 counters: Counter | None = None) -> None:
        """`partitions` > 1: honeytoken alerts come from the token engine, fed the routed copies
        (with one partition every event reaches the main engine, which keeps the list)."""
        split = partitions > 1
        main_cfg = dataclasses.replace(detection, honeytokens=[]) if split else detection
        self.main = DetectionStep(DetectionEngine(main_cfg, baseline, keep_alerts=False, sigma=sigma))
        self.tokens = DetectionStep(token_engine(detection)) if split else None
        self.steps = [self.main] if self.tokens is None else [self.main, self.tokens]
        self.by_event: Counter = by_event if by_event is not None else Counter()
        self.by_alert: Counter = by_alert if by_alert is not None else Counter()
        for step in self.steps:
            step.by_event, step.by_alert = self.by_event, self.by_alert
        self.counters: Counter = counters if counters is not None else Counter()
        self.applied = [Applied(settings, self.main.engine, tokens=not split)]
        if self.tokens is not None:
            self.applied.append(Applied(settings, self.tokens.engine))
        self.seen: RecentSet[str] = RecentSet(SEEN_IDS)

    @property
    def engine(self) -> DetectionEngine:
        return self.main.engine

    @property
    def baseline(self) -> Baseline:
        return self.main.engine.baseline

    def sync_settings(self) -> bool:
        """Apply what the settings watch read last, between batches (never mid-batch)."""
        changed = False
        for a in self.applied:
            changed = a.sync() or changed
        return changed

    def feed(self, messages: Iterable[tuple[str, bytes]], live: Batch, replayed: Batch, replay: bool) -> int:
        """(kind, data) of consecutive messages, all replayed or all live; returns how many were
        new and fed. Live results go into `live`; a replay's alert updates into `replayed`."""
        c, seen = self.counters, self.seen
        target = replayed if replay else live
        fed = 0
        for kind, data in messages:
            if kind == ALERT:
                try:
                    alert = decode_alert(data)
                except (msgspec.DecodeError, msgspec.ValidationError):
                    c["bad_messages"] += 1
                    continue
                if not replay:  # replayed: its state is in the store already
                    live.alerts[alert.id] = alert
                continue
            try:
                env = decode(data)
            except (msgspec.DecodeError, msgspec.ValidationError):
                c["bad_messages"] += 1
                continue
            ev = env.event
            mid = msg_id(ev, env.trusted, env.token)
            if mid in seen:  # a re-sent copy: fed, stored and counted once
                if not replay:
                    c["wef_duplicates" if env.wef else "duplicates"] += 1
                continue
            seen.add(mid)
            fed += 1
            if replay:
                c["replayed"] += 1
            if env.dc:
                self.main.engine.builder.dcs.add(ev.computer.split(".", 1)[0].upper())
            if env.token and self.tokens is not None:
                self.tokens.process(target, ev, env.received_at, store=False)
                continue
            if not replay:
                self.by_event[ev.event_id] += 1
            self.main.process(target, ev, env.received_at, store=not replay, trusted=env.trusted)
        return fed

    def end_batch(self, live: Batch, replayed: Batch | None = None) -> None:
        """Describe what changed; count the alerts raised for the first time (a replay's only remembered)."""
        for step in self.steps:
            step.engine.describe_pending()
        if replayed is not None:
            self.main.tally(replayed, count=False)
        self.main.tally(live)

    def release(self, batch: Batch) -> None:
        """Quiet input: 4776s still waiting for their 8004 go on without a server."""
        for step in self.steps:
            step.release(batch)

    def finish(self) -> Batch:
        """Stopping: what the engines still hold (the 4776s waiting for their 8004), described."""
        batch = Batch()
        self.release(batch)
        for step in self.steps:
            step.engine.describe_pending()
        return batch

    @property
    def join_window(self) -> float:
        return self.main.engine.builder.join_window
