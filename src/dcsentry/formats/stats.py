"""Counters and the one-line problem reports every reader shares.

Bad input never raises out of a reader: it becomes a `Problem` here (named file, offset or line,
reason), is counted, and reading goes on.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from ..model import EPOCH, Origin, WindowsEvent

_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")


def _printable(s: str) -> str:
    """Problems are printed one per line to a terminal: line breaks and escape sequences that came
    from the input (lxml messages quote it; file names may hold anything) are shown, not obeyed."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", s) if _CONTROL.search(s) else s


@dataclass(frozen=True, slots=True)
class Problem:
    origin: Origin
    reason: str
    kind: str  # short counter key: "evtx-record", "xml", "json", "format", "io", ...

    def __str__(self) -> str:
        return _printable(f"{self.origin}: {self.reason}")


@dataclass
class ReadStats:
    """What a read saw: files, records, events per id, and what was skipped and why."""

    files: int = 0
    records: int = 0
    by_id: Counter = field(default_factory=Counter)
    skipped: Counter = field(default_factory=Counter)
    warnings: Counter = field(default_factory=Counter)  # events kept, but with something missing
    formats: Counter = field(default_factory=Counter)
    problems_kept: int = 50
    problems: list[Problem] = field(default_factory=list)
    on_problem: Callable[[Problem], None] | None = None

    def problem(self, origin: Origin, reason: str, kind: str) -> None:
        if "\n" in reason:  # lxml and the evtx parser put line breaks in some messages
            reason = " ".join(reason.split())
        p = Problem(origin, reason, kind)
        self.skipped[kind] += 1
        if len(self.problems) < self.problems_kept:
            self.problems.append(p)
        if self.on_problem is not None:
            self.on_problem(p)

    def warn(self, origin: Origin | None, reason: str, kind: str) -> None:
        """Like `problem`, for an event that is kept: reported and counted apart from the skipped."""
        p = Problem(origin or Origin("?"), reason, kind)
        self.warnings[kind] += 1
        if len(self.problems) < self.problems_kept:
            self.problems.append(p)
        if self.on_problem is not None:
            self.on_problem(p)

    def saw(self, ev: WindowsEvent) -> None:
        """Count one event read. Readers fall back to 1970-01-01 when an event has no readable
        time; that is kept (the event is valid otherwise) but said, since time windows misjudge it."""
        self.records += 1
        self.by_id[ev.event_id] += 1
        if ev.time == EPOCH:
            self.warn(ev.origin, "event time missing or unreadable: kept as 1970-01-01T00:00:00Z", "time")

    def counts(self) -> dict:
        """The counters as plain data (what a worker process sends back)."""
        return {"files": self.files, "records": self.records, "by_id": dict(self.by_id),
                "skipped": dict(self.skipped), "warnings": dict(self.warnings), "formats": dict(self.formats)}

    def add_counts(self, counts: dict) -> None:
        self.files += counts["files"]
        self.records += counts["records"]
        self.by_id.update(counts["by_id"])
        self.skipped.update(counts["skipped"])
        self.warnings.update(counts["warnings"])
        self.formats.update(counts["formats"])

    @property
    def skipped_total(self) -> int:
        return sum(self.skipped.values())

    def merge(self, other: ReadStats) -> None:
        self.files += other.files
        self.records += other.records
        self.by_id.update(other.by_id)
        self.skipped.update(other.skipped)
        self.warnings.update(other.warnings)
        self.formats.update(other.formats)
        room = self.problems_kept - len(self.problems)
        if room > 0:
            self.problems.extend(other.problems[:room])
