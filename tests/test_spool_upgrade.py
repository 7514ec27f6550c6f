"""A spool.db of the one-message-per-row layout, opened by this version: what was processed stays
processed, what was waiting is processed once, and new batches (one row each) follow on."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest
from servekit import Serve, send_tcp, wait_for
from test_serve_load import message

from dcsentry.config import Config
from dcsentry.runtime.processor import Processor
from dcsentry.store.rows import Batch
from dcsentry.sources.spool import ROW_COLUMNS, Spool
from dcsentry.store.store import open_store

pytestmark = pytest.mark.timeout(180)

OLD_SCHEMA = """CREATE TABLE spool (seq INTEGER PRIMARY KEY AUTOINCREMENT, received_at REAL NOT NULL,
    peer TEXT NOT NULL, transport TEXT NOT NULL, data BLOB NOT NULL)"""


def old_spool(path: Path, records: range, trimmed: int = 0) -> None:
    """What the previous version left: one row per message, seq = record id, the first rows trimmed."""
    db, now = sqlite3.connect(path), time.time()  # arrived now: the service's retention keeps them
    db.execute(OLD_SCHEMA)
    db.executemany("INSERT INTO spool (seq, received_at, peer, transport, data) VALUES (?, ?, ?, ?, ?)",
                   [(i, now, "10.0.0.5:514", "tcp", message(i)) for i in records])
    db.execute("DELETE FROM spool WHERE seq <= ?", (trimmed,))
    db.commit()
    db.close()


def test_old_rows_keep_their_positions_and_new_batches_follow(tmp_path) -> None:
    path = tmp_path / "spool.db"
    old_spool(path, range(1, 11), trimmed=2)
    spool, other = Spool(path), Spool(path)  # the receiver and the processor both open it; one upgrade
    assert spool.first_seq() == 3 and spool.last_seq() == 10 and spool.depth(6) == 4
    assert [(r.seq, r.data) for r in spool.read(6)] == [(i, message(i)) for i in range(7, 11)]
    assert spool.append([(2.0, "10.0.0.6:514", "tcp", message(i)) for i in range(11, 14)]) == 13
    assert [r.seq for r in other.read(8, limit=4)] == [9, 10, 11, 12]  # across the two layouts, a row in part
    assert [r.seq for r in other.read(12)] == [13] and other.read(12)[0].peer == "10.0.0.6:514"
    assert [r.seq for r in other.read(0, upto=4)] == [3, 4]
    assert other.trim(10) == 8 and other.first_seq() == 11  # the old rows go one by one, the batch whole
    rows = sqlite3.connect(path).execute(f"SELECT {ROW_COLUMNS} FROM spool").fetchall()
    assert [(fmt, n, last) for fmt, n, last, *_ in rows] == [(1, 3, 13)]
    spool.close()
    other.close()


def test_processor_after_upgrade_stores_each_waiting_message_once(tmp_path) -> None:
    old_spool(tmp_path / "spool.db", range(1, 501))
    store = open_store("sqlite:dcsentry.db", tmp_path)
    store.commit_batch(Batch(checkpoint=300))  # the old processor had got this far
    spool = Spool(tmp_path / "spool.db")
    spool.append([(2.0, "10.0.0.6:514", "tcp", message(i)) for i in range(501, 1201)])
    proc = Processor(store, spool, Config(), batch_rows=250)
    assert proc.warm_up() == 300  # the replay behind the checkpoint stores nothing
    assert store.count("events") == 0
    while proc.step():
        pass
    ids = sorted(r for (r,) in store.query("SELECT record_id FROM events"))
    assert ids == list(range(301, 1201)) and proc.checkpoint == store.checkpoint() == 1200
    spool.close()
    store.close()


@pytest.mark.integration
def test_upgraded_service_resumes_at_its_checkpoint(tmp_path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    old_spool(data / "spool.db", range(1, 2001), trimmed=100)
    store = open_store("sqlite:dcsentry.db", data)
    store.commit_batch(Batch(checkpoint=1500))
    store.close()
    svc = Serve(data).start()
    try:
        send_tcp(svc.ports["tcp"], (message(i) for i in range(2001, 3001)))
        wait_for(lambda: svc.spool_rows() >= 3000, what="the new messages in the spool")
        wait_for(svc.caught_up, what="the processor to catch up")
        ids = sorted(r for (r,) in svc.query("SELECT record_id FROM events"))
        assert ids == list(range(1501, 3001))  # nothing before the checkpoint again, nothing lost
    finally:
        assert svc.stop() == 0
