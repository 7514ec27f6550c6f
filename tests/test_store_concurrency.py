"""Several processes on one store, as detect workers and web nodes share one PostgreSQL database
(and the service's two processes share one SQLite file): migrations run once, overlapping batches
(a redelivery to a second worker) store each event and alert once and queue each alert once, and
a store whose connection the server killed carries on."""

from __future__ import annotations

import multiprocessing as mp
import random
from datetime import datetime, timedelta, timezone
from pathlib import Path

import psycopg
import pytest
from test_store import alert, event

from dcsentry.alerts import Alert
from dcsentry.store.migrations import MIGRATIONS
from dcsentry.store.rows import Batch
from dcsentry.store.store import open_store
from storekit import pg_database, pg_url, store_url  # noqa: F401 (fixtures)

T0 = datetime(2024, 1, 18, 5, 4, 59, tzinfo=timezone.utc)
BATCHES = 30
T_LAST = datetime(2024, 1, 18, 6, 0, tzinfo=timezone.utc)  # the last event time a health mark carries


def batch(i: int) -> Batch:
    """Batch i: 200 events (half shared with batch i+1), two alerts of its own, one health row."""
    events = [(event(r, computer=f"DC{r % 3}"), 1.0, False) for r in range(i * 100, i * 100 + 200)]
    alerts: dict[str, Alert] = {}
    for k in range(2):
        a = alert(count=i + 1)
        a.key = f"WS{i}|user{k}"
        a.start = T0 + timedelta(minutes=i)
        alerts[a.id] = a
    return Batch(events=events, alerts=alerts, health={("DC1", 4776): [1.0, 2.0 + i, T_LAST, 1]}, progress={f"w{i % 4}": i})


def _open(url: str, folder: str, go: "mp.synchronize.Event", out: "mp.Queue") -> None:
    go.wait(30)
    try:
        open_store(url, Path(folder)).close()
        out.put("ok")
    except Exception as exc:  # reported to the test, which fails with it
        out.put(repr(exc))


def _write(url: str, folder: str, seed: int, go: "mp.synchronize.Event", out: "mp.Queue") -> None:
    try:
        store = open_store(url, Path(folder))
        order = list(range(BATCHES))
        random.Random(seed).shuffle(order)
        go.wait(30)
        for i in order:
            store.commit_batch(batch(i))
        store.close()
        out.put("ok")
    except Exception as exc:
        out.put(repr(exc))


def run_all(target, args_per_proc: list[tuple]) -> list[str]:
    ctx = mp.get_context("spawn")
    go, out = ctx.Event(), ctx.Queue()
    procs = [ctx.Process(target=target, args=(*a, go, out)) for a in args_per_proc]
    for p in procs:
        p.start()
    go.set()
    results = [out.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(30)
    return results


@pytest.mark.integration
def test_processes_starting_together_migrate_once(store_url, tmp_path):
    assert run_all(_open, [(store_url, str(tmp_path))] * 4) == ["ok"] * 4
    store = open_store(store_url, tmp_path)
    rows = store.query("SELECT version FROM schema_version ORDER BY version")
    assert [v for (v,) in rows] == [v for v, _, _ in MIGRATIONS]
    store.close()


@pytest.mark.integration
def test_overlapping_batches_from_two_writers_store_everything_once(store_url, tmp_path):
    assert run_all(_write, [(store_url, str(tmp_path), seed) for seed in (1, 2)]) == ["ok", "ok"]
    store = open_store(store_url, tmp_path)
    assert store.count("events") == BATCHES * 100 + 100
    assert store.count("alerts") == BATCHES * 2
    assert store.count("outbox") == BATCHES * 2  # the second writer's identical alert queues nothing
    assert store.dc_health() == [{"dc": "DC1", "event_id": 4776, "first_seen": 1.0, "last_seen": 2.0 + BATCHES - 1,
                                  "last_event_utc": T_LAST.isoformat(), "count": 2 * BATCHES}]
    assert {n: store.progress(n) for n in ("w0", "w1", "w2", "w3")}.keys() == {"w0", "w1", "w2", "w3"}
    store.close()


def test_a_killed_postgresql_connection_is_replaced(pg_url, tmp_path):
    store = open_store(pg_url, tmp_path)
    store.commit_batch(batch(0))
    (pid,), = store.query("SELECT pg_backend_pid()")
    with psycopg.connect(pg_url, autocommit=True) as admin:
        assert admin.execute("SELECT pg_terminate_backend(%s)", (pid,)).fetchone()[0]
    store.commit_batch(batch(1))  # the first try meets the dead connection; the retry reconnects
    assert store.count("events") == 300
    assert store.query("SELECT pg_backend_pid()")[0][0] != pid
    store.close()
