"""The "events missing" states of one DC, shared by the service's health alerts
(runtime/health.py), the console's DC health page (web/readiness.py) and `audit --events`
(audit/logs.py): which requirement a DC is held to, and whether its events came, never came, or
came and stopped.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from .requirements import ALL_REQUIREMENTS, Requirement

CA_IDS = frozenset(e for r in ALL_REQUIREMENTS if r.scope == "ca" for e in r.event_ids)
# Written only by domain controllers: a host that sent one of these is a DC, whatever else it sends.
DC_ONLY_IDS = frozenset({4768, 4769, 4771, 8004, 4662, 5136, 5137, 5141, 4741, 4742, 4743, 4794, 4706,
                         4865, 4765, 4766, 4728, 4729, 4756, 4757})


def is_ca_only(ids: Iterable[int]) -> bool:
    """A certification authority that is no DC: it sent CA events and nothing only a DC writes. The
    DC requirements (4776, 8004 ...) do not apply to it, the CA ones do."""
    ids = set(ids)
    return bool(ids & CA_IDS) and not ids & DC_ONLY_IDS


@dataclass(frozen=True, slots=True)
class Seen:
    """What a DC sent of one event id: how many, and when the last one came."""

    count: int
    last: float


@dataclass(frozen=True, slots=True)
class RequirementState:
    requirement: Requirement
    status: str  # seen | missing | too-early | not-seen
    count: int
    allowed: float  # seconds of silence allowed
    since: float = 0.0  # missing: when the silence began (first seen, or the last of these events)


def requirement_states(seen: Mapping[int, Seen], first: float, last: float, now: float,
                       scale: float = 1.0) -> list[RequirementState]:
    """Each requirement's state for one DC (first/last: when it was first and last heard; now: the
    clock, the last event over logs). "absent" requirements are missing when none of their events
    came over their whole allowance; "stopped" ones when they came, then none for the allowance
    while the DC kept sending other events; the rest are only seen or not-seen. A CA that is no DC
    is held to the CA requirements only, a DC to the others."""
    ca = is_ca_only(seen)
    out = []
    for r in ALL_REQUIREMENTS:
        if (r.scope == "ca") != ca:
            continue
        got = [seen[e] for e in r.event_ids if e in seen]
        n = sum(g.count for g in got)
        allowed = r.missing_after * scale
        if r.health == "stopped" and got:
            latest = max(g.last for g in got)
            stopped = last - latest >= allowed and now - latest >= allowed
            out.append(RequirementState(r, "missing" if stopped else "seen", n, allowed, latest))
        elif n:
            out.append(RequirementState(r, "seen", n, allowed))
        elif r.health == "absent":
            late = now - first >= allowed
            out.append(RequirementState(r, "missing" if late else "too-early", 0, allowed, first))
        else:
            out.append(RequirementState(r, "not-seen", 0, allowed))
    return out


