"""`dcsentry sizing`: events per second per DC, from its logs or the service's own store, and what
that asks of dcsentry nodes, from the throughput the project measured (capacity.py).

Only the events the sensor reads count (the catalogue's ids, 8004-8006 on the NTLM channel): a
SIEM or WEF subscription that forwards more costs receive and parse time but is filtered early.
Per DC and for the whole domain (the per-minute sums over all DCs, since one node may receive
them all): the average over the span the logs cover, the busiest minute and hour, and the "busy"
rate Defender for Identity's sizing tool uses (the average of the 15 busiest minutes, sizing.md).
"""

from __future__ import annotations

import math
import sqlite3
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from ..catalogue import CORE_IDS, spec
from ..model import WindowsEvent
from . import capacity

BUSY_MINUTES = 15


def sensor_reads(event_id: int, channel: str) -> bool:
    if event_id in (8004, 8005, 8006):
        return spec(8004, channel) is not None
    return spec(event_id, channel) is not None


@dataclass
class Rates:
    events: int
    first: float
    last: float
    minutes: Counter = field(default_factory=Counter)  # epoch minute -> events
    by_id: Counter = field(default_factory=Counter)

    @property
    def span(self) -> float:
        """Seconds covered: first to last event, at least the minutes that have events."""
        return max(self.last - self.first, 60.0 * bool(self.events))

    @property
    def average(self) -> float:
        return self.events / self.span if self.span else 0.0

    @property
    def busiest_minute(self) -> float:
        return max(self.minutes.values(), default=0) / 60

    @property
    def busiest_hour(self) -> float:
        hours: Counter = Counter()
        for m, n in self.minutes.items():
            hours[m // 60] += n
        return max(hours.values(), default=0) / min(3600.0, self.span) if self.span else 0.0

    @property
    def busy(self) -> float:
        """Average of the 15 busiest minutes (minutes without events count as 0)."""
        top = sorted(self.minutes.values(), reverse=True)[:BUSY_MINUTES]
        return sum(top) / (60 * min(BUSY_MINUTES, max(1, math.ceil(self.span / 60))))

    @property
    def core_share(self) -> float:
        core = sum(n for e, n in self.by_id.items() if e in CORE_IDS)
        return core / self.events if self.events else 0.0

    def add(self, eid: int, t: float) -> None:
        self.events += 1
        self.first, self.last = min(self.first, t), max(self.last, t)
        self.minutes[int(t // 60)] += 1
        self.by_id[eid] += 1


@dataclass
class Measure:
    dcs: dict[str, Rates] = field(default_factory=dict)
    domain: Rates = field(default_factory=lambda: Rates(0, math.inf, -math.inf))
    ignored: int = 0  # records the sensor does not read

    def add(self, event_id: int, channel: str, computer: str, t: float) -> None:
        if not sensor_reads(event_id, channel):
            self.ignored += 1
            return
        eid = 8004 if event_id in (8005, 8006) else event_id
        dc = (computer or "?").split(".", 1)[0].upper()
        r = self.dcs.get(dc)
        if r is None:
            r = self.dcs[dc] = Rates(0, t, t)
        r.add(eid, t)
        self.domain.add(eid, t)

    def extend(self, events: Iterable[WindowsEvent]) -> Measure:
        for ev in events:
            self.add(ev.event_id, ev.channel, ev.computer, ev.time.timestamp())
        return self


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def from_store(where: str | Path) -> Measure:
    """The service's own counts: the events its store kept, read while it runs. `where` is a store
    URL (`sqlite:PATH`, `postgresql://...`) or a bare SQLite file path. Only reads: a SQLite file is
    opened read-only and must exist; PostgreSQL is queried without running migrations."""
    import psycopg

    from ..store.backend import PostgresBackend, store_kind
    from ..store.db import connect_sqlite, sqlite_path

    url = str(where)
    sql = "SELECT computer, channel, event_id, time_utc FROM events"
    m = Measure()
    if store_kind(url) == "postgresql":
        pg = PostgresBackend(url)
        try:
            rows = pg.execute(sql).fetchall()
        except psycopg.Error as exc:  # gone, or no dcsentry schema there
            raise OSError(f"cannot read the events of {pg.describe()}: {_first_line(exc)}") from None
        finally:
            pg.close()
    else:
        p = sqlite_path(url, Path.cwd())
        if not p.is_file():
            raise FileNotFoundError(f"no store at {p}")
        db = connect_sqlite(p, readonly=True)
        try:
            rows = db.execute(sql).fetchall()
        except sqlite3.Error as exc:  # not a dcsentry store
            raise OSError(f"cannot read the events of {p}: {_first_line(exc)}") from None
        finally:
            db.close()
    for computer, channel, eid, t in rows:
        ts = datetime.fromisoformat(t.replace("Z", "+00:00")).timestamp()
        m.add(int(eid), channel, computer, ts)
    return m


@dataclass
class Plan:
    peak: float  # the rate the plan is made for (events/s)
    per_node: float  # sustained events/s one node takes, measured
    nodes: int
    cores: int
    memory_gb: float
    disk_gb_per_day: float
    why: list[str]


def plan(m: Measure, utilisation: float = capacity.PLANNING_UTILISATION) -> Plan:
    """How many nodes for this domain: the busiest hour must fit at `utilisation` of a node's measured
    sustained rate, and the busiest minute must fit at full rate (the spool absorbs shorter bursts)."""
    cap = capacity.NODE
    d = m.domain
    need_sustained = d.busiest_hour / (cap.events_per_s * utilisation)
    need_burst = d.busiest_minute / cap.events_per_s
    nodes = max(1, math.ceil(max(need_sustained, need_burst)))
    why = [f"busiest hour {d.busiest_hour:,.1f} ev/s against {utilisation:.0%} of the measured "
           f"{cap.events_per_s:,.0f} ev/s a node sustains -> {need_sustained:.2f} node(s)",
           f"busiest minute {d.busiest_minute:,.1f} ev/s against the full {cap.events_per_s:,.0f} ev/s -> "
           f"{need_burst:.2f} node(s)"]
    if nodes > 1:
        why.append("split the DCs between nodes (each DC's events must reach one node: the NTLM 4776/8004 join "
                   "and the per-account counts need them together)")
    per_day = d.average * 86400 * cap.store_bytes_per_event / 1e9
    return Plan(max(d.busiest_hour, d.busiest_minute), cap.events_per_s, nodes, cap.cores,
                cap.memory_gb, per_day / nodes, why)


def to_dict(m: Measure, p: Plan) -> dict:
    def rates(r: Rates) -> dict:
        return {"events": r.events, "hours": round(r.span / 3600, 2), "average_eps": round(r.average, 3),
                "busiest_minute_eps": round(r.busiest_minute, 3), "busiest_hour_eps": round(r.busiest_hour, 3),
                "busy_15min_eps": round(r.busy, 3), "core_share": round(r.core_share, 3),
                "by_event": {str(k): v for k, v in sorted(r.by_id.items())}}
    return {"dcs": {dc: rates(r) for dc, r in sorted(m.dcs.items())}, "domain": rates(m.domain),
            "ignored_records": m.ignored,
            "plan": {"nodes": p.nodes, "cores_per_node": p.cores, "memory_gb_per_node": p.memory_gb,
                     "disk_gb_per_day_per_node": round(p.disk_gb_per_day, 3),
                     "node_events_per_s": p.per_node, "why": p.why},
            "measured": capacity.as_dict()}
