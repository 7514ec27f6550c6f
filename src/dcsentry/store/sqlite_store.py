"""The results store on SQLite: events of the catalogue, activities, alerts, DC health,
baselines, the alert outbox, counters and the processor checkpoint.

One `commit_batch` writes a processed batch and moves the checkpoint in one transaction, so a
crash leaves either all of a batch or none of it. Inserts of events are idempotent (key:
computer, channel, record id) and alerts are upserts by their stable id: replaying a batch after
a restart neither duplicates an event nor raises an alert twice.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import msgspec

from ..activities import Activity, AuthActivity, GroupChange
from ..alerts import Alert
from ..catalogue import CATALOGUE, NTLM_DC_AUDIT_IDS
from ..detectors.baseline import Baseline
from ..model import WindowsEvent, iso_utc
from .db import close_quietly, connect_sqlite, migrate

_enc = msgspec.json.Encoder()
_dec = msgspec.json.Decoder()


def stored_event_ids() -> frozenset[int]:
    return frozenset(CATALOGUE) | NTLM_DC_AUDIT_IDS


@dataclass
class Batch:
    """What one processing step produced."""

    events: list[tuple[WindowsEvent, float]] = field(default_factory=list)  # (event, received_at)
    activities: list[Activity] = field(default_factory=list)
    alerts: dict[str, Alert] = field(default_factory=dict)  # id -> alert (latest state)
    health: dict[tuple[str, int], list] = field(default_factory=dict)  # (dc, id) -> [first, last, last_utc, n]
    checkpoint: int | None = None
    forward: bool = True  # False while replaying after a restart


def _event_row(e: WindowsEvent, received_at: float) -> tuple:
    """An event without a record id (some SIEM layouts drop it) is keyed by a stable content hash."""
    body = _enc.encode(e)
    rid = e.record_id
    if rid is None:
        rid = -int.from_bytes(hashlib.blake2b(body, digest_size=7).digest(), "big")
    return (e.computer, e.channel, rid, e.event_id, iso_utc(e.time), received_at,
            str(e.origin) if e.origin else None, body.decode())


def _activity_row(act: Activity) -> tuple:
    body = _enc.encode(act).decode()
    if isinstance(act, AuthActivity):
        return ("auth", iso_utc(act.time), act.account_key, act.source, act.reporter, body)
    if isinstance(act, GroupChange):
        return ("group", iso_utc(act.time), act.member.lower(), act.group_name, act.dc, body)
    return ("service", iso_utc(act.time), (act.creator_name or act.creator_sid or "").lower(), act.host, act.host, body)


class SqliteStore:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._db = connect_sqlite(path)
        migrate(self._db)
        self._lock = threading.RLock()

    # -- plain SQL for the modules built on the store (web console, WEF, ...) ----------------------
    # Placeholders are `?` and the SQL portable: the PostgreSQL backend rewrites the placeholders.
    def query(self, sql: str, args: Sequence = ()) -> list[tuple]:
        with self._lock:
            return self._db.execute(sql, args).fetchall()

    def execute(self, sql: str, args: Sequence = ()) -> int:
        """One statement in its own transaction; returns the row count."""
        with self._lock:
            return self._db.execute(sql, args).rowcount

    @contextmanager
    def transaction(self) -> Iterator["SqliteStore"]:
        """Several statements all or nothing: `with store.transaction() as tx: tx.execute(...)`."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    # -- writes -----------------------------------------------------------------------------------
    def commit_batch(self, b: Batch) -> None:
        now = time.time()
        with self._lock:
            db = self._db
            db.execute("BEGIN IMMEDIATE")
            try:
                if b.events:
                    db.executemany(
                        "INSERT INTO events (computer, channel, record_id, event_id, time_utc, received_at, source, body)"
                        " VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING", [_event_row(e, rx) for e, rx in b.events])
                if b.activities:
                    db.executemany("INSERT INTO activities (kind, time_utc, account, host, dc, body, received_at) "
                                   "VALUES (?, ?, ?, ?, ?, ?, ?)", [(*_activity_row(a), now) for a in b.activities])
                for a in b.alerts.values():
                    self._upsert_alert(a, now, b.forward)
                for (dc, eid), (first, last, last_utc, n) in b.health.items():
                    db.execute(
                        "INSERT INTO dc_health (dc, event_id, first_seen, last_seen, last_event_utc, count) "
                        "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (dc, event_id) DO UPDATE SET "
                        "last_seen = MAX(dc_health.last_seen, excluded.last_seen), "
                        "last_event_utc = excluded.last_event_utc, count = dc_health.count + excluded.count",
                        (dc, eid, first, last, last_utc, n))
                if b.checkpoint is not None:
                    db.execute("INSERT INTO progress (name, value) VALUES ('spool', ?) "
                               "ON CONFLICT (name) DO UPDATE SET value = excluded.value", (b.checkpoint,))
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise

    def _upsert_alert(self, a: Alert, now: float, forward: bool) -> None:
        """Insert or update; an update that changes nothing (a replay) sends nothing."""
        d = a.to_dict()
        body = _enc.encode(d).decode()
        row = self._db.execute("SELECT revision, body, status FROM alerts WHERE id = ?", (a.id,)).fetchone()
        if row is not None and row[1] == body:
            return
        status = row[2] if row is not None and row[2] != "open" else a.status
        self._db.execute(
            "INSERT INTO alerts (id, type, kind, severity, status, start_utc, end_utc, count, revision, title, "
            "description, body, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET "
            "severity = excluded.severity, end_utc = excluded.end_utc, count = excluded.count, "
            "revision = excluded.revision, description = excluded.description, body = excluded.body, "
            "updated_at = excluded.updated_at, status = excluded.status",
            (a.id, a.type, a.kind, a.severity, status, d["start"], d["end"], a.count, a.revision, a.title,
             a.description, body, now))
        if forward:
            self._db.execute("INSERT INTO outbox (alert_id, revision, body) VALUES (?, ?, ?)", (a.id, a.revision, body))

    def put_alert(self, a: Alert, forward: bool = True) -> None:
        """A single alert outside a batch (health alerts)."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._upsert_alert(a, time.time(), forward)
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def set_status(self, alert_id: str, status: str) -> bool:
        with self._lock:
            cur = self._db.execute("UPDATE alerts SET status = ?, updated_at = ? WHERE id = ?",
                                   (status, time.time(), alert_id))
            return cur.rowcount == 1

    def save_counters(self, name: str, data: dict) -> None:
        with self._lock:
            self._db.execute("INSERT INTO counters (name, data, updated_at) VALUES (?, ?, ?) ON CONFLICT (name) "
                             "DO UPDATE SET data = excluded.data, updated_at = excluded.updated_at",
                             (name, _enc.encode(data).decode(), time.time()))

    def save_baseline(self, baseline: Baseline, name: str = "default") -> None:
        with self._lock:
            self._db.execute("INSERT INTO baseline (name, data, saved_at) VALUES (?, ?, ?) ON CONFLICT (name) "
                             "DO UPDATE SET data = excluded.data, saved_at = excluded.saved_at",
                             (name, baseline.dump(), time.time()))

    def outbox_take(self, limit: int = 500) -> list[tuple[int, dict]]:
        with self._lock:
            rows = self._db.execute("SELECT seq, body FROM outbox ORDER BY seq LIMIT ?", (limit,)).fetchall()
        return [(seq, _dec.decode(body)) for seq, body in rows]

    def outbox_done(self, upto_seq: int) -> None:
        with self._lock:
            self._db.execute("DELETE FROM outbox WHERE seq <= ?", (upto_seq,))

    def expire(self, received_before: float) -> int:
        """Retention: events and activities that arrived before the cut-off go; alerts stay. By arrival,
        not event time, so a replayed capture of old logs is kept as long as live traffic."""
        with self._lock:
            n = self._db.execute("DELETE FROM events WHERE received_at < ?", (received_before,)).rowcount
            n += self._db.execute("DELETE FROM activities WHERE received_at < ?", (received_before,)).rowcount
            return n

    # -- reads ------------------------------------------------------------------------------------
    def checkpoint(self) -> int:
        with self._lock:
            row = self._db.execute("SELECT value FROM progress WHERE name = 'spool'").fetchone()
        return int(row[0]) if row else 0

    def load_baseline(self, name: str = "default") -> Baseline:
        with self._lock:
            row = self._db.execute("SELECT data FROM baseline WHERE name = ?", (name,)).fetchone()
        return Baseline.load(row[0]) if row else Baseline()

    def counters(self) -> dict[str, dict]:
        with self._lock:
            rows = self._db.execute("SELECT name, data FROM counters").fetchall()
        return {n: _dec.decode(d) for n, d in rows}

    def alerts(self, *, kind: str | None = None, type_: str | None = None, status: str | None = None,
               limit: int = 100, offset: int = 0) -> list[dict]:
        sql, args = "SELECT body, status FROM alerts WHERE 1 = 1", []
        for col, val in (("kind", kind), ("type", type_), ("status", status)):
            if val is not None:
                sql += f" AND {col} = ?"
                args.append(val)
        sql += " ORDER BY start_utc DESC, id LIMIT ? OFFSET ?"
        args += [limit, offset]
        with self._lock:
            rows = self._db.execute(sql, args).fetchall()
        out = []
        for body, status_ in rows:
            d = _dec.decode(body)
            d["status"] = status_
            out.append(d)
        return out

    def alerts_changed_since(self, since: float, limit: int = 200) -> list[tuple[float, dict]]:
        """(updated_at, alert) for alerts created or grown after `since`, oldest change first."""
        with self._lock:
            rows = self._db.execute("SELECT updated_at, body, status FROM alerts WHERE updated_at > ? "
                                    "ORDER BY updated_at LIMIT ?", (since, limit)).fetchall()
        out = []
        for ts, body, status in rows:
            d = _dec.decode(body)
            d["status"] = status
            out.append((ts, d))
        return out

    def count(self, table: str) -> int:
        if table not in ("events", "alerts", "activities", "outbox", "dc_health"):
            raise ValueError(table)
        with self._lock:
            return int(self._db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])

    def dc_health(self) -> list[dict]:
        with self._lock:
            rows = self._db.execute("SELECT dc, event_id, first_seen, last_seen, last_event_utc, count FROM dc_health "
                                    "ORDER BY dc, event_id").fetchall()
        return [dict(zip(("dc", "event_id", "first_seen", "last_seen", "last_event_utc", "count"), r)) for r in rows]

    def events_by_key(self) -> list[tuple[str, str, int]]:
        with self._lock:
            return self._db.execute("SELECT computer, channel, record_id FROM events").fetchall()

    def close(self) -> None:
        with self._lock:
            close_quietly(self._db)


def open_store(path: Path) -> SqliteStore:
    return SqliteStore(path)


