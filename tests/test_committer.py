"""The processor's store writer (runtime/committer.py) on a real SQLite store: batches are written in
order, one at a time; what a batch held when it was handed over is what is stored, whatever the
detectors change afterwards; a failed write is raised, not lost; and the processor's checkpoint only
names a batch once it is stored."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from dcsentry.runtime.committer import Committer
from dcsentry.store.rows import Batch
from dcsentry.store.store import open_store
from test_store import alert


def test_batches_are_written_in_order_and_done_runs_after_each_commit(tmp_path: Path) -> None:
    store = open_store("sqlite:dcsentry.db", tmp_path)
    committer = Committer(store)
    seen: list[tuple[int, int]] = []
    for n in range(1, 21):
        committer.submit(Batch(checkpoint=n), lambda n=n: seen.append((n, store.checkpoint())))
    committer.close()
    assert seen == [(n, n) for n in range(1, 21)]  # each `done` saw its own batch stored, in order
    assert store.checkpoint() == 20
    store.close()


def test_the_stored_alert_is_the_state_it_had_when_handed_over(tmp_path: Path) -> None:
    store = open_store("sqlite:dcsentry.db", tmp_path)
    committer = Committer(store)
    a = alert(count=3)
    committer.submit(Batch(alerts={a.id: a}))
    a.count, a.description = 99, "grown by the next batch"  # the detectors go on while it is written
    a.details["tries"] = list(range(1000))
    committer.flush()
    row = store.query("SELECT count, description, body FROM alerts WHERE id = ?", (a.id,))[0]
    assert row[0] == 3 and row[1] == "3 tries" and "tries" not in json.loads(row[2]).get("details", {})
    committer.close()
    store.close()


def test_a_failed_write_is_raised_and_nothing_after_it_is_written(tmp_path: Path) -> None:
    store = open_store("sqlite:dcsentry.db", tmp_path)
    committer = Committer(store)
    committer.submit(Batch(checkpoint=1))
    committer.flush()
    store.execute("CREATE TRIGGER refuse BEFORE INSERT ON dc_minutes BEGIN SELECT RAISE(ABORT, 'disk says no'); END")
    marks = {("DC01", 4776): [1.0, 2.0, datetime(2026, 1, 1, tzinfo=UTC), 5]}
    committer.submit(Batch(health=marks, checkpoint=2))
    with pytest.raises(Exception, match="disk says no"):
        committer.flush()
    assert store.checkpoint() == 1  # the failed batch's progress went with its transaction
    committer.close()
    store.close()
