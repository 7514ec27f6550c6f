"""What every detector shares: sliding windows, incidents that grow, and the learning clock."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterable
from datetime import datetime
from operator import attrgetter
from typing import NamedTuple, Protocol, runtime_checkable

from ..activities import Activity, AuthActivity
from ..alerts import ALERT_TYPES, Alert, Evidence
from ..config import Detection
from ..lru import MAX_KEYS, PERIOD, Lru, in_window

__all__ = ["MAX_KEYS", "Configurable", "Detector", "Incidents", "LearningClock", "Lru", "add_unique", "in_window",
           "last_time", "note_auth", "plural", "trim"]


class Detector(Protocol):
    def on_activity(self, act: Activity) -> Iterable[Alert]: ...


@runtime_checkable
class Configurable(Protocol):
    """A detector that keeps its own form of a run-time list (a set, a compiled matcher): it takes
    the engine's updated settings through `configure` (DetectionEngine.update_lists)."""

    def configure(self, cfg: Detection) -> None: ...


def last_time(window: deque) -> float:
    """The time of a (time, ...) window's newest entry; an empty window is idle since ever."""
    return window[-1][0] if window else float("-inf")


def trim(window: deque, now: float, span: float) -> None:
    """Drop (time, ...) entries older than `span` seconds before `now`, and those of another period:
    more than a day (or `span`) after it, left at the front when the input went back in time (`hunt`
    reading last year's log after this year's would otherwise count both years in one window)."""
    while window and not in_window(window[0][0], now, span):
        window.popleft()


class Incidents:
    """Open alerts by (type, key). Activity within `gap` of an alert's end grows that alert."""

    def __init__(self, cfg: Detection, clock: Callable[[], float] = time.monotonic) -> None:
        self.gap = cfg.incident_gap
        self.max_evidence = cfg.max_evidence
        # An alert must stay findable while its attack goes on even when events of other periods
        # come in between (two logs of different years sent at once: the later one's event time
        # would make the other's attack look idle), so it is not expired by event time like the
        # windows. It is forgotten once no activity grew it for `gap` plus a day of the clock's
        # (wall) time: a sensor running for months would otherwise keep every alert it raised,
        # evidence and all, up to the key cap. `hunt` reads faster than that and keeps them all.
        self._open: Lru[tuple[str, str], _Open] = Lru()
        self._clock = clock
        self.keep = self.gap + PERIOD

    def current(self, type_: str, key: str, t: datetime) -> Alert | None:
        o = self._open.get((type_, key))
        if o is not None and (t - o.alert.end).total_seconds() <= self.gap:
            return o.alert
        return None

    def raise_or_grow(self, type_: str, key: str, t: datetime, evidence: Iterable[Evidence], *,
                      start: datetime | None = None, learning: bool = False) -> Alert:
        """The open alert for this incident, grown by `evidence`, or a new one."""
        now = self._clock()
        a = self.current(type_, key, t)
        if a is None:
            old = self._open.get((type_, key))
            if old is not None and old.alert.start == (start or t):  # same incident, same id: grow it, never a twin
                a = old.alert
        if a is None:
            at = ALERT_TYPES[type_]
            a = Alert(type=type_, key=key, title=at.title, description="", severity=at.severity,
                      technique=at.technique, start=start or t, end=t, count=0, learning=learning)
            self._forget_idle(now)
            self._open.put((type_, key), _Open(a, now))
        else:
            a.revision += 1
            if t > a.end:
                a.end = t
            self._open.put((type_, key), _Open(a, now))  # the most recently grown: idle ones sit in front
        for e in evidence:
            if len(a.evidence) < self.max_evidence:
                a.evidence.append(e)
        return a

    def _forget_idle(self, now: float) -> None:
        """Open alerts no activity grew for `keep` seconds of the clock (drop_idle adds the PERIOD to
        the gap), oldest first: one look when none is idle."""
        self._open.drop_idle(now - self.gap, _grown)


class _Open(NamedTuple):
    alert: Alert
    grown: float  # the clock's time of its last growth


_grown = attrgetter("grown")


def note_auth(a: Alert, act: AuthActivity, source: str) -> None:
    """What every authentication-based alert records of an attempt: protocol(s), source, DC."""
    a.protocol = act.protocol if a.protocol in (None, act.protocol) else "Kerberos, NTLM"
    add_unique(a.hosts, source)
    add_unique(a.dcs, act.reporter)
    a.details["source"] = source


def add_unique(items: list[str], value: str, cap: int = 100) -> None:
    if value and value not in items and len(items) < cap:
        items.append(value)


def plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


class LearningClock:
    """When learning started, per scope (e.g. per DC); an alert raised while learning says so."""

    def __init__(self, started: dict[str, float] | None = None) -> None:
        self.started: dict[str, float] = started if started is not None else {}

    def learning(self, scope: str, t: datetime, period: float) -> bool:
        ts = t.timestamp()
        first = self.started.setdefault(scope, ts)
        if ts < first:
            self.started[scope] = first = ts
        return ts - first < period
