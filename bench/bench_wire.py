"""Wire speed end to end: a DC's everyday mix over syslog into `dcsentry serve`, against rsyslog.

    .venv/bin/python bench/bench_wire.py                  # ~5 minutes at the defaults
        [--events 100000] [--peers 4] [--attacks 20] [--variants json,detector,snare,cef]
        [--latency json,detector,snare,cef] [--load 0.8] [--profile 50000] [--work DIR]

Input (wire_mix.py): ~4769 30 %, 4624 20 %, 4634 10 %, 4768 10 %, 4776 10 % (80 % of them with their
8004: 8 %), 4672 5 %, 4662 3 %, 4625 and 4771 1 % each, the rest 5136/4738/4742/5145/7045/4728/4729;
failures spread over 5,000 accounts and 3,000 sources so the background raises nothing; plus
`--attacks` brute forces (30 failed 4776 + 8004 for one account from one workstation) spread evenly
over the run. Variants: `json` (evtx JSON behind RFC 5424), `detector` (only 4776 + 8004, every event
one the detectors read), `snare` and `cef` (the same mix in those layouts). One connection per DC
(`--peers`), octet-counted frames, loopback only.

Per variant, the same bytes go to:
  dcsentry   a fresh `dcsentry serve --web off` (default settings, SQLite store), unpaced; measured
             from the release of the senders until the processor's checkpoint (progress 'spool')
             holds every message: *end-to-end events/s*. Its own counters (parsed + failed +
             duplicates) must add up to what was sent. Peak RSS (VmHWM) of the receiving process and
             of the processor process.
  rsyslog    `rsyslogd` imtcp -> omfile (bench/rsyslog.py), unpaced: lines/s until all are written.
  latency    a fresh serve with `--forward cef+udp://` to a UDP listener of this process, paced at
             `--load` x the end-to-end rate: for each attack, from the moment its last message left
             the sender to (a) its alert reaching its final count in the store (polled every 20 ms)
             and (b) the CEF message with that count arriving: p50 / p99 / max.
`--profile N` then runs the processor in this process on a spool pre-filled with the json variant
(no receiver, nothing else running) once plain and once under cProfile, and splits its time into
syslog header, layout detection, JSON decode, event build, detection, store commit, spool read and
the rest. Results: bench/out/wire.json.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import queue
import shutil
import socket
import sqlite3
import statistics
import tempfile
import threading
import time
from array import array
from pathlib import Path

from common import machine, save
from loadgen import Corpus, _cpu_self, children
from rsyslog import ensure_installed, version
from serve_targets import Dcsentry, RsyslogTarget
from wire_mix import DETECTOR_MIX, MIX, RENDER, plan
from wire_profile import profile

VARIANTS = {"json": (MIX, "json"), "detector": (DETECTOR_MIX, "json"), "snare": (MIX, "snare"), "cef": (MIX, "cef")}


def write_corpus(folder: Path, name: str, msgs: list[bytes], peers: list[int]) -> Path:
    """Messages back to back + their end offsets (loadgen.Corpus's files) + each one's peer."""
    path = folder / f"{name}.bin"
    ends, pos = array("Q", [0]), 0
    with open(path, "wb") as f:
        for m in msgs:
            f.write(m)
            pos += len(m)
            ends.append(pos)
    Path(f"{path}.idx").write_bytes(ends.tobytes())
    Path(f"{path}.peer").write_bytes(array("H", peers).tobytes())
    return path


def _sender(corpus: str, n_peers: int, port: int, rate: float, cuts: list[int], ready: mp.Queue,
            go: mp.Event) -> None:
    """Sends the messages in their global order, a tick at a time (each peer's share of the tick on its
    connection); paced at `rate` msg/s when set. A tick ends after each index in `cuts`, whose send
    time (wall clock, after sendall) is reported: the attacks' last messages."""
    msgs = Corpus(Path(corpus))
    peer = array("H")
    peer.frombytes(Path(f"{corpus}.peer").read_bytes())
    n = len(msgs.ends) - 1
    size = max(1, int(rate * 0.005)) if rate else 2000
    stops, cut_set, ticks = sorted(set(range(size, n, size)) | {c + 1 for c in cuts} | {n}), set(cuts), []
    first = 0
    for stop in stops:
        parts: list[list[bytes]] = [[] for _ in range(n_peers)]
        for i in range(first, stop):
            m = msgs.get(i + 1)
            parts[peer[i]].append(b"%d %s" % (len(m), m))
        ticks.append((stop, [(p, b"".join(x)) for p, x in enumerate(parts) if x]))
        first = stop
    socks = [socket.create_connection(("127.0.0.1", port), timeout=300) for _ in range(n_peers)]
    del msgs
    ready.put(("ready", 0.0))
    go.wait()
    cpu0, t0 = _cpu_self(), time.perf_counter()
    for stop, parts in ticks:
        for p, data in parts:
            socks[p].sendall(data)
        if stop - 1 in cut_set:
            ready.put(("cut", (stop - 1, time.time())))
        if rate:
            ahead = stop / rate - (time.perf_counter() - t0)
            if ahead > 0:
                time.sleep(ahead)
    for s in socks:
        s.close()
    ready.put(("cpu", _cpu_self() - cpu0))


class CefSink:
    """A UDP syslog listener for serve's `--forward cef+udp://`: every datagram with its arrival time."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.got: list[tuple[float, str]] = []
        self.stop = threading.Event()
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self) -> None:
        while not self.stop.is_set():
            try:
                data = self.sock.recv(65536)
            except TimeoutError:
                continue
            self.got.append((time.time(), data.decode("utf-8", "replace")))


def _vmhwm(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def run_one(target, corpus: Path, n: int, n_peers: int, rate: float, cuts: list[int], limit: float,
            alerts: bool = False) -> dict:
    """One send of the corpus to `target`; waits until it has everything (dcsentry: processed)."""
    port = target.start("tcp")
    ctx = mp.get_context("spawn")
    go, ready = ctx.Event(), ctx.Queue()
    proc = ctx.Process(target=_sender, args=(str(corpus), n_peers, port, rate, cuts, ready, go))
    proc.start()
    assert ready.get(timeout=600)[0] == "ready"
    time.sleep(0.2)
    is_dc = target.name == "dcsentry"
    goal = n if is_dc else target.goal(n, Corpus(corpus).ends[n] + n)
    seen: dict[str, tuple[int, float, str]] = {}  # alert id -> (count, first time seen at it, body)
    cpu0 = target.cpu()
    t0 = time.perf_counter()
    go.set()
    done, last_poll = None, 0.0
    while time.perf_counter() - t0 < limit:
        now = time.perf_counter()
        v = target.processed() if is_dc else target.progress()
        if alerts and now - last_poll >= 0.02:
            last_poll = now
            rows = target.store.execute("SELECT id, count, body FROM alerts WHERE type = 'brute-force'")
            for aid, count, body in rows:
                if aid not in seen or seen[aid][0] != count:
                    seen[aid] = (count, time.time(), body)
        if v >= goal:
            done = done or time.perf_counter()
            if not alerts:
                break
            if not proc.is_alive() and time.perf_counter() - done > 2.0:  # the last alerts and CEF messages
                break
        time.sleep(0.01)
    elapsed = (done or time.perf_counter()) - t0
    cpu1 = target.cpu()
    cpu = {k: round(100 * (v - cpu0.get(k, 0.0)) / elapsed) for k, v in cpu1.items()}
    cpu_us = {k: round(1e6 * (v - cpu0.get(k, 0.0)) / n, 1) for k, v in cpu1.items()}
    cut_times: dict[int, float] = {}
    proc.join(timeout=60)
    while True:
        try:
            kind, value = ready.get(timeout=0.5)
        except queue.Empty:
            break
        if kind == "cut":
            cut_times[value[0]] = value[1]
    row = {"tool": target.name, "sent": n, "seconds": round(elapsed, 2), "complete": done is not None,
           "per_s": round(n / elapsed) if done else None, "pace": rate or None, "cpu_pct": cpu,
           "cpu_us_per_msg": cpu_us, "load_1m": round(os.getloadavg()[0], 2)}
    if is_dc:
        row["peak_rss_mb"] = {"receiver": round(_vmhwm(target.proc.pid), 1),
                              "processor": round(sum(_vmhwm(c) for c in children(target.proc.pid)), 1)}
        row["processed"] = target.processed()
        row["_seen"], row["_cuts"] = seen, cut_times
        target.stop(True)
        db = sqlite3.connect(f"file:{target.folder / 'dcsentry.db'}?mode=ro", uri=True)
        c = db.execute("SELECT data FROM counters WHERE name = 'processor'").fetchone()
        row["alerts"] = db.execute("SELECT type, COUNT(*) FROM alerts GROUP BY type").fetchall()
        row["stored_events"] = db.execute("SELECT COUNT(*) FROM events").fetchone()[0]
        db.close()
        import json
        c = json.loads(c[0]) if c else {}
        row["counters"] = {k: c.get(k) for k in ("parsed", "failed", "duplicates", "by_layout")}
        row["counted"] = sum(c.get(k) or 0 for k in ("parsed", "failed", "duplicates"))
    else:
        row["lines"] = target.final()
        target.stop(True)
    return row


def latencies(row: dict, sink: CefSink, attacks: list, cuts: list[int]) -> dict:
    """Per attack: last message sent -> its alert at its final count in the store / at the CEF sink."""
    store_ms, cef_ms, missing = [], [], 0
    for a, cut in zip(attacks, cuts):
        sent = row["_cuts"].get(cut)
        hit = [(count, t) for count, t, body in row["_seen"].values() if a.workstation in body]
        if sent is None or not hit:
            missing += 1
            continue
        final, t_store = max(hit)
        store_ms.append(1000 * (t_store - sent))
        arrived = [t for t, text in sink.got if a.workstation in text and f"cnt={final} " in text]
        if arrived:
            cef_ms.append(1000 * (min(arrived) - sent))

    def q(v: list[float]) -> dict:
        if not v:
            return {}
        s = sorted(v)
        return {"p50": round(statistics.median(s)), "p99": round(s[min(len(s) - 1, int(0.99 * len(s)))]),
                "max": round(s[-1]), "n": len(s)}
    return {"store_ms": q(store_ms), "cef_ms": q(cef_ms), "attacks_without_alert": missing,
            "cef_messages": len(sink.got)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--events", type=int, default=100_000)
    ap.add_argument("--peers", type=int, default=4, help="TCP connections, one per DC")
    ap.add_argument("--attacks", type=int, default=20)
    ap.add_argument("--variants", default="json,detector,snare,cef")
    ap.add_argument("--latency", default="json,detector,snare,cef", help="variants with a paced latency run")
    ap.add_argument("--load", type=float, default=0.8, help="latency runs' pace, as a share of the e2e rate")
    ap.add_argument("--limit", type=float, default=300.0, help="seconds per run, at most")
    ap.add_argument("--profile", type=int, default=50_000, help="messages of the in-process profile (0: none)")
    ap.add_argument("--work", help="work directory (default: a temporary one, removed afterwards)")
    args = ap.parse_args()
    exe = ensure_installed()
    tmp = Path(args.work or tempfile.mkdtemp(prefix="bench-wire-"))
    tmp.mkdir(parents=True, exist_ok=True)
    result = {"machine": machine(), "rsyslog": version(exe), "args": vars(args),
              "loadavg_start": os.getloadavg(), "variants": {}}
    try:
        for name in args.variants.split(","):
            mix, layout = VARIANTS[name]
            p = plan(args.events, args.peers, args.attacks, mix)
            msgs = [RENDER[layout](ev) for ev in p.events]
            corpus = write_corpus(tmp, name, msgs, p.peer)
            n, cuts = len(msgs), [a.last for a in p.attacks]
            out: dict = {"messages": n, "bytes_avg": round(sum(map(len, msgs)) / n), "load_1m": os.getloadavg()[0]}
            del msgs
            d = run_one(Dcsentry(tmp / f"dc-{name}"), corpus, n, args.peers, 0.0, cuts, args.limit)
            r = run_one(RsyslogTarget(tmp / f"rs-{name}", exe), corpus, n, args.peers, 0.0, cuts, args.limit)
            d.pop("_seen"), d.pop("_cuts")
            out.update({"dcsentry": d, "rsyslog": r,
                        "ratio": round(d["per_s"] / r["per_s"], 3) if d["per_s"] and r["per_s"] else None})
            print(f"{name:>8}: {n:,} msgs ({out['bytes_avg']} B avg)  dcsentry e2e {d['per_s'] or 0:>7,}/s "
                  f"(counted {d['counted']:,}, failed {d['counters']['failed']}, peak RSS recv/proc "
                  f"{d['peak_rss_mb']['receiver']}/{d['peak_rss_mb']['processor']} MB, "
                  f"CPU us/msg {d['cpu_us_per_msg']}, "
                  f"load {d['load_1m']})  rsyslog {r['per_s'] or 0:>8,}/s  "
                  f"ratio {out['ratio']}", flush=True)
            if name in args.latency.split(",") and d["per_s"]:
                sink = CefSink()
                pace = args.load * d["per_s"]
                lat = run_one(Dcsentry(tmp / f"lat-{name}", ["--forward", f"cef+udp://127.0.0.1:{sink.port}"]),
                              corpus, n, args.peers, pace, cuts, args.limit, alerts=True)
                time.sleep(1.0)
                sink.stop.set()
                out["latency"] = {"pace_per_s": round(pace), **latencies(lat, sink, p.attacks, cuts),
                                  "peak_rss_mb": lat["peak_rss_mb"], "complete": lat["complete"]}
                L = out["latency"]
                print(f"{'':>8}  at {L['pace_per_s']:,}/s: alert latency store {L['store_ms']}  CEF {L['cef_ms']}"
                      f"  (no alert: {L['attacks_without_alert']})", flush=True)
            result["variants"][name] = out
        if args.profile:
            p = plan(args.profile, args.peers, max(1, args.attacks * args.profile // args.events), MIX)
            result["profile"] = profile(tmp / "profile", [RENDER["json"](ev) for ev in p.events])
            print("processor alone (json):", result["profile"]["summary"], flush=True)
    finally:
        if not args.work:
            shutil.rmtree(tmp, ignore_errors=True)
    result["loadavg_end"] = os.getloadavg()
    print(f"results: {save('wire', result)}")


if __name__ == "__main__":
    main()
