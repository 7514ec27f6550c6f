"""The durable spool: every message accepted from the network is here before it is processed.

A SQLite file of its own (WAL, synchronous=FULL: a commit is on disk), appended in batches by
the receiving side and read in order by the processor, whose checkpoint lives in the store in
the same transaction as the results. Processed rows are kept for a while behind the checkpoint
so a restarted processor can replay them to rebuild detector state without raising anything new.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from .db import close_quietly, connect_sqlite

_SCHEMA = """CREATE TABLE IF NOT EXISTS spool (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    received_at REAL NOT NULL,
    peer TEXT NOT NULL,
    transport TEXT NOT NULL,
    data BLOB NOT NULL
)"""
# Windows Event Forwarding clients: one row per (client, subscription) with its bookmark. Written in
# the transaction that spools the bookmark's events, so an acknowledged bookmark never points past
# an event that is not durable here.
_WEF_SCHEMA = """CREATE TABLE IF NOT EXISTS wef_clients (
    client TEXT NOT NULL,
    subscription TEXT NOT NULL,
    address TEXT,
    machine_id TEXT,
    first_seen REAL NOT NULL,
    last_seen REAL NOT NULL,
    last_heartbeat REAL,
    last_events REAL,
    events INTEGER NOT NULL DEFAULT 0,
    bookmark TEXT,
    state TEXT NOT NULL,
    detail TEXT,
    PRIMARY KEY (client, subscription)
)"""
_WEF_UPSERT = """INSERT INTO wef_clients (client, subscription, address, machine_id, first_seen, last_seen,
    last_heartbeat, last_events, events, bookmark, state, detail) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
    ON CONFLICT (client, subscription) DO UPDATE SET address = excluded.address,
    machine_id = COALESCE(excluded.machine_id, wef_clients.machine_id), last_seen = excluded.last_seen,
    last_heartbeat = COALESCE(excluded.last_heartbeat, wef_clients.last_heartbeat),
    last_events = COALESCE(excluded.last_events, wef_clients.last_events),
    events = wef_clients.events + excluded.events, bookmark = COALESCE(excluded.bookmark, wef_clients.bookmark),
    state = excluded.state, detail = excluded.detail"""
WEF_COLUMNS = ("client", "subscription", "address", "machine_id", "first_seen", "last_seen", "last_heartbeat",
               "last_events", "events", "bookmark", "state", "detail")


@dataclass(frozen=True, slots=True)
class WefUpdate:
    """What one WEF request changes in its client's row."""

    client: str
    subscription: str
    address: str
    machine_id: str | None
    state: str  # "enumerated", "active", "ended"
    heartbeat: bool = False
    bookmark: str | None = None
    detail: str | None = None


@dataclass(frozen=True, slots=True)
class SpoolRow:
    seq: int
    received_at: float
    peer: str
    transport: str
    data: bytes


class Spool:
    """Thread-safe append/read of raw messages. `max_rows` unprocessed rows is 'full'."""

    def __init__(self, path: Path, max_rows: int = 1_000_000) -> None:
        self.path = path
        self.max_rows = max_rows
        self._db = connect_sqlite(path)
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute(_SCHEMA)
        self._db.execute(_WEF_SCHEMA)
        self._lock = threading.Lock()
        self.appended = 0

    def append(self, rows: Iterable[tuple[float, str, str, bytes]]) -> int:
        """One durable transaction; returns the last sequence number written."""
        rows = list(rows)
        if not rows:
            return self.last_seq()
        with self._lock:
            db = self._db
            db.execute("BEGIN IMMEDIATE")
            try:
                db.executemany("INSERT INTO spool (received_at, peer, transport, data) VALUES (?, ?, ?, ?)", rows)
                last = db.execute("SELECT last_insert_rowid()").fetchone()[0]
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
            self.appended += len(rows)
            return int(last)

    def append_wef(self, rows: list[tuple[float, str, str, bytes]], update: WefUpdate, now: float) -> int:
        """Spool a delivery's events and move its client's bookmark in one durable transaction
        (also a heartbeat or an enumeration, with no rows). Returns the last sequence number."""
        u = update
        with self._lock:
            db = self._db
            db.execute("BEGIN IMMEDIATE")
            try:
                if rows:
                    db.executemany("INSERT INTO spool (received_at, peer, transport, data) VALUES (?, ?, ?, ?)", rows)
                db.execute(_WEF_UPSERT, (u.client, u.subscription, u.address, u.machine_id, now, now,
                                         now if u.heartbeat else None, now if rows else None, len(rows),
                                         u.bookmark, u.state, u.detail))
                last = db.execute("SELECT MAX(seq) FROM spool").fetchone()[0] if rows else None
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
            self.appended += len(rows)
        return int(last) if last is not None else self.last_seq()

    def note_wef(self, update: WefUpdate, now: float, events: int = 0) -> None:
        """Only the client's row, in a durable transaction of its own: an ingest node of the
        distributed mode, whose events went to the stream (acknowledged there) before this."""
        u = update
        with self._lock:
            db = self._db
            db.execute("BEGIN IMMEDIATE")
            try:
                db.execute(_WEF_UPSERT, (u.client, u.subscription, u.address, u.machine_id, now, now,
                                         now if u.heartbeat else None, now if events else None, events,
                                         u.bookmark, u.state, u.detail))
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise

    def wef_bookmark(self, client: str, subscription: str) -> str | None:
        with self._lock:
            row = self._db.execute("SELECT bookmark FROM wef_clients WHERE client = ? AND subscription = ?",
                                   (client, subscription)).fetchone()
        return row[0] if row else None

    def wef_clients(self) -> list[dict]:
        with self._lock:
            rows = self._db.execute(f"SELECT {', '.join(WEF_COLUMNS)} FROM wef_clients "
                                    "ORDER BY client, subscription").fetchall()
        return [dict(zip(WEF_COLUMNS, r)) for r in rows]

    def read(self, after: int, limit: int = 2000, upto: int | None = None) -> list[SpoolRow]:
        with self._lock:
            if upto is None:
                cur = self._db.execute("SELECT seq, received_at, peer, transport, data FROM spool WHERE seq > ? "
                                       "ORDER BY seq LIMIT ?", (after, limit))
            else:
                cur = self._db.execute("SELECT seq, received_at, peer, transport, data FROM spool WHERE seq > ? "
                                       "AND seq <= ? ORDER BY seq LIMIT ?", (after, upto, limit))
            return [SpoolRow(*r) for r in cur.fetchall()]

    def last_seq(self) -> int:
        with self._lock:
            row = self._db.execute("SELECT MAX(seq) FROM spool").fetchone()
        return int(row[0] or 0)

    def first_seq(self) -> int:
        with self._lock:
            row = self._db.execute("SELECT MIN(seq) FROM spool").fetchone()
        return int(row[0] or 0)

    def depth(self, checkpoint: int) -> int:
        """Rows accepted but not yet processed."""
        return max(0, self.last_seq() - checkpoint)

    def trim(self, upto: int) -> int:
        """Forget rows up to `upto` (already processed and past the replay horizon)."""
        with self._lock:
            cur = self._db.execute("DELETE FROM spool WHERE seq <= ?", (upto,))
            return cur.rowcount

    def close(self) -> None:
        with self._lock:
            close_quietly(self._db)
