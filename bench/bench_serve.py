"""Syslog intake of the whole service: `dcsentry serve` against rsyslog, same generator, same run.

    /tmp/venv/bin/python bench/bench_serve.py          # about 4 minutes at the defaults
        [--messages 300000] [--udp-messages 300000] [--udp-rate 20000 --paced-seconds 5]
        [--peers 1,10,100] [--only tcp,udp,udp-paced] [--tools dcsentry,rsyslog,rsyslog-sync]
        [--process-limit 20] [--ceilings 100000] [--procs 1]

For every (transport, peers) row the same load generator sends the same pre-rendered messages to a
fresh `dcsentry serve` (own data dir, `--web off`, default settings), then to a fresh rsyslogd
(`imtcp`/`imudp` -> `omfile`, raw message + LF; see rsyslog.py, which installs the Debian package if
missing), then to one whose omfile fsyncs each batch (`rsyslog-sync`: as durable as dcsentry's spool).
The messages are DC events (a 4776 with a unique record id, as tests/test_serve_load.py's
`message()`) in the evtx-JSON layout behind an RFC 5424 header, rendered once per run; octet-counted
frames over TCP, one per datagram over UDP. The generator is `--procs` separate processes (default
1: the machine has 2 cores) spreading the `peers` connections/sockets among them; they connect and
build their frames before the clock starts.

What is measured, from the moment the senders are released:
  dcsentry accept   messages durably in the spool (MAX(last_msg) of spool.db, read-only) per second,
                    until all N are there (TCP) or nothing more arrives for 1 s (UDP);
  dcsentry e2e      the processor's checkpoint (progress 'spool' in dcsentry.db) reaching what was
                    accepted, capped at --process-limit seconds (TCP rows; the count reached is kept);
  rsyslog           lines in its output file (the file's size against the known total while
                    polling, then the lines counted).
TCP must lose nothing (every message accepted); UDP loss % is what did not arrive, unpaced and paced
(--udp-rate msg/s for --paced-seconds). CPU of each process over the accept window comes from /proc;
"other CPU" is the machine's busy time not spent by the measured processes (other jobs on the box,
plus kernel softirq work). Then, with nothing else of the service running, the spool's append and
the processor alone (--ceilings rows), to tell which stage bounds the rows. Every run is bounded by
counts and time limits and uses 127.0.0.1 only. Results: bench/out/serve.json.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import queue
import shutil
import tempfile
import time
from pathlib import Path

from common import machine, save
from loadgen import STAT_FIELDS, Corpus, _cpu_self, _stream_sender, _udp_sender, message, shares, system_busy, system_cpu
from serve_targets import Dcsentry, RsyslogTarget
from rsyslog import ensure_installed, version


# -- the service's stages alone, in this process, for the reading of the rows -----------------------

def ceilings(folder: Path, spool_rows: int, process_rows: int) -> dict:
    """Messages/s of (a) the intake (runtime.decode.IntakeDecoder + the spool's append, 1000-message
    durable transactions, one spool row each, as a TCP connection's batches) and (b) the detection
    process (detect + store, Processor.step) over what (a) wrote, each on one core with nothing
    else of the service running."""
    from dcsentry.config import Config
    from dcsentry.runtime.decode import IntakeDecoder
    from dcsentry.runtime.processor import Processor
    from dcsentry.sources.spool import Spool
    from dcsentry.store.store import open_store

    folder.mkdir(parents=True, exist_ok=True)
    spool = Spool(folder / "spool.db")
    batches = [[(time.time(), "127.0.0.1:40000", "tcp", message(i)) for i in range(first, first + 1000)]
               for first in range(1, spool_rows + 1, 1000)]
    load = os.getloadavg()[0]
    c0, t0 = _cpu_self(), time.perf_counter()
    decoder = IntakeDecoder(Config())
    for b in batches:
        msgs = decoder.decode_all([(data, at, "tcp://" + peer, t) for at, peer, t, data in b])
        spool.append([(m.received_at, m.peer, m.kind, m.data) for m in msgs])
    spool_s, spool_cpu = time.perf_counter() - t0, _cpu_self() - c0
    store = open_store("sqlite:dcsentry.db", folder)
    proc = Processor(store, spool, Config())
    n, c0, t0 = 0, _cpu_self(), time.perf_counter()
    while n < process_rows:
        k = proc.step()
        if not k:
            break
        n += k
    proc_s, proc_cpu = time.perf_counter() - t0, _cpu_self() - c0
    store.close()
    spool.close()
    return {"spool_append_per_s": round(spool_rows / spool_s), "spool_append_cpu_pct": round(100 * spool_cpu / spool_s),
            "spool_rows": spool_rows, "processor_per_s": round(n / proc_s),
            "processor_cpu_pct": round(100 * proc_cpu / proc_s), "processor_rows": n,
            "processor_us_per_msg_cpu": round(1e6 * proc_cpu / max(n, 1), 1),
            "loadavg_before": round(load, 2), "loadavg_after": round(os.getloadavg()[0], 2)}


# -- one row -----------------------------------------------------------------------------------------

def run_case(target, corpus: Corpus, transport: str, peers: int, total: int, procs: int, rate: float,
             limit: float, process_limit: float) -> dict:
    nbytes = corpus.expected_bytes(total)
    load_before = os.getloadavg()
    port = target.start(transport)
    mpc = mp.get_context("spawn")
    go, ready = mpc.Event(), mpc.Queue()
    peer_ranges = shares(total, peers)
    n_procs = max(1, min(procs, peers))
    workers = []
    for w in range(n_procs):
        mine = peer_ranges[w::n_procs]
        if transport == "udp":
            p = mpc.Process(target=_udp_sender, args=(str(corpus.path), port, mine, rate / n_procs, ready, go))
        else:
            p = mpc.Process(target=_stream_sender, args=(str(corpus.path), port, mine, ready, go))
        workers.append(p)
        p.start()
    for _ in workers:
        ready.get(timeout=300)  # ("ready", 0): connected, frames built
    time.sleep(0.2)
    goal = target.goal(total, nbytes)
    sys0, self0, cpu0 = system_cpu(), _cpu_self(), target.cpu()
    t0 = time.perf_counter()
    go.set()
    last, last_t, timed_out = 0, t0, False
    settle = 1.0 if transport == "udp" else 5.0
    while True:
        now = time.perf_counter()
        v = target.progress()
        if v != last:
            last, last_t = v, now
        if v >= goal:
            break
        if now - t0 > limit:
            timed_out = True
            break
        if now - last_t > settle and not any(p.is_alive() for p in workers):
            break
        time.sleep(0.01)
    accept_s = last_t - t0
    sys1, self1, cpu1 = system_cpu(), _cpu_self(), target.cpu()
    window = max(time.perf_counter() - t0, 1e-9)  # CPU: from the start to this snapshot (UDP: +1 s quiet)
    accepted = target.final()
    sender_cpu, send_failed = 0.0, 0
    for p in workers:
        p.join(timeout=30)
        if p.is_alive():
            p.kill()
            p.join()
    while True:
        try:
            kind, value = ready.get(timeout=0.5)
        except queue.Empty:
            break
        if kind == "cpu":
            sender_cpu += value
        elif kind == "send_failed":
            send_failed += int(value)
    row = {"tool": target.name, "transport": transport, "peers": peers, "pace": rate or None, "sent": total,
           "accepted": accepted, "accept_s": round(accept_s, 3),
           "accept_per_s": round(accepted / accept_s) if accept_s > 0 else 0,
           "loss_pct": round(100 * (total - accepted) / total, 3), "send_failed": send_failed, "timed_out": timed_out,
           "loadavg_before": [round(x, 2) for x in load_before]}
    cpu = {k: cpu1[k] - cpu0.get(k, 0.0) for k in cpu1}
    row["cpu_pct"] = {k: round(100 * v / window) for k, v in cpu.items()}
    row["cpu_pct"]["generator"] = round(100 * sender_cpu / window)
    measured = sum(cpu.values()) + sender_cpu + (self1 - self0)
    row["other_cpu_pct"] = round(100 * max(0.0, system_busy(sys1) - system_busy(sys0) - measured) / window)
    row["machine_cpu_pct"] = {k: round(100 * (sys1[k] - sys0[k]) / window) for k in STAT_FIELDS}
    row["bench_cpu_pct"] = round(100 * (self1 - self0) / window)
    drained = True
    if target.name == "dcsentry":
        done_at = None
        if transport == "tcp":
            while time.perf_counter() - t0 < process_limit:
                if target.processed() >= accepted:
                    done_at = time.perf_counter()
                    break
                time.sleep(0.1)
        processed = target.processed()
        end = done_at or time.perf_counter()
        cpu2 = target.cpu()
        row.update({"processed": processed, "process_s": round(end - t0, 3) if transport == "tcp" else None,
                    "process_per_s": round(processed / (end - t0)) if transport == "tcp" else None,
                    "processed_all": processed >= accepted,
                    "processor_cpu_pct_e2e": round(100 * (cpu2["processor"] - cpu0["processor"]) / (end - t0))})
        drained = processed >= accepted
    target.stop(drained)
    if target.name == "dcsentry":
        row["service"] = target.report()
    row["loadavg_after"] = [round(x, 2) for x in os.getloadavg()]
    return row


def fmt(n: float | None) -> str:
    return "-" if n is None else f"{n:,.0f}"


def print_row(r: dict) -> None:
    pace = f"{r['pace']:,.0f}/s" if r["pace"] else "unpaced"
    line = (f"{r['tool']:>12} {r['transport']:>3} {r['peers']:>3} peers {pace:>9}  {r['accepted']:>7}/{r['sent']:<7}"
            f" {r['accept_s']:>6.2f} s {r['accept_per_s']:>8,}/s loss {r['loss_pct']:>6.2f}%")
    if r["tool"] == "dcsentry" and r["transport"] == "tcp":
        line += f"  e2e {r['processed']:>7} in {r['process_s']:>6.1f} s = {r['process_per_s']:>7,}/s"
    line += f"  cpu {r['cpu_pct']} other {r['other_cpu_pct']}%  load {r['loadavg_before'][0]}"
    if r["send_failed"]:
        line += f"  send failed {r['send_failed']}"
    if "service" in r:
        c = r["service"]["counters"]
        line += f"  exit {r['service']['exit']}"
        if r["transport"] == "udp":
            line += f"  dropped: kernel {c['udp_dropped_kernel']} queue {c['udp_dropped_queue_full']}"
    print(line, flush=True)


def table(rows: list[dict]) -> str:
    """Markdown: one line per (transport, peers, pace), the tools side by side, ratios dcsentry/rsyslog."""
    keyed: dict[tuple, dict[str, dict]] = {}
    for r in rows:
        keyed.setdefault((r["transport"], r["peers"], r["pace"], r["sent"]), {})[r["tool"]] = r

    def rate(r: dict | None) -> str:
        if not r:
            return "-"
        loss = "0" if r["loss_pct"] == 0 else f"{r['loss_pct']:.2f}"
        return f"{fmt(r['accept_per_s'])} ({loss} %)"

    def ratio(d: dict | None, s: dict | None) -> str:
        return f"{d['accept_per_s'] / s['accept_per_s']:.2f}" if d and s and s["accept_per_s"] else "-"

    out = ["| transport | peers | messages, send rate | dcsentry accepted/s (loss) | dcsentry processed/s "
           "| rsyslog lines/s (loss) | ratio | rsyslog fsync lines/s (loss) | ratio fsync "
           "| CPU % dcsentry recv / proc / gen | CPU % rsyslogd / fsync | other CPU % | load 1m |",
           "|---|---:|---|---:|---:|---:|---:|---:|---:|---|---|---|---|"]
    for (transport, peers, pace, sent), by in keyed.items():
        d, s, f = by.get("dcsentry"), by.get("rsyslog"), by.get("rsyslog-sync")
        e2e = "-"
        if d and d.get("process_per_s") is not None:
            e2e = fmt(d["process_per_s"])
            if not d["processed_all"]:
                e2e += f" ({d['processed']:,} in {d['process_s']:.0f} s)"
        dcpu = " / ".join(str(d["cpu_pct"].get(k)) for k in ("receiver", "processor", "generator")) if d else "-"
        scpu = " / ".join(str(x["cpu_pct"]["rsyslogd"]) if x else "-" for x in (s, f))
        present = [x for x in (d, s, f) if x]
        other = " / ".join(str(x["other_cpu_pct"]) for x in present)
        load = " / ".join(str(x["loadavg_before"][0]) for x in present)
        send = f"{sent:,}, " + (f"{fmt(pace)}/s" if pace else "unpaced")
        out.append(f"| {transport.upper()} | {peers} | {send} | {rate(d)} | {e2e} | {rate(s)} | {ratio(d, s)} "
                   f"| {rate(f)} | {ratio(d, f)} | {dcpu} | {scpu} | {other} | {load} |")
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--messages", type=int, default=300_000, help="per TCP row")
    ap.add_argument("--udp-messages", type=int, default=300_000, help="per unpaced UDP row")
    ap.add_argument("--paced-seconds", type=float, default=5.0,
                    help="the paced UDP rows send udp-rate x this many messages (at most --udp-messages)")
    ap.add_argument("--peers", default="1,10,100")
    ap.add_argument("--procs", type=int, default=1, help="load-generator processes")
    ap.add_argument("--udp-rate", type=float, default=20_000, help="msg/s of the paced UDP rows")
    ap.add_argument("--limit", type=float, default=60.0, help="seconds per row for the accept phase, at most")
    ap.add_argument("--process-limit", type=float, default=20.0,
                    help="seconds (from the start of the row) the e2e processing is waited for, at most")
    ap.add_argument("--only", default="tcp,udp,udp-paced")
    ap.add_argument("--tools", default="dcsentry,rsyslog,rsyslog-sync",
                    help='rsyslog-sync: omfile sync="on" (fsync after each batch, 1 MB buffer), durable like the spool')
    ap.add_argument("--ceilings", type=int, default=100_000,
                    help="rows for the spool-alone and processor-alone figures (0: skip them)")
    ap.add_argument("--work", help="work directory (default: a temporary one, removed afterwards)")
    args = ap.parse_args()
    peers_list = [int(p) for p in args.peers.split(",")]
    tools = args.tools.split(",")
    exe = ensure_installed() if any(t.startswith("rsyslog") for t in tools) else ""
    started = {"uptime": Path("/proc/loadavg").read_text().split()[:3], "time": time.strftime("%Y-%m-%d %H:%M:%S")}
    print(f"load average at start: {' '.join(started['uptime'])}", flush=True)
    paced = min(args.udp_messages, int(args.udp_rate * args.paced_seconds))
    sizes = {"tcp": args.messages, "udp": args.udp_messages, "udp-paced": paced}
    rows: list[dict] = []
    tmp = tempfile.mkdtemp(prefix="bench-serve-") if not args.work else args.work
    Path(tmp).mkdir(parents=True, exist_ok=True)
    try:
        corpus = Corpus.render(Path(tmp) / "messages.bin", max(sizes.values()))
        for case in args.only.split(","):
            transport = "udp" if case.startswith("udp") else "tcp"
            rate = args.udp_rate if case == "udp-paced" else 0.0
            total = sizes[case if case == "udp-paced" else transport]
            for peers in peers_list:
                for tool in tools:
                    target = (Dcsentry(Path(tmp) / "dcsentry") if tool == "dcsentry"
                              else RsyslogTarget(Path(tmp) / tool, exe, sync=tool == "rsyslog-sync"))
                    r = run_case(target, corpus, transport, peers, total, args.procs, rate, args.limit,
                                 args.process_limit)
                    rows.append(r)
                    print_row(r)
        alone = None
        if args.ceilings and "dcsentry" in tools:
            alone = ceilings(Path(tmp) / "alone", args.ceilings, min(args.ceilings, 50_000))
            print(f"alone, one core each: spool append {alone['spool_append_per_s']:,}/s "
                  f"(CPU {alone['spool_append_cpu_pct']}%), processor {alone['processor_per_s']:,}/s "
                  f"({alone['processor_us_per_msg_cpu']} us CPU per message)  load {alone['loadavg_before']}",
                  flush=True)
    finally:
        if not args.work:
            shutil.rmtree(tmp, ignore_errors=True)
    md = table(rows)
    print()
    print(md)
    ended = Path("/proc/loadavg").read_text().split()[:3]
    print(f"\nload average at end: {' '.join(ended)}", flush=True)
    from importlib.metadata import version as pkg_version

    result = {"machine": machine(), "rsyslog": version(exe) if exe else None,
 "dcsentry": pkg_version("dcsentry"),
              "args": vars(args), "message_bytes_avg": round(corpus.ends[-1] / (len(corpus.ends) - 1), 1),
              "loadavg_start": started["uptime"], "loadavg_end": ended, "started": started["time"],
              "rows": rows, "alone": alone, "table_md": md}
    print(f"results: {save('serve', result)}")


if __name__ == "__main__":
    main()
