"""The results store: events of the catalogue, activities, alerts, DC health, baselines, the alert
outbox, counters and progress positions, on SQLite or PostgreSQL (`open_store(url, data_dir)`).

One `commit_batch` writes a processed batch and moves its progress positions in one transaction,
so a crash leaves either all of a batch or none of it. Inserts of events are idempotent (key:
computer, channel, record id) and alerts are upserts by their stable id that change nothing (and
queue nothing to send) when the stored alert is already the same: replaying a batch after a
restart, or a redelivery to another worker, neither duplicates an event nor raises an alert twice.
On PostgreSQL several processes write at once: upserts are single statements (`ON CONFLICT`),
rows are written in key order (no deadlock between two batches), and idempotent writes are
retried through a lost connection or a deadlock for up to `retry_seconds`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import NamedTuple, TypeVar

import msgspec

from ..alerts import Alert
from ..detectors.baseline import Baseline
from .backend import Backend, open_backend
from .rows import Batch, RawEvents, activity_row, activity_server, alert_row, event_row

_enc = msgspec.json.Encoder()
_dec = msgspec.json.Decoder()
T = TypeVar("T")

_EVENT_COLS = (("computer", "text"), ("channel", "text"), ("record_id", "bigint"), ("event_id", "integer"),
               ("time_utc", "text"), ("received_at", "double precision"), ("source", "text"), ("body", "text"),
               ("trusted", "integer"))
# An event's key taken by an unauthenticated copy (anyone can claim a computer and record id over
# plain syslog) is given to the authenticated copy when it comes; never the other way round.
_EVENT_CONFLICT = ("ON CONFLICT (computer, channel, record_id) DO UPDATE SET event_id = excluded.event_id, "
                   "time_utc = excluded.time_utc, received_at = excluded.received_at, source = excluded.source, "
                   "body = excluded.body, trusted = excluded.trusted "
                   "WHERE excluded.trusted = 1 AND COALESCE(events.trusted, 0) = 0")
_ACTIVITY_COLS = (("kind", "text"), ("time_utc", "text"), ("account", "text"), ("host", "text"), ("dc", "text"),
                  ("body", "text"), ("received_at", "double precision"), ("server", "text"))
_ALERT_COLS = (("id", "text"), ("type", "text"), ("kind", "text"), ("severity", "text"), ("status", "text"),
               ("start_utc", "text"), ("end_utc", "text"), ("count", "bigint"), ("revision", "integer"),
               ("title", "text"), ("description", "text"), ("body", "text"), ("updated_at", "double precision"))
_OUTBOX_COLS = (("alert_id", "text"), ("revision", "integer"), ("body", "text"))
_ALERT_UPSERT = (  # an update that changes nothing returns no row: a replay queues nothing
    "ON CONFLICT (id) DO UPDATE SET "
    "severity = excluded.severity, end_utc = excluded.end_utc, count = excluded.count, "
    "revision = excluded.revision, description = excluded.description, body = excluded.body, "
    "updated_at = excluded.updated_at, "
    "status = CASE WHEN alerts.status = 'open' THEN excluded.status ELSE alerts.status END "
    "WHERE alerts.body <> excluded.body RETURNING id")
_HEALTH = (
    "INSERT INTO dc_health (dc, event_id, first_seen, last_seen, last_event_utc, count) "
    "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (dc, event_id) DO UPDATE SET "
    "last_seen = MAX(dc_health.last_seen, excluded.last_seen), "
    "last_event_utc = excluded.last_event_utc, count = dc_health.count + excluded.count")
_MINUTES = ("INSERT INTO dc_minutes (dc, event_id, minute, count) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (dc, event_id, minute) DO UPDATE SET count = dc_minutes.count + excluded.count")
MINUTES_KEPT = 2 * 86400.0  # dc_minutes: the console charts the last day
_PROGRESS = "INSERT INTO progress (name, value) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET value = excluded.value"
_ALIAS = ("INSERT INTO host_aliases (address, name, seen_at) VALUES (?, ?, ?) ON CONFLICT (address) "
          "DO UPDATE SET name = excluded.name, seen_at = excluded.seen_at")
_TABLES = ("events", "alerts", "activities", "outbox", "dc_health")


class Store:
    """Thread-safe (one connection behind a lock). `query`/`execute`/`transaction` are the plain
    SQL for modules built on the store (web console, WEF, ...): `?` placeholders, portable SQL."""

    retry_seconds = 60.0

    def __init__(self, backend: Backend, raw_events: str = "all") -> None:
        self.backend = backend
        self._raw = RawEvents(raw_events)  # [serve] raw_events: which raw events commit_batch keeps
        self.kind = backend.kind
        self.url = backend.describe()  # password redacted
        self._lock = threading.RLock()
        self._depth = 0  # transaction nesting: an inner `transaction()` joins the outer one
        self._taken: set[int] = set()  # outbox rows handed out by outbox_take, not yet done
        self._retry(backend.migrate)  # nothing reads or writes before the schema is current

    @property
    def raw_events(self) -> str:
        return self._raw.policy

    @raw_events.setter
    def raw_events(self, policy: str) -> None:
        """`none`, `detector` or `all` (rows.RawEvents); ValueError for anything else."""
        self._raw = RawEvents(policy)

    # -- plumbing ---------------------------------------------------------------------------------
    def _retry(self, fn: Callable[[], T]) -> T:
        """Run `fn` under the lock; through transient errors (PostgreSQL gone for a moment, a
        deadlock) try again until `retry_seconds`. Only for idempotent work, never inside a caller's
        transaction (the caller's other statements would be lost)."""
        deadline = time.monotonic() + self.retry_seconds
        delay = 0.05
        while True:
            with self._lock:
                nested = self._depth > 0
                try:
                    return fn()
                except self.backend.transient:
                    if nested or time.monotonic() > deadline:
                        raise
            time.sleep(delay)  # without the lock: other threads read meanwhile
            delay = min(delay * 2, 2.0)

    @contextmanager
    def _tx(self) -> Iterator[Backend]:
        with self._lock:
            if self._depth:
                self._depth += 1
                try:
                    yield self.backend
                finally:
                    self._depth -= 1
                return
            with self.backend.transaction():
                self._depth = 1
                try:
                    yield self.backend
                finally:
                    self._depth = 0

    def query(self, sql: str, args: Sequence = ()) -> list[tuple]:
        """Rows of a read (retried through a lost connection: keep writes in `execute`)."""
        return self._retry(lambda: self.backend.execute(sql, args).fetchall())

    def execute(self, sql: str, args: Sequence = ()) -> int:
        """One statement in its own transaction (or the caller's); returns the row count."""
        with self._lock:
            return self.backend.execute(sql, args).rowcount

    @contextmanager
    def transaction(self) -> Iterator[Store]:
        """Several statements all or nothing: `with store.transaction() as tx: tx.execute(...)`."""
        with self._tx():
            yield self

    # -- writes -----------------------------------------------------------------------------------
    def commit_batch(self, b: Batch) -> None:
        """Events, activities, alert updates, health counts and progress: one transaction."""
        self.write_batch(self.prepare_batch(b))

    def prepare_batch(self, b: Batch) -> PreparedBatch:
        """Every row of `b` encoded now, so the detectors may go on growing its alerts while
        `write_batch` runs on another thread (runtime/committer.py)."""
        now = time.time()
        chosen = self._raw.select(b)
        events = _one_per_key(event_row(e, rx, trusted) for e, rx, trusted in chosen) if chosen else []
        acts = [(*activity_row(a), now, activity_server(a)) for a in b.activities]
        health = [(dc, eid, first, last, t.isoformat(), n)  # the last event's time, formatted once per key
                  for (dc, eid), (first, last, t, n) in sorted(b.health.items())]
        minutes = [(dc, eid, int(h[1] // 60), h[3]) for dc, eid, *h in health]  # a batch: well under a minute
        progress = dict(b.progress)
        if b.checkpoint is not None:
            progress["spool"] = b.checkpoint
        alerts = _alert_rows((b.alerts[k] for k in sorted(b.alerts)), now)
        aliases = [(a, n, now) for a, n in sorted(b.aliases.items())]
        return PreparedBatch(events, acts, alerts, b.forward, health, minutes, sorted(progress.items()), aliases)

    def write_batch(self, p: PreparedBatch) -> None:
        """One transaction; safe to call from another thread than the one that prepared it."""
        def write() -> None:
            with self._tx() as db:
                if p.events:
                    db.insert_rows("events", _EVENT_COLS, p.events, _EVENT_CONFLICT)
                if p.activities:
                    db.insert_rows("activities", _ACTIVITY_COLS, p.activities)
                if p.alerts:
                    self._upsert_alerts(db, p.alerts, p.forward)
                if p.health:
                    db.executemany(_HEALTH, p.health)
                    db.executemany(_MINUTES, p.minutes)
                if p.progress:
                    db.executemany(_PROGRESS, p.progress)
                if p.aliases:
                    db.executemany(_ALIAS, p.aliases)

        self._retry(write)

    def _upsert_alerts(self, db: Backend, alerts: list[AlertRow], forward: bool) -> int:
        """Insert or update, all in one statement; an update that changes nothing (a replay, or a
        redelivery another worker already stored) queues nothing. A status the user set (anything
        but 'open') survives the alert's growth. Returns how many rows changed."""
        changed = {r[0] for r in db.insert_rows("alerts", _ALERT_COLS, [r.row for r in alerts], _ALERT_UPSERT)}
        if changed and forward:
            queued = [(r.id, r.revision, r.body) for r in alerts  # a suppressed one is not forwarded
                      if r.id in changed and r.status != "suppressed"]
            db.insert_rows("outbox", _OUTBOX_COLS, queued)
        return len(changed)

    def put_alert(self, a: Alert, forward: bool = True) -> bool:
        """A single alert outside a batch (health alerts); returns whether it changed."""
        rows = _alert_rows([a], time.time())

        def write() -> bool:
            with self._tx() as db:
                return self._upsert_alerts(db, rows, forward) == 1

        return self._retry(write)

    def set_status(self, alert_id: str, status: str) -> bool:
        return self._retry(lambda: self.backend.execute("UPDATE alerts SET status = ?, updated_at = ? WHERE id = ?",
                                                        (status, time.time(), alert_id)).rowcount == 1)

    def save_counters(self, name: str, data: dict) -> None:
        """Counters by name; on a shared database each node saves under its own name."""
        self._retry(lambda: self.backend.execute(
            "INSERT INTO counters (name, data, updated_at) VALUES (?, ?, ?) ON CONFLICT (name) "
            "DO UPDATE SET data = excluded.data, updated_at = excluded.updated_at",
            (name, _enc.encode(data).decode(), time.time())))

    def save_baseline(self, baseline: Baseline, name: str = "default") -> None:
        self._retry(lambda: self.backend.execute(
            "INSERT INTO baseline (name, data, saved_at) VALUES (?, ?, ?) ON CONFLICT (name) "
            "DO UPDATE SET data = excluded.data, saved_at = excluded.saved_at",
            (name, baseline.dump(), time.time())))

    def set_progress(self, name: str, value: int) -> None:
        self._retry(lambda: self.backend.execute(_PROGRESS, (name, value)))

    def outbox_take(self, limit: int = 500) -> list[tuple[int, dict]]:
        """The oldest rows not yet sent. On PostgreSQL a row may commit after a higher-numbered
        one, so `outbox_done` deletes exactly the rows handed out here, never a range."""
        rows = self.query("SELECT seq, body FROM outbox ORDER BY seq LIMIT ?", (limit,))
        with self._lock:
            self._taken.update(seq for seq, _ in rows)
        return [(seq, _dec.decode(body)) for seq, body in rows]

    def outbox_done(self, upto_seq: int) -> None:
        """The rows of the last `outbox_take` up to `upto_seq` were delivered."""
        with self._lock:
            done = sorted((s,) for s in self._taken if s <= upto_seq)
            self._taken.difference_update(s for (s,) in done)

        def write() -> None:
            with self._tx() as db:
                db.executemany("DELETE FROM outbox WHERE seq = ?", done)

        if done:
            self._retry(write)

    def expire(self, received_before: float) -> int:
        """Retention: events and activities that arrived before the cut-off go; alerts stay. By arrival,
        not event time, so a replayed capture of old logs is kept as long as live traffic."""
        def write() -> int:
            with self._tx() as db:
                db.execute("DELETE FROM dc_minutes WHERE minute < ?", (int((time.time() - MINUTES_KEPT) // 60),))
                n = db.execute("DELETE FROM events WHERE received_at < ?", (received_before,)).rowcount
                return n + db.execute("DELETE FROM activities WHERE received_at < ?", (received_before,)).rowcount

        return self._retry(write)

    def lead(self, name: str) -> bool:
        """Whether this process holds the named leadership (taken if free): the jobs one node runs
        for all (forwarding the outbox, retention, health checks). Released when the process ends."""
        return self._retry(lambda: self.backend.try_lock(name))

    # -- reads ------------------------------------------------------------------------------------
    def progress(self, name: str) -> int | None:
        rows = self.query("SELECT value FROM progress WHERE name = ?", (name,))
        return int(rows[0][0]) if rows else None

    def checkpoint(self) -> int:
        """The spool position a one-node service has processed up to."""
        return self.progress("spool") or 0

    def load_baseline(self, name: str = "default") -> Baseline:
        rows = self.query("SELECT data FROM baseline WHERE name = ?", (name,))
        return Baseline.load(bytes(rows[0][0])) if rows else Baseline()

    def counters(self) -> dict[str, dict]:
        return {n: _dec.decode(d) for n, d in self.query("SELECT name, data FROM counters")}

    def alerts(self, *, kind: str | None = None, type_: str | None = None, status: str | None = None,
               limit: int = 100, offset: int = 0) -> list[dict]:
        sql = "SELECT body, status FROM alerts WHERE 1 = 1"
        args: list[object] = []
        for col, val in (("kind", kind), ("type", type_), ("status", status)):
            if val is not None:
                sql += f" AND {col} = ?"
                args.append(val)
        sql += " ORDER BY start_utc DESC, id LIMIT ? OFFSET ?"
        args += [limit, offset]
        out = []
        for body, status_ in self.query(sql, args):
            d = _dec.decode(body)
            d["status"] = status_
            out.append(d)
        return out

    def alerts_changed_since(self, since: float, limit: int = 200) -> list[tuple[float, dict]]:
        """(updated_at, alert) for alerts created or grown after `since`, oldest change first."""
        out = []
        for ts, body, status in self.query("SELECT updated_at, body, status FROM alerts WHERE updated_at > ? "
                                           "ORDER BY updated_at LIMIT ?", (since, limit)):
            d = _dec.decode(body)
            d["status"] = status
            out.append((ts, d))
        return out

    def count(self, table: str) -> int:
        if table not in _TABLES:
            raise ValueError(table)
        return int(self.query(f"SELECT COUNT(*) FROM {table}")[0][0])

    def dc_health(self) -> list[dict]:
        rows = self.query("SELECT dc, event_id, first_seen, last_seen, last_event_utc, count FROM dc_health "
                          "ORDER BY dc, event_id")
        return [dict(zip(("dc", "event_id", "first_seen", "last_seen", "last_event_utc", "count"), r)) for r in rows]

    def events_by_key(self) -> list[tuple[str, str, int]]:
        return self.query("SELECT computer, channel, record_id FROM events")

    def close(self) -> None:
        with self._lock:
            self.backend.close()


def open_store(url: str, data_dir: Path, raw_events: str = "all") -> Store:
    """`sqlite:PATH` (relative to `data_dir`; see db.sqlite_path) or `postgresql://...`. Runs the
    migrations; raises StoreUnavailable (an OSError) when the database cannot be reached.
    `raw_events`: which raw events batches keep (`[serve] raw_events`; only the writer's matters)."""
    return Store(open_backend(url, data_dir), raw_events)


class AlertRow(NamedTuple):
    id: str
    revision: int
    status: str
    row: tuple  # the alerts row, in the column order of the upsert
    body: str  # its JSON, queued for forwarding


class PreparedBatch(NamedTuple):
    """A batch's rows, encoded (Store.prepare_batch)."""

    events: list[tuple]
    activities: list[tuple]
    alerts: list[AlertRow]
    forward: bool
    health: list[tuple]
    minutes: list[tuple]
    progress: list[tuple[str, int]]
    aliases: list[tuple]


def _alert_rows(alerts: Iterable[Alert], now: float) -> list[AlertRow]:
    return [AlertRow(a.id, a.revision, a.status, *alert_row(a, a.status, now)) for a in alerts]


def _one_per_key(rows: Iterable[tuple]) -> list[tuple]:
    """One row per event key (an upsert may touch a row once per statement), the authenticated copy
    first choice, in key order (writers meet rows in the same order: no deadlock)."""
    best: dict[tuple, tuple] = {}
    for r in rows:
        k = r[:3]
        old = best.get(k)
        if old is None or (r[-1] and not old[-1]):
            best[k] = r
    return [best[k] for k in sorted(best)]
