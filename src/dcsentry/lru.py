"""A dict bounded by forgetting its least recently touched keys: the state of detectors, of the
activity readers' context and of incident linking stays bounded however long a sensor runs."""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Callable
from typing import Generic, TypeVar

MAX_KEYS = 200_000  # the default cap on tracked keys (sources, accounts): oldest are forgotten
# Event time going back by more than this starts another period: `hunt` reading last year's log after
# this year's. Windows and joins let the other period's entries go (detectors/base.trim, the builder)
# rather than count both together. A day: a DC's backlog after an outage is not another period.
PERIOD = 86400.0


def in_window(t: float, now: float, span: float) -> bool:
    """`t` is at most `span` before `now` and not from a later period (at most max(span, PERIOD)
    after it): what a window kept from before a jump back in time fails this and goes."""
    return now - span <= t <= now + max(span, PERIOD)

K = TypeVar("K")
V = TypeVar("V")


class Lru(OrderedDict[K, V]):
    """An OrderedDict that forgets its least recently touched keys past `cap`. Plain
    `lru[key] = value` neither refreshes an existing key nor enforces the cap: `touch` (get or
    make) and `put` (set) do both."""

    def __init__(self, cap: int = MAX_KEYS) -> None:
        super().__init__()
        self.cap = cap

    def touch(self, key: K, make: Callable[[], V]) -> V:
        """The value of `key` (now the most recently touched), made by `make()` when absent."""
        try:
            value = self[key]
            self.move_to_end(key)
        except KeyError:
            value = self[key] = make()
            if len(self) > self.cap:
                self.popitem(last=False)
        return value

    def put(self, key: K, value: V) -> None:
        """Set `key` to `value`, now the most recently touched; the oldest key goes past `cap`."""
        self[key] = value
        self.move_to_end(key)
        if len(self) > self.cap:
            self.popitem(last=False)

    def drop_idle(self, before: float, last: Callable[[V], float]) -> list[K]:
        """Forget keys whose value was last active (`last(value)`, event time) more than a PERIOD
        before `before` (the start of the window that reads them), from the least recently touched
        on, stopping at the first still active. Keys are touched as events come, so the idle ones sit
        at the front: this costs one look when nothing is idle. Without it a key seen once stays
        until the cap pushes it out, which for per-key windows is hours of growth. The PERIOD of
        slack keeps late events working: a DC's backlog hours old, sent while the others are live,
        still finds its windows. Returns the keys forgotten (tables beside this one forget them too)."""
        gone: list[K] = []
        before -= PERIOD
        while self:
            key = next(iter(self))
            if last(self[key]) >= before:
                break
            del self[key]
            gone.append(key)
        return gone


class RecentSet(Generic[K]):
    """The last `cap` distinct keys added, the oldest forgotten first. For tables only ever asked
    "seen it?" and never refreshed (message ids of the duplicate check): a set and a queue of the
    order they came in take half the memory of an Lru of the same keys, which keeps a linked-list
    node per key (~45 MB for 200,000 message ids in the memory soak, ~24 MB this way)."""

    __slots__ = ("cap", "_keys", "_order")

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self._keys: set[K] = set()
        self._order: deque[K] = deque()

    def __contains__(self, key: object) -> bool:
        return key in self._keys

    def __len__(self) -> int:
        return len(self._keys)

    def add(self, key: K) -> None:
        if key in self._keys:
            return
        self._keys.add(key)
        self._order.append(key)
        if len(self._order) > self.cap:
            self._keys.discard(self._order.popleft())
