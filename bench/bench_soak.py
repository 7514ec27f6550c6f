"""Memory soak: `dcsentry serve` under a steady DC mix for a long time, RSS sampled as it goes (issue #18).

    .venv/bin/python bench/bench_soak.py                   # 20 minutes at 6,000 events/s
        [--minutes 20] [--rate 6000] [--peers 4] [--block 60000] [--attacks 1] [--every 10]
        [--drain 180] [--work DIR]
    .venv/bin/python bench/bench_soak.py --minutes 60      # an hour's worth at 6,000/s: 21.6 M events

Why: issue #18's "memory flat" goal is peak RSS of `serve` <= 300 MB after an hour's worth of events.
bench_wire sends 100,000 messages (seconds of traffic); state that grows per account, source, alert or
record id only shows after many minutes. An hour's worth is `--rate` x 3,600 events: at the default
6,000/s (what the processor sustains on this shared 2-core box) 21.6 M events, i.e. `--minutes 60`;
at the issue's 50,000/s target it would be 180 M (same run, `--rate 50000`, once serve can take it).

What runs: bench_wire's `json` variant (wire_mix.py's everyday mix, evtx JSON behind RFC 5424,
octet-counted over `--peers` TCP connections) into a fresh `dcsentry serve --web off` (bench_wire's
Dcsentry target). One block of `--block` events is planned once; the sender process renders it over
and over, round r with every record id + r x block (nothing is a duplicate) and every event time + r x
the block's duration (event time follows the wall clock from the start, so detector windows see time
move and expire state), paced at `--rate` in 20 ms ticks. `--attacks` brute forces per block keep the
alert path busy. Every `--every` s: VmRSS and VmHWM of the receiver (serve's pid) and of the processor
(serve's child processes but multiprocessing's resource tracker, summed; its RssAnon too: heap, not
mapped files), events sent, spooled and processed (the processor's checkpoint),
the lag, and the data dir's size. At the end: a table, the RSS slope over the last half of the send
(MB per 10 minutes) per process, and bench/out/soak.json.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import shutil
import socket
import sqlite3
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench_wire import _vmhwm
from common import machine, save
from loadgen import _cpu_self, children
from serve_targets import Dcsentry
from wire_mix import BASE, MIX, PAIRED_8004, plan, render_json

TICK_S = 0.02


def _status(pid: int, key: str) -> float:
    """A /proc/<pid>/status memory line in MB (0 when the process is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def _sender(port: int, n_peers: int, rate: float, total: int, block: int, attacks: int, start: float,
            sent: mp.Value, behind: mp.Value, ready: mp.Queue, go: mp.Event) -> None:
    """Plans one block, then renders and sends it round after round (ids and times shifted) at `rate`
    until `total` messages left; rendering happens per tick here so the pace check covers it.
    `sent` is updated each tick; `behind` holds the worst lag behind the schedule seen (s)."""
    background = 1 + PAIRED_8004 * MIX[4776] / sum(MIX.values())  # messages per plan step
    span = block / rate  # event-time seconds a block covers: event time keeps pace with the wall clock
    p = plan(block, n_peers, attacks, MIX, rate=(block - attacks * 60) / background / span)
    events, peers = p.events, p.peer
    n = len(events)
    times = [ev.time for ev in events]
    rids = [ev.record_id for ev in events]
    marks = [(i, k) for k, a in enumerate(p.attacks) for i in range(a.first, a.last + 1)]
    shift0 = datetime.fromtimestamp(start, UTC) - BASE
    socks = [socket.create_connection(("127.0.0.1", port), timeout=300) for _ in range(n_peers)]
    for s in socks:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 20)
    ready.put(("ready", n))
    go.wait()
    cpu0, t0 = _cpu_self(), time.perf_counter()
    size = max(1, int(rate * TICK_S))
    g, worst = 0, 0.0
    while g < total:
        stop = min(total, g + size)
        parts: list[list[bytes]] = [[] for _ in range(n_peers)]
        for k in range(g, stop):
            r, i = divmod(k, n)
            if i == 0:  # a new round: its brute forces come from new accounts and workstations
                for j, a in marks:
                    d = events[j].data
                    d["UserName" if "UserName" in d else "TargetUserName"] = f"bf{r:05d}u{a}"
                    d["Workstation" if "Workstation" in d else "WorkstationName"] = f"BF{r:05d}W{a}"
            ev = events[i]
            ev.record_id = rids[i] + r * n
            ev.time = times[i] + shift0 + timedelta(seconds=r * span)
            m = render_json(ev)
            parts[peers[i]].append(b"%d %s" % (len(m), m))
        for q, x in enumerate(parts):
            if x:
                socks[q].sendall(b"".join(x))
        g = stop
        sent.value = g
        ahead = g / rate - (time.perf_counter() - t0)
        if ahead > 0:
            time.sleep(ahead)
        elif -ahead > worst:
            worst = -ahead
            behind.value = worst
    for s in socks:
        s.close()
    ready.put(("done", {"seconds": time.perf_counter() - t0, "cpu": _cpu_self() - cpu0, "block": n}))


def _processors(pid: int) -> tuple[list[int], list[int]]:
    """serve's children: the processor(s), and the rest (multiprocessing's resource tracker, which
    bench_wire's peak counts in with the processor)."""
    procs, other = [], []
    for c in children(pid):
        try:
            cmd = Path(f"/proc/{c}/cmdline").read_bytes()
        except OSError:
            continue
        (other if b"resource_tracker" in cmd else procs).append(c)
    return procs, other


def _size_mb(folder: Path) -> float:
    return sum(p.stat().st_size for p in folder.glob("*.db*") if p.is_file()) / 2**20


def sample(target: Dcsentry, t0: float, sent: int, rate: float) -> dict:
    """One reading: memory of the receiver and the processor(s), the counts along the way, the lag."""
    pid = target.proc.pid
    kids, other = _processors(pid)
    processed, spooled = target.processed(), target.progress()
    return {"t": round(time.perf_counter() - t0, 1), "sent": sent, "spooled": spooled, "processed": processed,
            "lag": sent - processed, "lag_s": round((sent - processed) / rate, 1),
            "rss_recv": round(_status(pid, "VmRSS"), 1), "hwm_recv": round(_vmhwm(pid), 1),
            "rss_proc": round(sum(_status(c, "VmRSS") for c in kids), 1),
            "hwm_proc": round(sum(_vmhwm(c) for c in kids), 1), "procs": len(kids),
            "anon_proc": round(sum(_status(c, "RssAnon") for c in kids), 1),
            "rss_other": round(sum(_status(c, "VmRSS") for c in other), 1),
            "data_mb": round(_size_mb(target.folder)), "load_1m": round(os.getloadavg()[0], 2)}


def slope(rows: list[dict], key: str, since: float, until: float) -> float | None:
    """Least-squares slope of `key` over the samples in [since, until], in MB per 10 minutes."""
    pts = [(r["t"], r[key]) for r in rows if since <= r["t"] <= until]
    if len(pts) < 3:
        return None
    mx = sum(t for t, _ in pts) / len(pts)
    my = sum(v for _, v in pts) / len(pts)
    den = sum((t - mx) ** 2 for t, _ in pts)
    return round(600 * sum((t - mx) * (v - my) for t, v in pts) / den, 1) if den else None


def counters(folder: Path) -> dict:
    """The processor's own counters after stop (rows `processor` or `processor:<node>`, summed)."""
    db = sqlite3.connect(f"file:{folder / 'dcsentry.db'}?mode=ro", uri=True, timeout=30)
    try:
        rows = db.execute("SELECT data FROM counters WHERE name LIKE 'processor%'").fetchall()
        alerts = db.execute("SELECT type, COUNT(*) FROM alerts GROUP BY type").fetchall()
    finally:
        db.close()
    out: dict = {}
    for (data,) in rows:
        for k, v in json.loads(data).items():
            if k in ("parsed", "failed", "duplicates") and isinstance(v, (int, float)):
                out[k] = out.get(k, 0) + v
    out["alerts"] = dict(alerts)
    return out


def table(rows: list[dict], every: float) -> str:
    """The samples about every `every` seconds (and the last), as a markdown table."""
    head = ("| t (min) | sent | processed | lag (s) | RSS recv MB | RSS proc MB | HWM recv / proc MB | data MB |\n"
            "|---:|---:|---:|---:|---:|---:|---|---:|")
    out, next_t = [head], 0.0
    for i, r in enumerate(rows):
        if r["t"] >= next_t or i == len(rows) - 1:
            out.append(f"| {r['t'] / 60:.1f} | {r['sent']:,} | {r['processed']:,} | {r['lag_s']} | {r['rss_recv']} | "
                       f"{r['rss_proc']} | {r['hwm_recv']} / {r['hwm_proc']} | {r['data_mb']:,} |")
            next_t = r["t"] + every - 1
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--minutes", type=float, default=20.0, help="how long to send")
    ap.add_argument("--rate", type=float, default=6000.0, help="events/s (the pace of the sender)")
    ap.add_argument("--peers", type=int, default=4, help="TCP connections, one per DC")
    ap.add_argument("--block", type=int, default=60_000, help="events planned once and repeated, shifted")
    ap.add_argument("--attacks", type=int, default=1, help="brute forces per block")
    ap.add_argument("--every", type=float, default=10.0, help="seconds between samples")
    ap.add_argument("--drain", type=float, default=180.0, help="seconds to wait for the processor after the send")
    ap.add_argument("--table-every", type=float, default=60.0, help="seconds between rows of the printed table")
    ap.add_argument("--work", help="work directory (default: a temporary one, removed afterwards)")
    args = ap.parse_args()
    tmp = Path(args.work or tempfile.mkdtemp(prefix="bench-soak-"))
    tmp.mkdir(parents=True, exist_ok=True)
    total = int(args.rate * args.minutes * 60)
    result: dict = {"machine": machine(), "args": vars(args), "total": total, "loadavg_start": os.getloadavg()}
    target = Dcsentry(tmp / "dc")
    try:
        port = target.start("tcp")
        ctx = mp.get_context("spawn")
        go, ready = ctx.Event(), ctx.Queue()
        sent, behind = ctx.Value("q", 0), ctx.Value("d", 0.0)
        proc = ctx.Process(target=_sender, args=(port, args.peers, args.rate, total, args.block, args.attacks,
                                                 time.time(), sent, behind, ready, go))
        proc.start()
        kind, n = ready.get(timeout=300)
        assert kind == "ready"
        print(f"soak: {total:,} events at {args.rate:,.0f}/s for {args.minutes} min; block {n:,}; "
              f"serve pid {target.proc.pid}, processor(s) {children(target.proc.pid)}", flush=True)
        rows: list[dict] = []
        t0 = time.perf_counter()
        go.set()
        rows.append(sample(target, t0, 0, args.rate))
        next_t, send_end, drained = args.every, None, False
        while True:
            time.sleep(max(0.0, next_t - (time.perf_counter() - t0)))
            next_t += args.every
            r = sample(target, t0, sent.value, args.rate)
            r["behind_s"] = round(behind.value, 2)
            rows.append(r)
            print(f"{r['t']:7.0f}s sent {r['sent']:>10,} processed {r['processed']:>10,} lag {r['lag_s']:>6}s  "
                  f"RSS recv {r['rss_recv']:6.1f} (hwm {r['hwm_recv']:6.1f})  proc {r['rss_proc']:6.1f} "
                  f"(hwm {r['hwm_proc']:6.1f}, anon {r['anon_proc']:6.1f}) x{r['procs']} +{r['rss_other']:.0f}  "
                  f"data {r['data_mb']:,} MB  load {r['load_1m']}",
                  flush=True)
            if send_end is None and not proc.is_alive():
                send_end = r["t"]
            if r["processed"] >= total:
                drained = True
                break
            if send_end is not None and r["t"] - send_end > args.drain:
                break
            if target.proc.poll() is not None:
                print(f"serve exited: {target.proc.returncode}", flush=True)
                break
        proc.join(timeout=30)
        info: dict = {}
        while not ready.empty():
            kind, v = ready.get()
            if kind == "done":
                info = v
        send_s = info.get("seconds") or (send_end or rows[-1]["t"])
        achieved = total / send_s if info else None
        pace_ok = bool(info) and achieved >= 0.98 * args.rate and behind.value < 2.0
        half = (send_end or rows[-1]["t"]) / 2
        end = send_end or rows[-1]["t"]
        peak = {"receiver": max(r["hwm_recv"] for r in rows), "processor": max(r["hwm_proc"] for r in rows)}
        result.update({
            "samples": rows, "send_seconds": round(send_s, 1), "sent_per_s": round(achieved) if achieved else None,
            "sender_worst_behind_s": round(behind.value, 2), "sender_cpu_s": round(info.get("cpu", 0.0), 1),
            "pace_kept": pace_ok, "drained": drained, "peak_hwm_mb": peak,
            "slope_last_half_mb_per_10min": {k: slope(rows, f"rss_{k}", half, end) for k in ("recv", "proc")},
            "hwm_slope_last_half_mb_per_10min": {k: slope(rows, f"hwm_{k}", half, end) for k in ("recv", "proc")},
            "max_lag_s": max(r["lag_s"] for r in rows if r["t"] <= end)})
        target.stop(drained)
        result["exit"] = target.returncode
        result["counters"] = counters(target.folder)
        result["serve_output"] = [ln.rstrip() for ln in target.lines if not ln.startswith(("syslog-", "data in"))][-8:]
    finally:
        if target.proc and target.proc.poll() is None:
            target.proc.kill()
        if not args.work:
            shutil.rmtree(tmp, ignore_errors=True)
    result["loadavg_end"] = os.getloadavg()
    print()
    print(table(result["samples"], args.table_every))
    print(f"\nsent {total:,} in {result['send_seconds']} s ({result['sent_per_s'] or 0:,}/s, worst behind schedule "
          f"{result['sender_worst_behind_s']} s, sender CPU {result['sender_cpu_s']} s): "
          f"{'pace kept' if result['pace_kept'] else 'SENDER DID NOT KEEP THE PACE'}")
    print(f"processed {result['samples'][-1]['processed']:,}, drained: {drained}, max lag during the send "
          f"{result['max_lag_s']} s; counters {result['counters']}")
    print(f"peak RSS (VmHWM) receiver {peak['receiver']} MB, processor {peak['processor']} MB; RSS slope over "
          f"the last half of the send, MB per 10 min: {result['slope_last_half_mb_per_10min']}")
    print(f"results: {save('soak', result)}")


if __name__ == "__main__":
    main()
