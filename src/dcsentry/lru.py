"""A dict bounded by forgetting its least recently touched keys: the state of detectors, of the
activity readers' context and of incident linking stays bounded however long a sensor runs."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from typing import TypeVar

MAX_KEYS = 200_000  # the default cap on tracked keys (sources, accounts): oldest are forgotten

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
