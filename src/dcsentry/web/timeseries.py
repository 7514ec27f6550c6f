"""The console's pictures, as numbers: alerts over time by type and severity, events per DC and
event id per time slot (from `dc_minutes`, a counter the store keeps per minute: a day is a few
thousand rows, never a scan of the events table), and an entity's activity over time with the
accounts and hosts it touched. Portable SQL over the store's generic `query`, like console.py.
"""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import msgspec

from .queries import AlertFilter, filter_conditions

SEVERITIES = ("high", "medium", "low")
MAX_ALERTS = 20_000  # a chart of more reads the newest this many (said under the chart)
MAX_ACTIVITIES = 5_000
# Slot widths a time axis may use (seconds): the first that gives at most `slots` bars.
STEPS = (1, 5, 10, 30, 60, 300, 900, 3600, 3 * 3600, 6 * 3600, 86400, 7 * 86400, 30 * 86400, 365 * 86400)
WINDOWS = {1: 60, 6: 300, 24: 900}  # DC health: hours shown -> slot width (seconds)


@dataclass
class Axis:
    """Time slots [start + i*step, start + (i+1)*step) for i < n."""

    start: float
    step: int
    n: int

    def slot(self, t: float) -> int:
        return min(self.n - 1, max(0, int((t - self.start) // self.step)))

    def label(self, i: int) -> str:
        t = time.gmtime(self.start + i * self.step)
        if self.step >= 86400:
            return time.strftime("%Y-%m" if self.step >= 30 * 86400 else "%Y-%m-%d", t)  # slots start mid-year
        if self.step < 60:
            return time.strftime("%H:%M:%S", t)
        return time.strftime("%m-%d %H:%M" if self.n * self.step > 86400 else "%H:%M", t)


def axis_for(lo: float, hi: float, slots: int = 48) -> Axis:
    span = max(hi - lo, 1.0)
    step = next((s for s in STEPS if span / s <= slots), STEPS[-1])
    start = lo // step * step
    return Axis(start, step, int((hi - start) // step) + 1)


def _epoch(iso: str) -> float:
    return datetime.fromisoformat(iso).astimezone(UTC).timestamp()  # the store writes ...Z


@dataclass
class AlertSeries:
    axis: Axis | None
    by_slot: list[dict[str, int]]  # slot -> severity -> alerts
    by_type: list[tuple[str, dict[str, int]]]  # type -> severity -> alerts, most first
    total: int
    capped: bool


def alert_series(store: Any, f: AlertFilter) -> AlertSeries:
    """Alerts matching the list's filters, by the slot their activity started in and by type."""
    sql = "SELECT a.start_utc, a.type, a.severity FROM alerts a"
    if f.entity:
        sql += " JOIN alert_entities e ON a.id = e.alert_id"
    where, args = filter_conditions(f)
    if where:
        sql += " WHERE " + " AND ".join(where)
    rows = store.query(sql + " ORDER BY a.start_utc DESC LIMIT ?", (*args, MAX_ALERTS + 1))
    capped = len(rows) > MAX_ALERTS
    rows = rows[:MAX_ALERTS]
    if not rows:
        return AlertSeries(None, [], [], 0, False)
    times = [_epoch(r[0]) for r in rows]
    axis = axis_for(min(times), max(times))
    by_slot: list[dict[str, int]] = [defaultdict(int) for _ in range(axis.n)]
    by_type: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for t, (_, type_, sev) in zip(times, rows):
        by_slot[axis.slot(t)][sev] += 1
        by_type[type_][sev] += 1
    ranked = sorted(by_type.items(), key=lambda kv: (-sum(kv[1].values()), kv[0]))
    return AlertSeries(axis, [dict(s) for s in by_slot], [(k, dict(v)) for k, v in ranked], len(rows), capped)


@dataclass
class DcRates:
    axis: Axis
    hours: int
    dcs: dict[str, dict[int, list[int]]] = field(default_factory=dict)  # dc -> event id -> count per slot


def dc_rates(store: Any, hours: int = 24, now: float | None = None) -> DcRates:
    """Events per slot for each DC and event id over the last `hours` (1, 6 or 24), by arrival.
    Every DC and event id the health table knows gets a row, even one silent all the window."""
    hours = hours if hours in WINDOWS else 24
    step = WINDOWS[hours]
    now = time.time() if now is None else now
    n = hours * 3600 // step
    axis = Axis((now // step + 1) * step - n * step, step, n)
    out = DcRates(axis, hours)
    for dc, eid in store.query("SELECT dc, event_id FROM dc_health ORDER BY dc, event_id"):
        out.dcs.setdefault(dc, {})[int(eid)] = [0] * n
    rows = store.query("SELECT dc, event_id, minute, count FROM dc_minutes WHERE minute >= ?",
                       (int(axis.start // 60),))
    for dc, eid, minute, count in rows:
        series = out.dcs.setdefault(dc, {}).setdefault(int(eid), [0] * n)
        series[axis.slot(minute * 60.0)] += int(count)
    return out


class _Act(msgspec.Struct):
    """The parts of a stored activity the entity picture needs (msgspec skips the rest unread)."""

    result: str = ""
    account: str = ""
    domain: str = ""
    source_host: str = ""
    source_ip: str = ""
    server: str | None = None
    reporter: str = ""
    host: str = ""
    dc: str = ""
    member_name: str = ""
    group_name: str = ""
    actor_name: str = ""
    actor: str = ""  # the DC-log activities' who


_act = msgspec.json.Decoder(_Act)
ACTIVITY_KINDS = ("success", "failure", "group", "service", "other")


@dataclass
class EntityActivity:
    axis: Axis | None
    by_slot: list[dict[str, int]]  # slot -> success / failure / group / service / other -> count
    accounts: list[tuple[str, int]]  # accounts it touched (or that touched it), most first
    hosts: list[tuple[str, int]]
    total: int
    capped: bool


def _touched(kind: str, a: _Act, acc: Counter, hosts: Counter, self_name: str) -> None:
    def host(h: str | None) -> None:
        if h and h not in ("-", "::1", "127.0.0.1") and h.lower() != self_name:
            hosts[h] += 1

    def account(n: str) -> None:
        if n and n != "-" and n.lower() != self_name:
            acc[n.lower()] += 1

    if kind == "auth":
        account(a.account)
        host(a.source_ip or a.source_host)
        host(a.server)
        host(a.reporter)
    elif kind == "group":
        account(a.member_name)
        account(a.actor_name)
        host(a.dc)
    elif kind == "service":
        account(a.account)
        host(a.host)
    else:
        account(a.actor)
        host(a.host)


def entity_activity(store: Any, kind: str, name: str) -> EntityActivity:
    """An account's or host's activities over time (authentications split by result) and the
    accounts and hosts on the other side of them; a group's membership changes likewise."""
    low = name.strip().lower()
    if kind == "account":
        cols: tuple[str, ...] = ("account",)
        values = sorted({low, low.split("\\")[-1].split("@")[0]})
    elif kind == "host":
        cols, values = ("host", "server"), sorted({name.strip(), name.strip().upper(), low})
    else:
        cols, values = ("host",), sorted({name.strip(), name.strip().upper(), low})
    marks = ", ".join("?" * len(values))
    rows: list[tuple] = []
    for col in cols:
        rows += store.query(f"SELECT time_utc, kind, body FROM activities WHERE {col} IN ({marks}) "
                            f"ORDER BY time_utc DESC LIMIT ?", (*values, MAX_ACTIVITIES + 1))
    capped = len(rows) > MAX_ACTIVITIES
    rows = sorted(rows, key=lambda r: r[0], reverse=True)[:MAX_ACTIVITIES]
    if not rows:
        return EntityActivity(None, [], [], [], 0, False)
    times = [_epoch(r[0]) for r in rows]
    axis = axis_for(min(times), max(times))
    by_slot: list[dict[str, int]] = [defaultdict(int) for _ in range(axis.n)]
    acc: Counter = Counter()
    hosts: Counter = Counter()
    for t, (_, k, body) in zip(times, rows):
        a = _act.decode(body)
        what = ("success" if a.result == "success" else "failure") if k == "auth" else \
            k if k in ("group", "service") else "other"
        by_slot[axis.slot(t)][what] += 1
        _touched(k, a, acc, hosts, low)
    return EntityActivity(axis, [dict(s) for s in by_slot], acc.most_common(15), hosts.most_common(15),
                          len(rows), capped)
