"""Synthetic domain-controller traffic with attacks mixed in, and the ground truth to score against.

Why: no public recording has a week of a real domain's 8004s, a 4757, or a 300-account NTLM spray;
false-positive rates need lots of ordinary traffic; load tests need millions of events; the README
needs a small sample to hunt on. Everything is seeded (same seed, same bytes) and streamed slice by
slice, so memory stays flat however many hours are asked for.

Beyond authentication, the DCs' wider Security log is there (reference/dc-log-alerts.md): replication
(4662), directory changes (5136/5137/5141), account management (4724/4738/4741/4742/4781/4765/4794),
policy and trusts (4719/4706), cleared logs (1102/104 with UserData) and the CA's 4885-4887, with the
everyday look-alikes of each detection drawn from a fixed population (dctraffic.py) and one attack of
each DC-log alert type, multi-step chains included (dcattacks.py).

    events, labels = generate(seed=1, hours=24, users=200, dcs=2, attacks="all")
    for ev in events: ...            # WindowsEvent, sorted by time, EventRecordIDs per DC and channel
    labels[0].to_dict()              # {"id", "type", "variant", "start", "end", "entities", ...}
"""

from __future__ import annotations

import heapq
import json
import random
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta

from ..model import WindowsEvent
from .attacks import ATTACK_TYPES, Label, plan_attacks, select
from .domain import EPOCH, HOUR_US, US, Domain, build_domain
from .render import FORMATS, render, write_events
from .traffic import Everyday, Stamped

__all__ = ["ATTACK_TYPES", "DEFAULT_START", "FORMATS", "Label", "build_domain", "demo_sample", "generate",
           "labels_document", "render", "write_events"]

DEFAULT_START = datetime(2024, 3, 4, tzinfo=UTC)  # a Monday, midnight UTC
SLICE_US = 60 * US  # generation step: one minute of traffic is in memory at a time


def _us(t: datetime) -> int:
    if t.tzinfo is None:
        t = t.replace(tzinfo=UTC)
    return (t - EPOCH) // timedelta(microseconds=1)


def generate(seed: int = 1, hours: float = 24.0, users: int = 200, dcs: int = 2,
             attacks: str | Iterable[str] | None = "all", start: datetime | None = None,
             rate: float | None = None, compact: bool = False,
             attacks_from: datetime | None = None) -> tuple[Iterator[WindowsEvent], list[Label]]:
    """A time-sorted stream of one domain's DC events and the labels of the attacks injected into it.

    `attacks`: "all", "none", or alert types (comma string or list). `rate`: average everyday events
    per simulated second (default: what `users` people produce). `compact`: demo-sized attacks.
    `attacks_from`: lay the attacks out from then on only (multi-day runs whose first days a
    detector learns on).
    The labels are complete on return except `records`, which fill in as the stream is consumed.
    The everyday traffic does not depend on `attacks`: a run with "none" is the background of "all".
    """
    if hours <= 0:
        raise ValueError("hours must be positive")
    d = build_domain(seed, users, dcs)
    t0 = _us(start or DEFAULT_START)
    t1 = t0 + int(hours * HOUR_US)
    a0 = min(max(t0, _us(attacks_from)), t1 - 1) if attacks_from else t0
    attack_events, labels = plan_attacks(d, seed, a0, t1, select(attacks), compact)
    everyday = Everyday(d, seed)
    if rate is not None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        everyday.scale = rate / everyday.expected_per_second(t0, t1)
    return _stream(everyday, attack_events, labels, t0, t1, seed), labels


def _stream(everyday: Everyday, attack_events: list[Stamped], labels: list[Label], t0: int, t1: int,
            seed: int) -> Iterator[WindowsEvent]:
    """Merge everyday slices and the attack events by time; number records per (DC, channel)."""
    by_id = {lb.id: lb for lb in labels}
    rng = random.Random(f"dcsentry-synth:{seed}:records")
    next_record: dict[tuple[str, str], int] = {}
    heap: list[tuple[int, int, WindowsEvent]] = []
    seq = ai = 0
    t = t0
    while t < t1:
        te = min(t + SLICE_US, t1)
        for us, ev in everyday.slice(t, te):  # actions may run past te: the heap holds them back
            heapq.heappush(heap, (us, seq, ev))
            seq += 1
        while ai < len(attack_events) and attack_events[ai][0] < te:
            heapq.heappush(heap, (attack_events[ai][0], seq, attack_events[ai][1]))
            seq += 1
            ai += 1
        while heap and heap[0][0] < te:
            ev = heapq.heappop(heap)[2]
            key = (ev.computer, ev.channel)
            rid = next_record.get(key) or rng.randint(10_000, 3_000_000)
            next_record[key] = rid + 1
            ev.record_id = rid
            if ev.origin is not None and ev.origin.member in by_id:
                by_id[ev.origin.member].records.append((ev.computer, ev.channel, rid))
            yield ev
        t = te
    # everyday actions that began before the end but would finish after it are cut off


def labels_document(labels: list[Label], domain: Domain, **params: object) -> dict:
    """The labels file: the run's parameters, the domain facts a detector needs, and the labels."""
    return {"generator": "dcsentry synth", "params": params, "domain": domain.summary(),
            "labels": [lb.to_dict() for lb in labels]}


def demo_sample(path: str, seed: int = 7, labels_path: str | None = None) -> list[Label]:
    """Write a small (< 1 MB, ~800 events) XML sample: 45 office minutes of a 20-user domain with every
    attack type in it (demo-sized: just over the default detection thresholds).

    Meant for the README's first `dcsentry hunt`; the labels say what it should find.
    """
    params = {"seed": seed, "hours": 0.75, "users": 20, "dcs": 2, "attacks": "all",
              "start": DEFAULT_START + timedelta(hours=9), "compact": True}
    events, labels = generate(**params)  # type: ignore[arg-type]
    with open(path, "wb") as out:
        write_events(events, out, "xml")
    if labels_path:
        shown = {**params, "start": (DEFAULT_START + timedelta(hours=9)).isoformat()}
        doc = labels_document(labels, build_domain(seed, 20, 2), **shown)
        with open(labels_path, "w", encoding="utf-8") as fh:
            json.dump(doc, fh, indent=1)
            fh.write("\n")
    return labels
