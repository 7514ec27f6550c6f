"""Alert list latency of the REST API with 100k alerts in the store.

    /tmp/venv/bin/python bench/bench_web.py [--alerts 100000] [--requests 300] [--threads 8]

The store is filled directly (alerts shaped as the detectors write them: 7 types, three severities,
80 % open, 5 % health alerts, starts spread over 90 days, accounts from 5,000 users and hosts from
2,000 machines, 10 evidence items each), then a real `dcsentry serve` starts on it (`--web` on
127.0.0.1, the syslog listeners on ephemeral ports) and builds its entity index. Requests are real
HTTP over keep-alive connections with an admin bearer token: for each query shape, `--requests`
requests one after another (p50/p95/p99/max), then all shapes mixed from `--threads` clients at
once (throughput and p99 under contention). Results: bench/out/web.json.
"""

from __future__ import annotations

import argparse
import random
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx
import msgspec

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import dcsentry_cmd, machine, save  # noqa: E402

from dcsentry.store.store import Store, open_store  # noqa: E402
from dcsentry.store.tokens import create_token  # noqa: E402

TYPES = ("brute-force", "password-spray", "account-enumeration", "honeytoken-activity", "sensitive-group-addition",
         "suspicious-service-creation", "remote-code-execution")
T0 = datetime(2024, 1, 1, tzinfo=timezone.utc)


def iso(t: datetime) -> str:
    return t.isoformat().replace("+00:00", "Z")


def fill(store: Store, n: int, seed: int = 1) -> None:
    rnd = random.Random(seed)
    enc = msgspec.json.Encoder()
    rows = []
    for i in range(n):
        health = rnd.random() < 0.05
        type_ = f"health:{rnd.choice(('ntlm-auditing', 'udp-drops'))}" if health else rnd.choice(TYPES)
        start = T0 + timedelta(seconds=rnd.uniform(0, 90 * 86400))
        end = start + timedelta(seconds=rnd.expovariate(1 / 600))
        aid = f"{i:024x}"
        accounts = [f"user{rnd.randrange(5000)}" for _ in range(rnd.randint(1, 3))]
        hosts = [f"WS{rnd.randrange(2000):04d}"]
        dcs = [f"DC0{rnd.randrange(1, 5)}"]
        sev = rnd.choices(("low", "medium", "high"), (2, 6, 2))[0]
        status = rnd.choices(("open", "closed", "suppressed"), (80, 15, 5))[0]
        count = rnd.randint(1, 5000)
        body = {"id": aid, "type": type_, "key": hosts[0], "kind": "health" if health else "security",
                "title": type_.replace("-", " ").capitalize(), "description": f"{count} attempts from {hosts[0]} "
                f"against {', '.join(accounts)} via {dcs[0]}", "severity": sev, "technique": "T1110",
                "external_id": 2023, "start": iso(start), "end": iso(end), "count": count,
                "entities": {"accounts": accounts, "hosts": hosts, "dcs": dcs}, "protocol": "NTLM",
                "outcome": None, "learning": False, "status": status, "revision": 0,
                "evidence": [{"event_id": 4776, "computer": f"{dcs[0]}.corp.example", "record_id": i * 10 + k,
                              "time": iso(start), "origin": "tcp://10.0.0.1:5000"} for k in range(10)],
                "details": {}}
        rows.append((aid, type_, body["kind"], sev, status, body["start"], body["end"], count, 0, body["title"],
                     body["description"], enc.encode(body).decode(), time.time() - 86400))
    with store.transaction() as tx:
        for r in rows:
            tx.execute("INSERT INTO alerts (id, type, kind, severity, status, start_utc, end_utc, count, revision, "
                       "title, description, body, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", r)


def shapes(rnd: random.Random) -> dict[str, dict]:
    since = T0 + timedelta(days=40)
    return {
        "newest 50": {},
        "status=open": {"status": "open"},
        "type=honeytoken-activity": {"type": "honeytoken-activity"},
        "severity=high&status=open": {"severity": "high", "status": "open"},
        "kind=health": {"kind": "health"},
        "entity=<user>": {"entity": lambda: f"user{rnd.randrange(5000)}"},
        "entity=<host>&status=open": {"entity": lambda: f"WS{rnd.randrange(2000):04d}", "status": "open"},
        "one day (since/until)": {"since": iso(since), "until": iso(since + timedelta(days=1))},
        "limit=500": {"limit": 500},
    }


def params_of(spec: dict) -> dict:
    return {k: (v() if callable(v) else v) for k, v in spec.items()}


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(round(q * (len(s) - 1))))]


def summarise(ms: list[float]) -> dict:
    return {"n": len(ms), "p50_ms": round(statistics.median(ms), 2), "p95_ms": round(pct(ms, 0.95), 2),
            "p99_ms": round(pct(ms, 0.99), 2), "max_ms": round(max(ms), 2)}


def http_client(port: int, token: str) -> httpx.Client:
    """TCP_NODELAY on both ends (the service sets it on its listener): otherwise a two-part write
    waits for the other side's delayed ACK (40 ms on Linux) on a keep-alive connection."""
    transport = httpx.HTTPTransport(socket_options=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)])
    return httpx.Client(base_url=f"http://127.0.0.1:{port}", headers={"Authorization": f"Bearer {token}"},
                        timeout=60, transport=transport)


def timed(c: httpx.Client, params: dict) -> tuple[float, dict]:
    t = time.perf_counter()
    r = c.get("/api/v1/alerts", params=params)
    ms = (time.perf_counter() - t) * 1000
    r.raise_for_status()
    return ms, r.json()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--alerts", type=int, default=100_000)
    ap.add_argument("--requests", type=int, default=300, help="sequential requests per query shape")
    ap.add_argument("--threads", type=int, default=8, help="concurrent clients in the mixed run")
    ap.add_argument("--mixed-seconds", type=float, default=20.0)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="dcsentry-bench-web-"))
    proc = None
    try:
        store = open_store("sqlite:dcsentry.db", work)
        t = time.perf_counter()
        fill(store, args.alerts)
        fill_s = time.perf_counter() - t
        token, _ = create_token(store, "bench", "admin", "bench")
        store.close()
        print(f"filled {args.alerts} alerts in {fill_s:.1f} s")
        proc = subprocess.Popen([*dcsentry_cmd(), "serve", "--data-dir", str(work), "--web", "127.0.0.1:0",
                                 "--syslog-udp", "off", "--syslog-tcp", "127.0.0.1:0"],
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        port = None
        for line in proc.stdout:
            m = re.match(r"web listening on http://[\d.]+:(\d+)", line)
            port = int(m.group(1)) if m else port
            if line.startswith("data in"):
                break
        assert port, "serve did not announce its web port"
        threading.Thread(target=lambda: [None for _ in proc.stdout], daemon=True).start()
        c = http_client(port, token)
        t = time.perf_counter()
        ro = open_store("sqlite:dcsentry.db", work)
        while ro.query("SELECT value FROM progress WHERE name = 'alert_entities_ms'") == [] or \
                ro.query("SELECT COUNT(DISTINCT alert_id) FROM alert_entities")[0][0] < args.alerts:
            time.sleep(0.5)
        ro.close()
        index_s = time.perf_counter() - t
        print(f"entity index built in {index_s:.1f} s")
        rnd = random.Random(2)
        results: dict[str, dict] = {}
        for name, spec in shapes(rnd).items():
            for _ in range(5):
                timed(c, params_of(spec))  # warm the page cache and the connection
            ms = [timed(c, params_of(spec))[0] for _ in range(args.requests)]
            results[name] = summarise(ms)
            print(f"{name:<28} " + "  ".join(f"{k} {v}" for k, v in results[name].items()))
        page_ms, cursor, pages = [], None, 0
        while pages < 200:  # deep paging by cursor: 200 pages of 50 = 10,000 alerts back
            ms, body = timed(c, {"cursor": cursor} if cursor else {})
            page_ms.append(ms)
            cursor, pages = body["next"], pages + 1
        results["cursor paging (200 pages)"] = summarise(page_ms)
        print(f"{'cursor paging (200 pages)':<28} " + "  ".join(f"{k} {v}" for k, v in results['cursor paging (200 pages)'].items()))
        specs = list(shapes(rnd).values())
        mixed: list[float] = []
        lock = threading.Lock()
        stop_at = time.perf_counter() + args.mixed_seconds

        def client() -> None:
            local = random.Random(threading.get_ident())
            with http_client(port, token) as cc:
                while time.perf_counter() < stop_at:
                    ms, _ = timed(cc, params_of(local.choice(specs)))
                    with lock:
                        mixed.append(ms)
        threads = [threading.Thread(target=client) for _ in range(args.threads)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        results[f"mixed, {args.threads} clients"] = {**summarise(mixed), "per_s": round(len(mixed) / args.mixed_seconds, 1)}
        print(f"mixed, {args.threads} clients: " + "  ".join(f"{k} {v}" for k, v in results[f'mixed, {args.threads} clients'].items()))
        out = save("web", {"machine": machine(), "alerts": args.alerts, "fill_s": round(fill_s, 1),
                           "entity_index_s": round(index_s, 1), "results": results})
        print(f"saved {out}")
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(timeout=120)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
