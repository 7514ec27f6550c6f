"""Shared by the test_synth_* files: the generated runs (made once per test session) and the
comparisons and detection helpers the synthetic traffic generator's tests use.
"""

from __future__ import annotations

import io
from collections import defaultdict
from datetime import timedelta
from functools import cache

from dcsentry.config import Detection
from dcsentry.model import WindowsEvent
from dcsentry.synth import DEFAULT_START, generate, write_events

FIELDS = ("event_id", "provider", "channel", "computer", "time", "record_id", "data", "keywords", "user_sid",
          "level", "task")
MORNING = DEFAULT_START + timedelta(hours=8)


@cache
def small_run() -> tuple[tuple[WindowsEvent, ...], tuple]:
    """Three office hours of a 40-user domain with every attack (compact), materialised once."""
    events, labels = generate(seed=3, hours=3, users=40, start=MORNING, compact=True)
    return tuple(events), tuple(labels)


@cache
def day_run(attacks: str) -> tuple[tuple[WindowsEvent, ...], tuple]:
    events, labels = generate(seed=11, hours=24, users=200, dcs=2, attacks=attacks)
    return tuple(events), tuple(labels)


def assert_same(got: list[WindowsEvent], want: tuple[WindowsEvent, ...], fields: tuple[str, ...] = FIELDS) -> None:
    assert len(got) == len(want)
    for i, (a, b) in enumerate(zip(got, want)):
        for f in fields:
            got_, want_ = getattr(a, f), getattr(b, f)
            assert got_ == want_, f"event #{i} ({b.event_id}) {f}: {got_!r} != {want_!r}"


def as_bytes(events, fmt: str) -> bytes:
    buf = io.BytesIO()
    write_events(events, buf, fmt)
    return buf.getvalue()



DC_LOG_IDS = {4662, 5136, 5137, 5141, 4738, 4741, 4742, 4781, 4794, 4765, 4719, 4706, 1102, 104, 4885, 4886, 4887}
GET_CHANGES_ALL = "1131f6ad-9c07-11d1-f79f-00c04fc2dcd2"


def _by_label(events) -> dict[str, list[WindowsEvent]]:
    out: dict[str, list[WindowsEvent]] = defaultdict(list)
    for e in events:
        if e.origin is not None and e.origin.member:
            out[e.origin.member].append(e)
    return out



def _alerts_for(events, seed: int, users: int):
    """Feed a generated stream to the detection engine, configured from the generator's domain."""
    from dcsentry.detectors.engine import DetectionEngine
    from dcsentry.synth import build_domain

    d = build_domain(seed, users, 2)
    cfg = Detection(honeytokens=[a.sam for a in d.honeytokens])
    cfg.replication_allowed = cfg.dcsync.allowed = [f"{d.msol.sam}={d.aadc.ip}"]
    engine = DetectionEngine(cfg)
    for e in events:
        engine.feed(e)
    engine.finish()
    return list(engine.alerts.values())


def _missed(labels, alerts) -> list[str]:
    def hit(a, lb) -> bool:
        kind = "adcs-config-change" if a.type == "health:ca-audit-filter" else a.type.removeprefix("health:")
        return kind in (lb.type, *lb.also) and a.start <= lb.end and lb.start <= a.end

    return [f"{lb.id} ({lb.variant})" for lb in labels if not any(hit(a, lb) for a in alerts)]

