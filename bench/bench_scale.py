"""Throughput of the distributed mode: an ingest node, then 1 and 2 detect workers.

    /tmp/venv/bin/python bench/bench_scale.py     # about 2 minutes; bench/out/scale.json
        [--users 1000] [--hours 24] [--partitions 16] [--workers 1,2] [--pg postgresql://127.0.0.1:5432/test]

A private nats-server (JetStream, temporary store) on an ephemeral port; the PostgreSQL store in a
database made for the run and dropped after it. The events are one `dcsentry synth` domain (all
attacks, seed 1) rendered as RFC 5424 + evtx-JSON syslog, like bench_serve's messages.

1. ingest: one `dcsentry serve --role ingest` process; one TCP connection sends every message;
   measured until the stream holds them all (JetStream-acknowledged, which is when the node reads
   on): decode + route + publish, messages/s.
2. detect: for each worker count, a fresh store schema (checkpoints at 0) and that many
   `dcsentry serve --role detect` processes on the stream filled in (1); measured from when they
   are all up until every partition's checkpoint in the store reaches its last message. CPU % of
   the workers, nats-server and PostgreSQL over that window, from /proc, say what bounds the rate.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import secrets
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from common import ROOT, dcsentry_cmd, machine, save

sys.path.insert(0, str(ROOT / "tests"))
from natskit import NatsServer  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")


def cpu_of(pids: list[int]) -> float:
    """CPU seconds so far of these processes and their children that were waited for."""
    total = 0.0
    for pid in pids:
        try:
            f = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += sum(int(x) for x in f[11:15]) / TICK
        except OSError:
            pass
    return total


def busy() -> float:
    """CPU seconds the whole machine spent busy (all cores) since boot."""
    v = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    return (sum(v) - v[3] - v[4]) / TICK


def pids_named(name: str) -> list[int]:
    out = subprocess.run(["pgrep", "-f", name], capture_output=True, text=True).stdout.split()
    return [int(p) for p in out]


def tree(pid: int) -> list[int]:
    kids = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()
    return [pid] + [q for k in kids for q in tree(int(k))]


def render(users: int, hours: float) -> list[bytes]:
    from dcsentry.synth import generate
    from dcsentry.synth.render import to_evtx_json

    events, _ = generate(seed=1, hours=hours, users=users, dcs=2, attacks="all")
    out = []
    for ev in events:
        msg = b"<14>1 - " + ev.computer.split(".")[0].encode() + b" dcsentry-bench - - - " + to_evtx_json(ev)
        out.append(b"%d %s" % (len(msg), msg))
    return out


def start(args: list[str], log: Path) -> subprocess.Popen:
    f = open(log, "w")
    p = subprocess.Popen(dcsentry_cmd() + ["serve", *args], stdout=f, stderr=subprocess.STDOUT, text=True)
    return p


def wait_line(log: Path, pattern: str, timeout: float = 60) -> re.Match:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        m = re.search(pattern, log.read_text())
        if m:
            return m
        time.sleep(0.05)
    raise SystemExit(f"{log}: no {pattern!r}:\n{log.read_text()[-3000:]}")


async def stream_state(url: str, stream: str, partitions: int, prefix: str) -> tuple[int, dict[int, int]]:
    import nats

    nc = await nats.connect(url)
    js = nc.jetstream()
    info = await js.stream_info(stream)
    last = {}
    for p in range(partitions):
        try:
            last[p] = (await js.get_last_msg(stream, f"{prefix}.events.{p}")).seq
        except Exception:
            pass
    await nc.close()
    return info.state.messages, last


def pg_database(base: str) -> tuple[str, str]:
    import psycopg
    from urllib.parse import urlsplit, urlunsplit

    name = f"dcsentry_bench_{secrets.token_hex(4)}"
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return name, urlunsplit(urlsplit(base)._replace(path="/" + name))


def drop_database(base: str, name: str) -> None:
    import psycopg

    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--users", type=int, default=1000)
    ap.add_argument("--hours", type=float, default=24.0)
    ap.add_argument("--partitions", type=int, default=16)
    ap.add_argument("--workers", default="1,2")
    ap.add_argument("--pg", default=os.environ.get("DCSENTRY_TEST_PG", "postgresql://127.0.0.1:5432/test"))
    a = ap.parse_args()
    import psycopg

    tmp = Path(tempfile.mkdtemp(prefix="bench-scale-"))
    server = NatsServer(tmp / "js").start()
    dbname, pg = pg_database(a.pg)
    prefix = f"b{secrets.token_hex(3)}"
    cfg = tmp / "bus.toml"
    cfg.write_text(f"[bus]\nname = \"{prefix}\"\npartitions = {a.partitions}\nbatch = 2000\n"
                   "[health]\ncheck_interval = 3600.0\n")
    result: dict = {"machine": machine(), "partitions": a.partitions, "users": a.users, "hours": a.hours}
    try:
        msgs = render(a.users, a.hours)
        n = len(msgs)
        result["messages"] = n
        print(f"{n} messages rendered", flush=True)
        # -- 1. ingest ------------------------------------------------------------------------------
        log = tmp / "ingest.log"
        with psycopg.connect(pg, autocommit=True) as conn:
            conn.execute("CREATE SCHEMA IF NOT EXISTS ingest")
        ing = start(["--role", "ingest", "--bus", server.url, "--store", pg + "?options=-csearch_path%3Dingest",
                     "--config", str(cfg), "--data-dir", str(tmp / "ingest"), "--syslog-udp", "off",
                     "--syslog-tcp", "127.0.0.1:0", "--web", "off"], log)
        port = int(wait_line(log, r"syslog-tcp listening on [\d.]+:(\d+)").group(1))
        wait_line(log, r"data in")
        c0, nats_pid = cpu_of(tree(ing.pid)), server.proc.pid
        n0, b0, load = cpu_of([nats_pid]), busy(), os.getloadavg()[0]
        t0 = time.perf_counter()
        sender = threading.Thread(target=lambda: socket.create_connection(("127.0.0.1", port)).sendall(b"".join(msgs)))
        sender.start()
        stream = f"{prefix}-events"
        while asyncio.run(stream_state(server.url, stream, 0, prefix))[0] < n:
            time.sleep(0.1)
        dt = time.perf_counter() - t0
        ci, cn = cpu_of(tree(ing.pid)) - c0, cpu_of([nats_pid]) - n0
        result["ingest"] = {"msgs_per_s": round(n / dt), "seconds": round(dt, 2),
                            "cpu_ingest_pct": round(100 * ci / dt), "cpu_nats_pct": round(100 * cn / dt),
                            "us_cpu_per_msg_ingest": round(1e6 * ci / n, 1), "us_cpu_per_msg_nats": round(1e6 * cn / n, 1),
                            "other_cpu_pct": round(100 * (busy() - b0 - ci - cn) / dt), "load_1m": round(load, 2)}
        print("ingest", result["ingest"], flush=True)
        ing.terminate()
        ing.wait(60)
        _, last = asyncio.run(stream_state(server.url, stream, a.partitions, prefix))
        # -- 2. detect ------------------------------------------------------------------------------
        result["detect"] = []
        for w in [int(x) for x in a.workers.split(",")]:
            schema = f"w{w}_{secrets.token_hex(3)}"
            with psycopg.connect(pg, autocommit=True) as conn:
                conn.execute(f'CREATE SCHEMA "{schema}"')
            url = pg + f"?options=-csearch_path%3D{schema}"
            procs, logs = [], []
            for i in range(w):
                logs.append(tmp / f"detect{w}-{i}.log")
                procs.append(start(["--role", "detect", "--bus", server.url, "--store", url, "--config", str(cfg),
                                    "--data-dir", str(tmp / f"detect{w}-{i}"), "--web", "off"], logs[-1]))
            for lg in logs:
                wait_line(lg, r"detect worker")
            pg_pids = pids_named("postgres")
            all_pids = [q for p in procs for q in tree(p.pid)]
            c0, n0, g0 = cpu_of(all_pids), cpu_of([nats_pid]), cpu_of(pg_pids)
            b0, load = busy(), os.getloadavg()[0]
            t0 = time.perf_counter()
            names = {f"bus:{prefix}:p{p}": s for p, s in last.items()}
            while True:
                with psycopg.connect(url, autocommit=True) as conn:
                    rows = dict(conn.execute("SELECT name, value FROM progress").fetchall())
                if all(rows.get(k, 0) >= s for k, s in names.items()):
                    break
                if time.perf_counter() - t0 > 600:
                    raise SystemExit(f"{w} worker(s) did not finish: {rows}")
                time.sleep(0.1)
            dt = time.perf_counter() - t0
            with psycopg.connect(url, autocommit=True) as conn:
                alerts = conn.execute("SELECT COUNT(*) FROM alerts WHERE kind = 'security'").fetchone()[0]
                events = conn.execute("SELECT COUNT(*) FROM events").fetchone()[0]
                size = conn.execute("SELECT SUM(pg_total_relation_size(c.oid)) FROM pg_class c JOIN pg_namespace n "
                                    "ON n.oid = c.relnamespace WHERE n.nspname = %s AND c.relkind = 'r'",
                                    (schema,)).fetchone()[0]
            cw, cn, cg = cpu_of(all_pids) - c0, cpu_of([nats_pid]) - n0, cpu_of(pg_pids) - g0
            row = {"workers": w, "msgs_per_s": round(n / dt), "seconds": round(dt, 2), "alerts": alerts,
                   "events_stored": events, "store_bytes_per_msg": round(size / n), "cpu_workers_pct": round(100 * cw / dt),
                   "cpu_nats_pct": round(100 * cn / dt), "cpu_postgres_pct": round(100 * cg / dt),
                   "us_cpu_per_msg_workers": round(1e6 * cw / n, 1), "us_cpu_per_msg_postgres": round(1e6 * cg / n, 1),
                   "other_cpu_pct": round(100 * (busy() - b0 - cw - cn - cg) / dt), "load_1m": round(load, 2)}
            result["detect"].append(row)
            print("detect", row, flush=True)
            for p in procs:
                p.terminate()
            for p in procs:
                p.wait(60)
        print(save("scale", result))
    finally:
        server.stop()
        drop_database(a.pg, dbname)


if __name__ == "__main__":
    main()
