"""Store write rate, SQLite against PostgreSQL: what the detect side's `commit_batch` sustains.

    /tmp/venv/bin/python bench/bench_store.py          # about a minute at the defaults
        [--events 200000] [--batches 5000,500] [--alerts 20000] [--writers 1,2]
        [--pg postgresql://127.0.0.1:5432/test] [--only sqlite,postgresql]

The events are what the service stores: bench_serve's 4776 messages (unique record ids, four DCs,
5,000 accounts, 3,000 workstations) decoded by the service's own decoder, with the activities the
activity builder makes of them and the DC-health rows, all built before the clock starts; each
`commit_batch` writes one batch of them plus the progress position in one transaction, as the
processor does (5,000 rows is its batch; 500 is a lightly loaded step). Rows:

  events/s     events (+ their activities, health, progress) per second through commit_batch;
  writers N    N processes committing disjoint streams at once (detect workers sharing the store);
  alerts/s     alert upserts per second, 100 per batch, each one a new revision (a change: the
               row is updated and an outbox row queued); `replays/s` the same upserts again with
               nothing changed (a redelivery: compared in the statement, nothing written);
  bytes/event  the database's growth over the events stored (tables and indexes);
  CPU µs/event the client's CPU (SQLite: all of it) and the PostgreSQL backend's, per event or
               upsert: steadier than rates on a shared, loaded machine.

SQLite: a file in a temporary folder (WAL, synchronous=NORMAL, as the service opens it).
PostgreSQL: a database this run creates on --pg's server and drops at the end (the machine's
stock server: fsync on, synchronous_commit on). Results: bench/out/store.json.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import secrets
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from common import machine, save
from loadgen import message

from dcsentry.activities.builder import ActivityBuilder
from dcsentry.alerts import Alert, Evidence
from dcsentry.audit.requirements import health_key
from dcsentry.model import Origin
from dcsentry.formats.siem import parse_with_layout as decode_message
from dcsentry.store.rows import Batch
from dcsentry.store.store import open_store


def batches(first: int, total: int, size: int) -> list[Batch]:
    """Processor-shaped batches of the events first..first+total-1, built ahead of the clock."""
    builder = ActivityBuilder()
    out = []
    for start in range(first, first + total, size):
        b = Batch(progress={f"bench-{first}": start + size})
        for i in range(start, min(start + size, first + total)):
            _, ev = decode_message(message(i), Origin("tcp://10.0.0.5:5000", i))
            b.events.append((ev, time.time()))
            b.activities.extend(builder.feed(ev))
            key = health_key(ev.event_id, ev.channel, ev.computer)
            if key is not None:
                h = b.health.setdefault(key, [1.0, 1.0, "", 0])
                h[3] += 1
        out.append(b)
    out[-1].activities.extend(builder.flush())
    return out


def alert_batches(n: int, per: int, revision: int) -> list[Batch]:
    from datetime import datetime, timezone

    t0 = datetime(2024, 3, 4, tzinfo=timezone.utc)
    out = []
    for start in range(0, n, per):
        b = Batch()
        for i in range(start, min(start + per, n)):
            a = Alert(type="brute-force", key=f"WS{i}|user{i}", title="Brute force", description=f"{revision} tries",
                      severity="medium", technique="T1110.001", start=t0, end=t0 + timedelta(seconds=revision),
                      count=revision + 1, revision=revision, evidence=[Evidence(4776, "DC01", i, t0)])
            b.alerts[a.id] = a
        out.append(b)
    return out


def _backend_cpu(pid: int | None) -> float:
    """CPU seconds of the PostgreSQL backend serving our connection (same machine: /proc)."""
    if pid is None:
        return 0.0
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _timed(url: str, folder: str, items: list[Batch], cpu: dict | None = None) -> float:
    """Wall seconds of committing `items`; `cpu` gets the client's and the server backend's CPU
    seconds (SQLite runs in the client), which a loaded machine distorts much less than wall time."""
    store = open_store(url, Path(folder))
    pid = store.query("SELECT pg_backend_pid()")[0][0] if store.kind == "postgresql" else None
    s0, c0, t0 = _backend_cpu(pid), time.process_time(), time.perf_counter()
    for b in items:
        store.commit_batch(b)
    dt = time.perf_counter() - t0
    if cpu is not None:
        cpu["client"], cpu["server"] = time.process_time() - c0, _backend_cpu(pid) - s0
    store.close()
    return dt


def _writer(url: str, folder: str, first: int, total: int, size: int, go, out) -> None:
    items = batches(first, total, size)
    store = open_store(url, Path(folder))
    go.wait()
    t0 = time.perf_counter()
    for b in items:
        store.commit_batch(b)
    out.put(time.perf_counter() - t0)
    store.close()


def parallel(url: str, folder: str, writers: int, total: int, size: int) -> float:
    """Aggregate events/s of `writers` processes, each committing its own share at once."""
    ctx = mp.get_context("spawn")
    go, out = ctx.Event(), ctx.Queue()
    per = total // writers
    procs = [ctx.Process(target=_writer, args=(url, folder, 10_000_000 * (w + 1), per, size, go, out))
             for w in range(writers)]
    for p in procs:
        p.start()
    time.sleep(0.5)
    go.set()
    times = [out.get(timeout=600) for _ in procs]
    for p in procs:
        p.join()
    return per * writers / max(times)


def size_bytes(url: str, folder: Path) -> int:
    store = open_store(url, folder)
    if store.kind == "postgresql":
        n = store.query("SELECT pg_database_size(current_database())")[0][0]
    else:
        store.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        n = sum(p.stat().st_size for p in folder.glob("bench*.db*"))
    store.close()
    return int(n)


def fresh(kind: str, folder: Path, pg: str, made: list[str]) -> str:
    if kind == "sqlite":
        for p in folder.glob("bench*.db*"):
            p.unlink()
        return f"sqlite:///{folder / 'bench.db'}"
    import psycopg

    name = f"dcsentry_bench_{secrets.token_hex(4)}"
    with psycopg.connect(pg, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    made.append(name)
    return pg.rsplit("/", 1)[0] + "/" + name


def run_backend(kind: str, args, folder: Path, made: list[str]) -> dict:
    res: dict = {}
    for size in args.batches:
        url = fresh(kind, folder, args.pg, made)
        items = batches(1, args.events, size)
        empty = size_bytes(url, folder)  # migrated, nothing stored
        cpu: dict = {}
        dt = _timed(url, str(folder), items, cpu)
        res[f"events_per_s_batch_{size}"] = round(args.events / dt)
        res[f"cpu_us_per_event_batch_{size}"] = {k: round(v * 1e6 / args.events, 1) for k, v in cpu.items()}
        if size == args.batches[0]:
            res["bytes_per_event"] = round((size_bytes(url, folder) - empty) / args.events)
    for w in args.writers:
        url = fresh(kind, folder, args.pg, made)
        res[f"events_per_s_writers_{w}"] = round(parallel(url, str(folder), w, args.events, args.batches[0]))
    url = fresh(kind, folder, args.pg, made)
    _timed(url, str(folder), alert_batches(args.alerts, 100, 0))
    grown = alert_batches(args.alerts, 100, 1)
    for name in ("alert_upserts", "alert_replays"):
        cpu = {}
        res[f"{name}_per_s"] = round(args.alerts / _timed(url, str(folder), grown, cpu))
        per = name.removeprefix("alert_")[:-1]  # upsert, replay
        res[f"cpu_us_per_{per}"] = {k: round(v * 1e6 / args.alerts, 1) for k, v in cpu.items()}
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--events", type=int, default=200_000)
    ap.add_argument("--batches", default="5000,500")
    ap.add_argument("--alerts", type=int, default=20_000)
    ap.add_argument("--writers", default="1,2")
    ap.add_argument("--pg", default="postgresql://127.0.0.1:5432/test")
    ap.add_argument("--only", default="sqlite,postgresql")
    args = ap.parse_args()
    args.batches = [int(x) for x in args.batches.split(",")]
    args.writers = [int(x) for x in args.writers.split(",")]
    result: dict = {"machine": machine(), "events": args.events, "alerts": args.alerts}
    made: list[str] = []
    try:
        with tempfile.TemporaryDirectory(prefix="bench-store-") as tmp:
            for kind in args.only.split(","):
                result[kind] = run_backend(kind, args, Path(tmp), made)
                print(kind, result[kind], flush=True)
            if "postgresql" in args.only:
                import psycopg

                with psycopg.connect(args.pg, autocommit=True) as conn:
                    result["postgresql_server"] = {k: conn.execute(f"SHOW {k}").fetchone()[0] for k in
                                                   ("server_version", "fsync", "synchronous_commit", "shared_buffers")}
    finally:
        if made:
            import psycopg

            with psycopg.connect(args.pg, autocommit=True) as conn:
                for name in made:
                    conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    print(save("store", result))


if __name__ == "__main__":
    main()
