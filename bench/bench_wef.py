"""Windows Event Forwarding intake of `dcsentry serve` over HTTPS, beside its syslog TCP intake, in one run.

    /tmp/venv/bin/python bench/bench_wef.py        # about a minute at the defaults
        [--events 100000] [--clients 1,4] [--compress] [--process-limit 15]

The same DC events (a 4776 success with a unique record id, as bench_serve.py's messages) go to a
fresh `dcsentry serve` (own data dir, `--web off`) each row:
  wef-https  as Windows sends them: one keep-alive TLS connection per client with its client
             certificate, Events envelopes filled up to the subscription's MaxEnvelopeSize
             (512000 bytes of UTF-16) with a bookmark and AckRequested, the next batch sent when the
             Ack came back (what the WinRM client does); envelopes rendered (and SLDC-compressed
             with --compress) before the clock starts, by tests/wefclient.py (the tests' Windows side);
  syslog-tcp the same events in the evtx-JSON layout behind an RFC 5424 header, octet-counted frames
             on one connection (bench_serve.py's TCP row).
Measured from the release of the senders: events durably in the spool (MAX(last_msg) of spool.db) per
second until all are there (for WEF: all batches acknowledged), then the processor's checkpoint per
second, capped at --process-limit seconds. 127.0.0.1 only; every run bounded by counts and time.
Results: bench/out/wef.json.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import ROOT, dcsentry_cmd, machine, save
from loadgen import children, message, proc_cpu

sys.path.insert(0, str(ROOT / "tests"))
from wefclient import Event, WefClient, client_context, make_wef_pki, sldc_compress  # noqa: E402


def event_xml(i: int) -> str:
    """bench_serve's message(i) as the event XML a DC forwards."""
    return ("<Event xmlns='http://schemas.microsoft.com/win/2004/08/events/event'><System><Provider "
            "Name='Microsoft-Windows-Security-Auditing' Guid='{54849625-5478-4994-a5ba-3e3b0328c30d}'/>"
            "<EventID>4776</EventID><Version>0</Version><Level>0</Level><Task>14336</Task><Opcode>0</Opcode>"
            "<Keywords>0x8020000000000000</Keywords><TimeCreated SystemTime='2024-03-04T10:00:%02d.%06dZ'/>"
            "<EventRecordID>%d</EventRecordID><Correlation/><Execution ProcessID='668' ThreadID='724'/>"
            "<Channel>Security</Channel><Computer>DC%02d.contoso.local</Computer><Security/></System><EventData>"
            "<Data Name='PackageName'>MICROSOFT_AUTHENTICATION_PACKAGE_V1_0</Data><Data Name='TargetUserName'>"
            "user%d</Data><Data Name='Workstation'>WS%d</Data><Data Name='Status'>0x0</Data></EventData></Event>"
            % (i // 1_000_000 % 60, i % 1_000_000, i, i % 4, i % 5000, i % 3000))


class Service:
    def __init__(self, folder: Path, config: str | None = None) -> None:
        folder.mkdir(parents=True)
        self.folder = folder
        cmd = dcsentry_cmd() + ["serve", "--data-dir", str(folder / "data"), "--syslog-udp", "off",
                                "--syslog-tcp", "127.0.0.1:0", "--web", "off"]
        if config:
            (folder / "c.toml").write_text(config)
            cmd += ["--config", str(folder / "c.toml")]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.ports: dict[str, int] = {}
        for line in self.proc.stdout:
            if " listening on " in line:
                self.ports[line.split()[0]] = int(line.split()[-1].rsplit(":", 1)[1])
            if line.startswith("data in"):
                break
        deadline = time.monotonic() + 60
        while not children(self.proc.pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(1.0)
        self.spool = sqlite3.connect(f"file:{folder / 'data' / 'spool.db'}?mode=ro", uri=True, timeout=30)
        self.store = sqlite3.connect(f"file:{folder / 'data' / 'dcsentry.db'}?mode=ro", uri=True, timeout=30)

    def accepted(self) -> int:
        return int(self.spool.execute("SELECT COALESCE(MAX(last_msg), 0) FROM spool").fetchone()[0])

    def processed(self) -> int:
        row = self.store.execute("SELECT value FROM progress WHERE name = 'spool'").fetchone()
        return int(row[0]) if row else 0

    def cpu(self) -> tuple[float, float]:
        return proc_cpu(self.proc.pid), sum(proc_cpu(c) for c in children(self.proc.pid))

    def stop(self) -> None:
        self.spool.close()
        self.store.close()
        self.proc.kill()
        self.proc.wait()


def _wef_sender(url: str, pki: dict, cn: str, bodies: list[bytes], compressed: bool, ready: mp.Queue,
                go: mp.Event) -> None:
    c = WefClient(url, client_context(pki, f"client:{cn}"), cn)
    _, (sub,), _ = c.enumerate()
    conn = c.connect(sub.address)
    path = "/" + sub.address.split("/", 3)[3]
    headers = {"Content-Type": "application/soap+xml;charset=UTF-16", "Connection": "Keep-Alive",
               "User-Agent": "Microsoft WinRM Client"}
    if compressed:
        headers["Content-Encoding"] = "SLDC"
    ready.put(sub.identifier)
    go.wait()
    for body in bodies:
        conn.request("POST", path, body=body, headers=headers)
        r = conn.getresponse()
        r.read()
        if r.status != 200:
            raise SystemExit(f"batch refused: HTTP {r.status}")
    conn.close()


def _syslog_sender(port: int, first: int, n: int, ready: mp.Queue, go: mp.Event) -> None:
    frames = b"".join(b"%d %s" % (len(m), m) for m in (message(i) for i in range(first, first + n)))
    with socket.create_connection(("127.0.0.1", port)) as s:
        ready.put(1)
        go.wait()
        s.sendall(frames)


def measure(svc: Service, senders: list[mp.Process], ready: mp.Queue, go: mp.Event, total: int,
            limit: float) -> dict:
    for p in senders:
        p.start()
    for _ in senders:
        ready.get(timeout=300)
    r0, p0 = svc.cpu()
    t0 = time.perf_counter()
    go.set()
    while svc.accepted() < total and time.perf_counter() - t0 < 600:
        if not any(p.is_alive() for p in senders) and svc.accepted() < total and any(p.exitcode for p in senders):
            raise SystemExit("a sender failed")
        time.sleep(0.01)
    t_acc = time.perf_counter() - t0
    r1, p1 = svc.cpu()
    for p in senders:
        p.join(timeout=60)
    while svc.processed() < total and time.perf_counter() - t0 < t_acc + limit:
        time.sleep(0.05)
    t_proc = time.perf_counter() - t0
    done = svc.processed()
    return {"events": total, "accepted_per_s": round(total / t_acc), "accept_seconds": round(t_acc, 2),
            "processed": done, "processed_per_s": round(done / t_proc), "cpu_receiver_pct": round(100 * (r1 - r0) / t_acc),
            "cpu_processor_pct": round(100 * (p1 - p0) / t_acc)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=int, default=100_000)
    ap.add_argument("--clients", default="1,4")
    ap.add_argument("--compress", action="store_true", help="SLDC-compressed deliveries (as Windows when asked)")
    ap.add_argument("--process-limit", type=float, default=15.0)
    a = ap.parse_args()
    ctx = mp.get_context("fork")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        names = [f"dc{k:02d}.contoso.local" for k in range(max(int(x) for x in a.clients.split(",")))]
        pki = make_wef_pki(work, names)
        for clients in (int(x) for x in a.clients.split(",")):
            conf = (f'[wef]\nhttps = ["127.0.0.1:0"]\ncert = "{pki["server"]}"\nkey = "{pki["server_key"]}"\n'
                    f'client_ca = ["{pki["ca"]}"]\ncompression = {str(a.compress).lower()}\n')
            svc = Service(work / f"wef{clients}", conf)
            url = f"https://localhost:{svc.ports['wef-https']}/wsman/SubscriptionManager/WEC"
            probe = WefClient(url, client_context(pki, f"client:{names[0]}"), names[0])
            _, (sub,), _ = probe.enumerate()
            ready, go, senders, nbatches = ctx.Queue(), ctx.Event(), [], 0
            per = a.events // clients
            for k in range(clients):
                evs = [Event("Security", i, "", event_xml(i)) for i in range(1 + k * per, 1 + (k + 1) * per)]
                bodies = []
                for batch in probe.batches(sub, evs):
                    positions = {"Security": batch[-1].record_id}
                    xml = probe.events_xml(sub, batch, positions, f"uuid:{k:08d}-0000-0000-0000-{len(bodies):012d}")
                    body = b"\xff\xfe" + xml.encode("utf-16-le")
                    bodies.append(sldc_compress(body) if a.compress else body)
                nbatches += len(bodies)
                senders.append(ctx.Process(target=_wef_sender, args=(url, pki, names[k], bodies, a.compress, ready, go)))
            r = measure(svc, senders, ready, go, per * clients, a.process_limit)
            svc.stop()
            r.update(path="wef-https", clients=clients, batches=nbatches, compressed=a.compress)
            rows.append(r)
            print(r, flush=True)
        svc = Service(work / "syslog")
        ready, go = ctx.Queue(), ctx.Event()
        r = measure(svc, [ctx.Process(target=_syslog_sender, args=(svc.ports["syslog-tcp"], 1, a.events, ready, go))],
                    ready, go, a.events, a.process_limit)
        svc.stop()
        r.update(path="syslog-tcp", clients=1)
        rows.append(r)
        print(r, flush=True)
    print(save("wef", {"machine": machine(), "rows": rows}))


if __name__ == "__main__":
    main()
