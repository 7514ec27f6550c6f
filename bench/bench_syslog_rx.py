"""Syslog receive path: messages/s from loopback senders into a trivial consumer, over TCP, TLS and UDP.

    /tmp/venv/bin/python bench/bench_syslog_rx.py [--messages 400000] [--peers 1,10,100] [--udp-rate 0]

The server (`ListenerSet`, one asyncio loop) runs in this process; the load comes from separate
generator processes (`--procs`, default 1: the target machine has 2 cores, one for each side) that
spread `peers` connections/sockets among them. Every run is bounded by a message count and a time
limit and uses 127.0.0.1 only. TCP and TLS must deliver every message (backpressure, no loss); UDP
senders blast (or pace to `--udp-rate` msg/s) and the loss is reported next to what the server
counted as dropped (its queue, `udp_accept`, the kernel's SO_RXQ_OVFL count). Results also go to
bench/out/syslog_rx.json.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import multiprocessing as mp
import resource
import socket
import ssl
import sys
import tempfile
import time
from pathlib import Path

from common import machine, save

from dcsentry.sources.syslog import ListenerSet, server_context

# a 4776 in the ArcSight layout behind an RFC 5424 header, as a SIEM would forward it (~330 bytes)
MSG = (b"<36>1 2024-03-05T14:19:02.604Z siem01 CEF - 4776 - CEF:0|Microsoft|Microsoft Windows||"
       b"Microsoft-Windows-Security-Auditing:4776|The domain controller attempted to validate the credentials "
       b"for an account.|Low| externalId=4776 cat=Security rt=1426218619000 shost=WS01 dhost=DC01.contoso.com "
       b"duser=jdoe cs2=Security cs3=Microsoft-Windows-Security-Auditing cs4=0x0 cs3Label=EventSource "
       b"cs4Label=Reason or Error Code")
CHUNK = 256 * 1024


def _stream_sender(port: int, conns: int, count: int, framing: str, ca: str | None, go: mp.Event) -> None:
    frame = MSG + b"\n" if framing == "lf" else b"%d %s" % (len(MSG), MSG)
    per_chunk = max(1, CHUNK // len(frame))
    blob = frame * per_chunk
    socks = []
    for _ in range(conns):
        s = socket.create_connection(("127.0.0.1", port), timeout=60)
        if ca:
            ctx = ssl.create_default_context(cafile=ca)
            s = ctx.wrap_socket(s, server_hostname="localhost")
        socks.append(s)
    left = [count // conns + (1 if i < count % conns else 0) for i in range(conns)]
    go.wait()
    while any(left):
        for i, s in enumerate(socks):
            n = min(left[i], per_chunk)
            if n:
                s.sendall(blob if n == per_chunk else frame * n)
                left[i] -= n
    for s in socks:
        s.close()


def _udp_sender(port: int, socks_n: int, count: int, rate: float, go: mp.Event) -> None:
    socks = []
    for _ in range(socks_n):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.connect(("127.0.0.1", port))
        socks.append(s)
    sends = [s.send for s in socks]
    go.wait()
    t0 = time.perf_counter()
    for i in range(count):
        sends[i % socks_n](MSG)
        if rate and i % 500 == 499:
            ahead = (i + 1) / rate - (time.perf_counter() - t0)
            if ahead > 0:
                time.sleep(ahead)


def _tls_files(folder: Path) -> tuple[str, str]:
    """A self-signed localhost certificate (cert+key PEM files) for the TLS runs."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    (folder / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (folder / "key.pem").write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                       serialization.NoEncryption()))
    return str(folder / "cert.pem"), str(folder / "key.pem")


async def run_case(kind: str, framing: str, peers: int, total: int, procs: int, rate: float, limit: float,
                   tls_files: tuple[str, str]) -> dict:
    got = 0

    async def consumer(batch: list) -> None:
        nonlocal got
        got += len(batch)

    ctx = server_context(*tls_files) if kind == "tls" else None
    ls = ListenerSet(consumer, tls_context=ctx, max_connections=max(1000, 2 * peers))
    (_, _, port), = await ls.start(**{kind: [("127.0.0.1", 0)]})
    mpc = mp.get_context("spawn")
    go = mpc.Event()
    n_procs = max(1, min(procs, peers))
    workers = []
    for w in range(n_procs):
        conns = peers // n_procs + (1 if w < peers % n_procs else 0)
        share = total * conns // peers
        if kind == "udp":
            args: tuple = (port, conns, share, rate / n_procs, go)
            workers.append(mpc.Process(target=_udp_sender, args=args))
        else:
            args = (port, conns, share, framing, tls_files[0] if kind == "tls" else None, go)
            workers.append(mpc.Process(target=_stream_sender, args=args))
    for p in workers:
        p.start()
    expected = sum(total * (peers // n_procs + (1 if w < peers % n_procs else 0)) // peers for w in range(n_procs))
    await asyncio.sleep(1.0 + peers * 0.01)  # spawn + connect (+ TLS handshakes) before the clock starts
    cpu0 = resource.getrusage(resource.RUSAGE_SELF)
    t0 = time.perf_counter()
    go.set()
    last_change, last_got = t0, 0
    while time.perf_counter() - t0 < limit and got < expected:
        await asyncio.sleep(0.01)
        if got != last_got:
            last_change, last_got = time.perf_counter(), got
        elif kind == "udp" and not any(p.is_alive() for p in workers) and time.perf_counter() - last_change > 0.5:
            break
    cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    elapsed = last_change - t0
    await ls.stop()
    for p in workers:
        p.join(timeout=5)
        if p.is_alive():
            p.kill()
    c = ls.counters
    cpu = (cpu1.ru_utime + cpu1.ru_stime) - (cpu0.ru_utime + cpu0.ru_stime)
    return {"transport": kind, "framing": framing if kind != "udp" else "datagram", "peers": peers,
            "sent": expected, "received": got, "seconds": round(elapsed, 3),
            "msg_per_s": round(got / elapsed) if elapsed > 0 else 0,
            "loss_pct": round(100 * (expected - got) / expected, 2),
            "server_cpu_pct": round(100 * cpu / max(elapsed, 1e-9)),
            "udp_dropped_queue": c["udp_dropped"], "udp_dropped_kernel": c["udp_dropped_kernel"]}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--messages", type=int, default=400_000, help="per TCP/TLS run (UDP: the same)")
    ap.add_argument("--peers", default="1,10,100")
    ap.add_argument("--procs", type=int, default=1, help="load-generator processes")
    ap.add_argument("--udp-rate", type=float, default=0.0, help="paced UDP msg/s (0 = as fast as possible)")
    ap.add_argument("--limit", type=float, default=30.0, help="seconds per run, at most")
    ap.add_argument("--only", default="tcp-lf,tcp-octet,tls-octet,udp")
    args = ap.parse_args()
    peers_list = [int(p) for p in args.peers.split(",")]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        files = _tls_files(Path(tmp))
        for case in args.only.split(","):
            kind, _, framing = case.partition("-")
            for peers in peers_list:
                r = asyncio.run(run_case(kind, framing or "-", peers, args.messages, args.procs, args.udp_rate,
                                         args.limit, files))
                rows.append(r)
                print(f"{r['transport']:>4} {r['framing']:>8} {r['peers']:>5} peers  {r['received']:>8}/{r['sent']:<8}"
                      f" {r['seconds']:>7.2f} s {r['msg_per_s']:>9,} msg/s  loss {r['loss_pct']:>6.2f}%"
                      f"  server CPU {r['server_cpu_pct']:>3}%"
                      + (f"  (dropped: queue {r['udp_dropped_queue']}, kernel {r['udp_dropped_kernel']})"
                         if kind == "udp" else ""), flush=True)
    result = {"machine": machine(), "message_bytes": len(MSG), "udp_rate": args.udp_rate, "runs": rows}
    print(f"results: {save('syslog_rx', result)}", file=sys.stderr)


if __name__ == "__main__":
    main()
