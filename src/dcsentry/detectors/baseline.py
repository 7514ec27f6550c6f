"""What the detectors learn about a domain: who authenticates from where, who changes which
group, which services appear where, and when learning started. Plain data, so the store can
save it and a restarted sensor picks up where it was."""

from __future__ import annotations

from typing import Any, TypeVar

import msgspec

from .base import LearningClock, Lru

_CAP = 500_000
AUTH_FORGET = 30 * 86400.0  # an (account, source) pair with no success for this long is no longer "usual"
R = TypeVar("R", bound=msgspec.Struct)


class Baseline:
    def __init__(self) -> None:
        self.auth_from: Lru[tuple[str, str], float] = Lru(_CAP)  # (account, source) -> last success time
        self.group_changes: Lru[tuple[str, str], int] = Lru(_CAP)  # (actor, group) -> times seen
        self.services: Lru[tuple[str, str], str] = Lru(_CAP)  # (host, service name) -> image path
        self.clock = LearningClock()
        self.tables: dict[str, Lru[Any, Any]] = {}  # what the DC-log detectors learn, by name (see table())
        self._row_types: dict[str, type] = {}  # table name -> its row type (see rows())

    def table(self, name: str, cap: int = _CAP) -> Lru[Any, Any]:
        """A named table of learned facts (key -> JSON-able value), saved and restored with the rest.
        Keys are strings or tuples of strings (restored as tuples)."""
        t = self.tables.get(name)
        if t is None:
            t = self.tables[name] = Lru(cap)
        return t

    def rows(self, name: str, row: type[R], cap: int = _CAP) -> Lru[Any, R]:
        """A table whose values are `row`s: msgspec Structs declared `array_like=True`, so they are
        saved as the JSON arrays (`[first, last, ...]`) a table of plain lists was saved as, and a
        restored table's arrays become `row`s again here, on first use."""
        t = self.table(name, cap)
        if self._row_types.get(name) is not row:
            for k in list(t):
                v = t[k]
                if not isinstance(v, row):
                    t[k] = msgspec.convert(v, row)
            self._row_types[name] = row
        return t

    def learned_auth(self, account: str, source: str) -> bool:
        return (account, source) in self.auth_from

    def learn_auth(self, account: str, source: str, t: float) -> None:
        self.auth_from.put((account, source), t)
        self.auth_from.drop_idle(t - AUTH_FORGET, float)

    def learned_group_change(self, actor: str, group: str) -> bool:
        return (actor, group) in self.group_changes

    def learn_group_change(self, actor: str, group: str) -> None:
        n = self.group_changes.touch((actor, group), lambda: 0)
        self.group_changes[(actor, group)] = n + 1

    def dump(self) -> bytes:
        return msgspec.json.encode({
            "auth_from": [[a, s, t] for (a, s), t in self.auth_from.items()],
            "group_changes": [[a, g, n] for (a, g), n in self.group_changes.items()],
            "services": [[h, n, i] for (h, n), i in self.services.items()],
            "learning_started": self.clock.started,
            "tables": {n: [[list(k) if isinstance(k, tuple) else k, v] for k, v in t.items()]
                       for n, t in self.tables.items()},
        })

    @classmethod
    def load(cls, raw: bytes) -> Baseline:
        b = cls()
        d = msgspec.json.decode(raw)
        for a, s, t in d.get("auth_from", []):
            b.auth_from[(a, s)] = t
        for a, g, n in d.get("group_changes", []):
            b.group_changes[(a, g)] = n
        for h, n, i in d.get("services", []):
            b.services[(h, n)] = i
        b.clock.started.update(d.get("learning_started", {}))
        for name, rows in d.get("tables", {}).items():
            t = b.table(name)
            for k, v in rows:
                t[tuple(k) if isinstance(k, list) else k] = v
        return b
