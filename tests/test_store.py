"""The store on both backends (SQLite file, PostgreSQL schema: the `store_url` fixture) and the
spool: migrations, idempotent batches, alert upserts and the outbox, durability across a reopen.
Real SQLite files in a temporary folder and a real PostgreSQL database of this test run."""

from __future__ import annotations

import sqlite3
import threading
import time
from datetime import datetime, timedelta, timezone

from dcsentry.alerts import Alert, Evidence
from dcsentry.model import Origin, WindowsEvent
from dcsentry.store.db import connect_sqlite, sqlite_path
from dcsentry.store.migrations import MIGRATIONS, migrate
from dcsentry.sources.spool import ROW_COLUMNS, Spool, unpack
from dcsentry.store.sqlite_store import Batch
from dcsentry.store.store import Store, open_store
from storekit import pg_database, pg_url, store_url  # noqa: F401 (fixtures)

T0 = datetime(2024, 1, 18, 5, 4, 59, tzinfo=timezone.utc)


def event(record_id: int | None, eid: int = 4776, computer: str = "DC01.contoso.local") -> WindowsEvent:
    return WindowsEvent(eid, "Microsoft-Windows-Security-Auditing", "Security", computer, T0, record_id,
                        {"TargetUserName": "alice", "Workstation": "WS1", "Status": "0xc000006a"},
                        origin=Origin("tcp://10.0.0.5:5000", 7))


def alert(count: int = 1, revision: int = 0) -> Alert:
    return Alert(type="brute-force", key="WS1|alice", title="t", description=f"{count} tries", severity="medium",
                 technique="T1110.001", start=T0, end=T0 + timedelta(seconds=count), count=count, revision=revision,
                 evidence=[Evidence(4776, "DC01", 1, T0)])


def opened(url: str, tmp_path) -> Store:
    return open_store(url, tmp_path)


def test_migrations_are_recorded_and_idempotent(store_url, tmp_path):
    store = opened(store_url, tmp_path)
    assert store.backend.migrate() == MIGRATIONS[-1][0]  # a second run applies nothing
    versions = [r[0] for r in store.query("SELECT version FROM schema_version ORDER BY version")]
    assert versions == [v for v, _, _ in MIGRATIONS]
    store.close()


def test_sqlite_connection_migrates_in_wal_mode(tmp_path):
    db = connect_sqlite(tmp_path / "s.db")
    assert migrate(db) == MIGRATIONS[-1][0]
    assert migrate(db) == MIGRATIONS[-1][0]
    assert [r[0] for r in db.execute("SELECT version FROM schema_version")] == [v for v, _, _ in MIGRATIONS]
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"



def test_a_new_file_opened_while_another_process_holds_its_write_lock_waits(tmp_path):
    """The race CI met when two writers opened one new file together: the switch to WAL found the
    other's write lock and SQLite answered "database is locked" at once (no busy handler for it)."""
    path = tmp_path / "new.db"
    other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")
    other.execute("CREATE TABLE first (x)")
    threading.Timer(0.3, other.execute, ("COMMIT",)).start()
    started = time.monotonic()
    db = connect_sqlite(path)
    assert time.monotonic() - started >= 0.25  # it waited for the other's commit, then switched
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.execute("SELECT name FROM sqlite_master").fetchall() == [("first",)]
    db.close()
    other.close()

def test_sqlite_url_forms(tmp_path):
    assert sqlite_path("sqlite:dcsentry.db", tmp_path) == tmp_path / "dcsentry.db"
    assert sqlite_path("sqlite:////abs/x.db", tmp_path).as_posix() == "/abs/x.db"
    assert sqlite_path("sqlite:///rel.db", tmp_path) == tmp_path / "rel.db"
    assert sqlite_path("rel.db", tmp_path) == tmp_path / "rel.db"


def test_batches_are_idempotent(store_url, tmp_path):
    store = opened(store_url, tmp_path)
    b = Batch(events=[(event(1), 1.0, False), (event(2), 1.0, False), (event(None), 1.0, False)], alerts={alert().id: alert()}, checkpoint=10)
    store.commit_batch(b)
    store.commit_batch(b)  # a replay after a crash
    assert store.count("events") == 3
    assert store.count("alerts") == 1
    assert store.count("outbox") == 1  # the replayed, unchanged alert is not sent again
    assert store.checkpoint() == 10


def test_alert_growth_updates_in_place_and_queues_each_revision(store_url, tmp_path):
    store = opened(store_url, tmp_path)
    store.commit_batch(Batch(alerts={alert().id: alert()}))
    grown = alert(count=5, revision=1)
    store.commit_batch(Batch(alerts={grown.id: grown}))
    rows = store.alerts()
    assert len(rows) == 1 and rows[0]["count"] == 5 and rows[0]["revision"] == 1
    out = store.outbox_take()
    assert [b["revision"] for _, b in out] == [0, 1]
    store.outbox_done(out[-1][0])
    assert store.count("outbox") == 0


def test_user_status_survives_later_growth(store_url, tmp_path):
    store = opened(store_url, tmp_path)
    a = alert()
    store.commit_batch(Batch(alerts={a.id: a}))
    assert store.set_status(a.id, "suppressed")
    grown = alert(count=9, revision=3)
    store.commit_batch(Batch(alerts={grown.id: grown}))
    assert store.alerts()[0]["status"] == "suppressed"


def test_store_survives_reopen(store_url, tmp_path):
    store = opened(store_url, tmp_path)
    store.commit_batch(Batch(events=[(event(1), 1.0, False)], checkpoint=3))
    store.close()
    again = opened(store_url, tmp_path)
    assert again.checkpoint() == 3 and again.count("events") == 1


def test_spool_append_read_trim_and_reopen(tmp_path):
    path = tmp_path / "spool.db"
    spool = Spool(path, max_rows=10)
    last = spool.append([(1.0, "tcp://a:1", "tcp", b"m%d" % i) for i in range(5)])
    assert last == 5 and spool.depth(0) == 5 and spool.depth(5) == 0
    rows = spool.read(2, limit=2)
    assert [r.seq for r in rows] == [3, 4] and rows[0].data == b"m2"
    assert [r.seq for r in spool.read(0, upto=2)] == [1, 2]
    spool.close()
    again = Spool(path)
    assert again.last_seq() == 5  # durable: a new handle (a restarted process) sees every row
    assert again.append([(2.0, "udp://b:2", "udp", b"x")]) == 6  # positions never reuse
    assert again.trim(3) == 0 and again.first_seq() == 1  # a row goes only when all its messages are behind
    assert again.trim(5) == 1 and again.first_seq() == 6 and again.last_seq() == 6
    assert [(r.seq, r.peer, r.data) for r in again.read(0)] == [(6, "udp://b:2", b"x")]


def test_spool_rows_are_committed_before_append_returns(tmp_path):
    path = tmp_path / "spool.db"
    spool = Spool(path)
    spool.append([(1.0, "tcp://a:1", "tcp", b"hello")])
    other = sqlite3.connect(path)  # another connection, as the processor process has
    rows = other.execute(f"SELECT {ROW_COLUMNS} FROM spool").fetchall()
    assert [m.data for r in rows for m in unpack(r)] == [b"hello"]


def test_retention_drops_events_and_activities_that_arrived_long_ago_but_keeps_alerts(store_url, tmp_path):
    from dcsentry.activities.builder import ActivityBuilder

    store = opened(store_url, tmp_path)
    old, new = event(1), event(2)
    new.time = T0 + timedelta(days=40)
    builder = ActivityBuilder()
    acts = builder.feed(old) + builder.flush()
    assert len(acts) == 1
    store.commit_batch(Batch(events=[(old, 1000.0, False), (new, 5000.0, False)], activities=acts, alerts={alert().id: alert()}))
    assert store.execute("UPDATE activities SET received_at = ?", (1000.0,)) == 1
    assert store.count("activities") == 1
    assert store.expire(2000.0) == 2  # what arrived before the cut-off: the old event and its activity
    assert [r for (r,) in store.query("SELECT record_id FROM events")] == [2]
    assert store.count("alerts") == 1
