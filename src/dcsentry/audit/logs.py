"""What a DC's own logs prove: which required events it actually sends, per DC.

The "missing" decision is `requirements.requirement_states`, the same function behind the
service's "events missing" health alerts: a DC that has sent none of a required event for at least
that requirement's allowance (a day for 4776 and 8004, 14 days for group changes, 30 for 7045), or
that sent 4768/4769 (4662/5136) and then none for a day (a week) while it kept sending others.
Over logs, "now" is the DC's last event and "first seen" its first one; a shorter span cannot
tell a quiet DC from a misconfigured one, and says so ("too early").
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from ..catalogue import spec
from ..model import WindowsEvent
from .requirements import health_key
from .silence import RequirementState, Seen, requirement_states

__all__ = ["DcLog", "LogEvidence", "RequirementState", "is_failure"]

ALWAYS_FAILURE = frozenset({4771, 4625})


def is_failure(ev: WindowsEvent) -> bool:
    """Audit Failure: from Keywords when the input has them, else from what the event is."""
    if ev.keywords:
        return ev.is_failure_audit
    if ev.event_id in ALWAYS_FAILURE:
        return True
    if ev.event_id == 4776:
        status = ev.data.get("Status", "0x0").strip().lower()
        return status not in ("0x0", "0", "")
    return False


@dataclass
class DcLog:
    dc: str
    first: float
    last: float
    seen: Counter = field(default_factory=Counter)  # event id (8005/8006 as 8004) -> count
    last_of: dict[int, float] = field(default_factory=dict)  # event id -> time of its last one


class LogEvidence:
    def __init__(self) -> None:
        self.dcs: dict[str, DcLog] = {}
        self._outcomes: dict[int, list[int]] = {}
        self._where: dict[int, set[str]] = {}
        self.records = 0

    def add(self, ev: WindowsEvent) -> None:
        self.records += 1
        key = health_key(ev.event_id, ev.channel, ev.computer)
        if key is None:
            return
        dc, eid = key
        t = ev.time.timestamp()
        d = self.dcs.get(dc)
        if d is None:
            d = self.dcs[dc] = DcLog(dc, t, t)
        d.first, d.last = min(d.first, t), max(d.last, t)
        d.seen[eid] += 1
        d.last_of[eid] = max(d.last_of.get(eid, t), t)
        if spec(ev.event_id) is not None or eid == 8004:
            o = self._outcomes.setdefault(eid, [0, 0])
            o[1 if is_failure(ev) else 0] += 1
            self._where.setdefault(eid, set()).add(dc)

    def extend(self, events: Iterable[WindowsEvent]) -> LogEvidence:
        for ev in events:
            self.add(ev)
        return self

    def outcomes(self, event_id: int) -> tuple[int, int]:
        s, f = self._outcomes.get(event_id, (0, 0))
        return s, f

    def dcs_with(self, event_id: int) -> list[str]:
        return sorted(self._where.get(event_id, ()))

    def states(self, dc: str, scale: float = 1.0) -> list[RequirementState]:
        """Each requirement's state for one DC, "now" being its last event."""
        d = self.dcs[dc]
        seen = {e: Seen(n, d.last_of[e]) for e, n in d.seen.items()}
        return requirement_states(seen, d.first, d.last, d.last, scale)

    def missing(self, scale: float = 1.0) -> dict[str, list[RequirementState]]:
        """The required settings each DC's logs show missing (what makes `audit --events` exit 1)."""
        return {dc: [s for s in self.states(dc, scale) if s.status == "missing" and s.requirement.required]
                for dc in sorted(self.dcs)}
