"""The durable spool: every message accepted from the network is here before it is processed.

A SQLite file of its own (WAL, synchronous=FULL: a commit is on disk), appended in batches by
the receiving side and read in order by the processor, whose checkpoint lives in the store in
the same transaction as the results. Processed rows are kept for a while behind the checkpoint
so a restarted processor can replay them to rebuild detector state without raising anything new.

One row holds one received batch (`format` 1: a msgpack array of [received_at, peer, transport,
data]), so a durable append costs one row, not one per message (docs/performance.md, "Syslog
intake"). Positions are message numbers: a row's `last_msg` is the running total of messages up to
and including it, its messages are numbered `last_msg - messages + 1 ..= last_msg`, and the
processor's checkpoint, the depth and the replay horizon count messages. Rows spooled before this
layout (`format` 0: one raw message, `last_msg = seq`) are read as they are, so an upgrade neither
loses nor repeats what was waiting.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import msgspec

from ..store.db import close_quietly, connect_sqlite

# received_at, peer, transport, data: the first message's (a row's columns are for a person looking)
_SCHEMA = """CREATE TABLE IF NOT EXISTS spool (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    received_at REAL NOT NULL,
    peer TEXT NOT NULL,
    transport TEXT NOT NULL,
    data BLOB NOT NULL,
    format INTEGER NOT NULL DEFAULT 0,
    messages INTEGER NOT NULL DEFAULT 1,
    last_msg INTEGER
)"""
# A spool.db of the one-message-per-row layout: its rows become format 0, their position their seq.
_UPGRADE = ["ALTER TABLE spool ADD COLUMN format INTEGER NOT NULL DEFAULT 0",
            "ALTER TABLE spool ADD COLUMN messages INTEGER NOT NULL DEFAULT 1",
            "ALTER TABLE spool ADD COLUMN last_msg INTEGER",
            "UPDATE spool SET last_msg = seq"]
_INDEX = "CREATE INDEX IF NOT EXISTS spool_last_msg ON spool (last_msg)"
FORMAT_ONE, FORMAT_BATCH = 0, 1
ROW_COLUMNS = "format, messages, last_msg, received_at, peer, transport, data"
Message = tuple[float, str, str, bytes]  # received_at, peer, transport, data
_ENCODE = msgspec.msgpack.Encoder().encode
_DECODE = msgspec.msgpack.Decoder(list[tuple[float, str, str, bytes]]).decode
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
    """One message; `seq` is its position (message number), what the checkpoint counts."""

    seq: int
    received_at: float
    peer: str
    transport: str
    data: bytes


def unpack(row: tuple) -> list[SpoolRow]:
    """The messages of one spool row, selected as ROW_COLUMNS."""
    fmt, n, last, received_at, peer, transport, data = row
    if fmt == FORMAT_ONE:
        return [SpoolRow(last, received_at, peer, transport, data)]
    if fmt != FORMAT_BATCH:
        raise ValueError(f"spool row ending at message {last} has format {fmt}, unknown to this version")
    first = last - n + 1
    return [SpoolRow(first + i, *m) for i, m in enumerate(_DECODE(data))]


def _prepare(db: sqlite3.Connection) -> None:
    """Create the tables, or bring a spool.db of the one-message-per-row layout to this one."""
    db.execute(_SCHEMA)
    db.execute(_WEF_SCHEMA)
    if "last_msg" not in {r[1] for r in db.execute("PRAGMA table_info(spool)")}:
        db.execute("BEGIN IMMEDIATE")
        try:
            if "last_msg" not in {r[1] for r in db.execute("PRAGMA table_info(spool)")}:  # not another process
                for statement in _UPGRADE:
                    db.execute(statement)
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
    db.execute(_INDEX)


def _insert(db: sqlite3.Connection, blob: bytes, first: Message, n: int) -> int:
    """One row for a batch of `n` messages, inside the caller's transaction; its last position."""
    last = (db.execute("SELECT MAX(last_msg) FROM spool").fetchone()[0] or 0) + n
    db.execute("INSERT INTO spool (received_at, peer, transport, data, format, messages, last_msg) "
               "VALUES (?, ?, ?, ?, ?, ?, ?)", (first[0], first[1], first[2], blob, FORMAT_BATCH, n, last))
    return last


class Spool:
    """Thread-safe append/read of raw messages. `max_rows` unprocessed messages is 'full'."""

    def __init__(self, path: Path, max_rows: int = 1_000_000) -> None:
        self.path = path
        self.max_rows = max_rows
        self._db = connect_sqlite(path)
        self._db.execute("PRAGMA synchronous=FULL")
        _prepare(self._db)
        self._lock = threading.Lock()
        self.appended = 0

    def append(self, rows: Iterable[Message]) -> int:
        """One durable transaction (one row); returns the position of the last message written."""
        rows = list(rows)
        if not rows:
            return self.last_seq()
        blob = _ENCODE(rows)
        with self._lock:
            db = self._db
            db.execute("BEGIN IMMEDIATE")
            try:
                last = _insert(db, blob, rows[0], len(rows))
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
            self.appended += len(rows)
            return int(last)

    def append_wef(self, rows: list[Message], update: WefUpdate, now: float) -> int:
        """Spool a delivery's events (one row) and move its client's bookmark in one durable
        transaction (also a heartbeat or an enumeration, with no rows). Returns the last position."""
        u = update
        blob = _ENCODE(rows) if rows else b""
        with self._lock:
            db = self._db
            db.execute("BEGIN IMMEDIATE")
            try:
                last = _insert(db, blob, rows[0], len(rows)) if rows else None
                db.execute(_WEF_UPSERT, (u.client, u.subscription, u.address, u.machine_id, now, now,
                                         now if u.heartbeat else None, now if rows else None, len(rows),
                                         u.bookmark, u.state, u.detail))
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
        """Up to `limit` messages at positions after `after` (and at most `upto`), in order. A row
        may be taken in part: the next read, after the last position returned, takes the rest."""
        out: list[SpoolRow] = []
        with self._lock:
            cur = self._db.execute(f"SELECT {ROW_COLUMNS} FROM spool WHERE last_msg > ? ORDER BY last_msg",
                                   (after,))
            try:
                for row in cur:  # stepped lazily: only the rows needed are read
                    if upto is not None and row[2] - row[1] >= upto:
                        break
                    for m in unpack(row):
                        if m.seq <= after:
                            continue
                        if (upto is not None and m.seq > upto) or len(out) >= limit:
                            return out
                        out.append(m)
                    if len(out) >= limit:
                        break
            finally:
                cur.close()
        return out

    def last_seq(self) -> int:
        """The position of the last message spooled (0: none yet)."""
        with self._lock:
            row = self._db.execute("SELECT MAX(last_msg) FROM spool").fetchone()
        return int(row[0] or 0)

    def first_seq(self) -> int:
        """The position of the first message still kept (0: none)."""
        with self._lock:
            row = self._db.execute("SELECT last_msg - messages + 1 FROM spool ORDER BY last_msg LIMIT 1").fetchone()
        return int(row[0]) if row else 0

    def depth(self, checkpoint: int) -> int:
        """Messages accepted but not yet processed."""
        return max(0, self.last_seq() - checkpoint)

    def trim(self, upto: int) -> int:
        """Forget the rows whose messages are all at or before `upto` (processed, and past the replay
        horizon); returns how many rows went."""
        with self._lock:
            cur = self._db.execute("DELETE FROM spool WHERE last_msg <= ?", (upto,))
            return cur.rowcount

    def close(self) -> None:
        with self._lock:
            close_quietly(self._db)
