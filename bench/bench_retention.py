"""Store size per DC per day for each `[serve] raw_events` choice (none, detector, all).

    .venv/bin/python bench/bench_retention.py [--users 2000] [--hours 24] [--pg postgresql://127.0.0.1:5432/test]

One synthetic domain day (`dcsentry synth`'s generator: 2 DCs, every attack, seed 1) goes through
the processor's own step (runtime.step.DetectionStep: detection, activities, DC health) into a fresh store once per
choice, in processor-sized batches of 5,000; then the database's size is read: SQLite file pages
(after a VACUUM, WAL checkpointed) and, with --pg, PostgreSQL's table + index bytes of a schema made
for the run. Why a bench and not a formula: what `detector` keeps depends on which events grow an
activity, and `none` on which end up as evidence. Results: bench/out/retention.json.
"""

from __future__ import annotations

import argparse
import secrets
import sqlite3
import tempfile
import time
from pathlib import Path

from common import machine, save

from dcsentry.config import Config
from dcsentry.detectors.baseline import Baseline
from dcsentry.detectors.engine import DetectionEngine
from dcsentry.model import Origin, WindowsEvent
from dcsentry.audit.requirements import health_key
from dcsentry.store.rows import RAW_EVENTS, Batch, stored_event_ids
from dcsentry.store.store import open_store
from dcsentry.synth import generate

BATCH = 5000
STORED = stored_event_ids()
TABLES = ("events", "activities", "alerts", "outbox", "dc_health", "dc_minutes", "host_aliases")


def day(users: int, hours: float) -> list[WindowsEvent]:
    events, _ = generate(seed=1, hours=hours, users=users, dcs=2, attacks="all")
    out = []
    for i, ev in enumerate(events, 1):
        ev.origin = Origin("tcp://10.0.0.5:50000", i)  # as the processor names a syslog peer's message
        out.append(ev)
    return out


def add(batch: Batch, engine: DetectionEngine, ev: WindowsEvent, rx: float) -> None:
    """The processor's step for one event (runtime.step.DetectionStep.process, restated here so this bench does
    not follow the package's moves): the catalogue event with its DC-health mark, detection, activities."""
    if ev.event_id in STORED:
        batch.events.append((ev, rx, False))
        key = health_key(ev.event_id, ev.channel, ev.computer)
        if key is not None:
            h = batch.health.setdefault(key, [rx, rx, "", 0])
            h[1], h[2], h[3] = max(h[1], rx), ev.time.isoformat(), h[3] + 1
    before = engine.activities
    for alert in engine.feed(ev):
        batch.alerts[alert.id] = alert
    if engine.activities != before:
        batch.activities.extend(engine.last_activities)
    batch.aliases.update(engine.ctx.hosts.fresh)
    engine.ctx.hosts.fresh.clear()


def fill(url: str, folder: Path, policy: str, events: list[WindowsEvent]) -> dict:
    """The processor's step over `events` into a fresh store with `policy`; rows kept per table."""
    store = open_store(url, folder, raw_events=policy)
    engine = DetectionEngine(Config().detection, Baseline(), keep_alerts=False)
    t0 = time.perf_counter()
    for first in range(0, len(events), BATCH):
        batch = Batch()
        for ev in events[first:first + BATCH]:
            add(batch, engine, ev, ev.time.timestamp())
        engine.describe_pending()
        batch.checkpoint = first + BATCH
        store.commit_batch(batch)
    tail = Batch()
    tail.alerts.update((a.id, a) for a in engine.finish())
    tail.activities.extend(engine.last_activities)
    store.commit_batch(tail)
    rows = {t: int(store.query(f"SELECT COUNT(*) FROM {t}")[0][0]) for t in TABLES}
    seconds = time.perf_counter() - t0
    store.close()
    return {"rows": rows, "seconds": round(seconds, 1)}


def sqlite_bytes(path: Path) -> int:
    db = sqlite3.connect(path)
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.execute("VACUUM")
    size = db.execute("PRAGMA page_count").fetchone()[0] * db.execute("PRAGMA page_size").fetchone()[0]
    db.close()
    return int(size)


def pg_bytes(url: str) -> int:
    import psycopg

    with psycopg.connect(url) as conn:
        return int(conn.execute("SELECT COALESCE(SUM(pg_total_relation_size(c.oid)), 0) FROM pg_class c "
                                "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = current_schema() "
                                "AND c.relkind = 'r'").fetchone()[0])


def pg_schema(base: str) -> tuple[str, str]:
    import psycopg

    schema = f"bench_{secrets.token_hex(4)}"
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    sep = "&" if "?" in base else "?"
    return f"{base}{sep}options=-csearch_path%3D{schema}", schema


def drop_schema(base: str, schema: str) -> None:
    import psycopg

    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--users", type=int, default=2000)
    ap.add_argument("--hours", type=float, default=24.0)
    ap.add_argument("--dcs", type=int, default=2, help="DCs of the domain (sizes are divided by it)")
    ap.add_argument("--pg", default="", help="also measure on this PostgreSQL server (a schema per choice)")
    args = ap.parse_args()
    events = day(args.users, args.hours)
    scale = 24.0 / args.hours / args.dcs  # -> per DC per day
    print(f"{len(events):,} events, {args.users} users, {args.dcs} DCs, {args.hours} h", flush=True)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for policy in RAW_EVENTS:
            path = Path(tmp) / f"{policy}.db"
            r = fill(f"sqlite:///{path}", Path(tmp), policy, events)
            r.update({"policy": policy, "sqlite_bytes": sqlite_bytes(path)})
            r["sqlite_mb_per_dc_day"] = round(r["sqlite_bytes"] * scale / 1e6, 1)
            if args.pg:
                url, schema = pg_schema(args.pg)
                try:
                    fill(url, Path(tmp), policy, events)
                    r["pg_bytes"] = pg_bytes(url)
                    r["pg_mb_per_dc_day"] = round(r["pg_bytes"] * scale / 1e6, 1)
                finally:
                    drop_schema(args.pg, schema)
            rows.append(r)
            print(f"{policy:>8}: {r['rows']['events']:>8,} events {r['rows']['activities']:>8,} activities "
                  f"{r['rows']['alerts']:>4} alerts  SQLite {r['sqlite_mb_per_dc_day']:7.1f} MB/DC/day"
                  + (f"  PostgreSQL {r['pg_mb_per_dc_day']:7.1f} MB/DC/day" if args.pg else "")
                  + f"  ({r['seconds']} s)", flush=True)
    result = {"machine": machine(), "args": vars(args), "events": len(events), "rows": rows}
    print(f"results: {save('retention', result)}")


if __name__ == "__main__":
    main()
