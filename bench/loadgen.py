"""The load generator of bench_serve.py: pre-rendered DC events, sender processes, CPU readings."""


from __future__ import annotations

import json
import multiprocessing as mp
import os
import resource
import socket
import time
from array import array
from pathlib import Path


CHUNK = 256 * 1024
TICK = os.sysconf("SC_CLK_TCK")


# -- the messages (same layout and values as tests/test_serve_load.py's message()) ------------------

def message(i: int) -> bytes:
    """A DC's 4776 success with a unique record id, evtx JSON behind an RFC 5424 header."""
    doc = {"Event": {"System": {
        "Provider": {"#attributes": {"Name": "Microsoft-Windows-Security-Auditing"}}, "EventID": 4776,
        "Keywords": "0x8020000000000000",
        "TimeCreated": {"#attributes": {"SystemTime": "2024-03-04T10:00:%02d.%06dZ" % (i // 1_000_000 % 60,
                                                                                      i % 1_000_000)}},
        "EventRecordID": i, "Channel": "Security", "Computer": f"DC{i % 4:02d}.contoso.local"},
        "EventData": {"PackageName": "MICROSOFT_AUTHENTICATION_PACKAGE_V1_0", "TargetUserName": f"user{i % 5000}",
                      "Workstation": f"WS{i % 3000}", "Status": "0x0"}}}
    host = f"DC{i % 4:02d}".encode()
    body = json.dumps(doc, separators=(",", ":")).encode()
    return b"<14>1 2024-01-01T00:00:00Z " + host + b" dcsentry-test - - - " + body


def shares(total: int, parts: int) -> list[tuple[int, int]]:
    """(first record id, count) of each peer: 1..total split as evenly as possible."""
    out, first = [], 1
    for p in range(parts):
        n = total // parts + (1 if p < total % parts else 0)
        out.append((first, n))
        first += n
    return out


class Corpus:
    """Messages 1..n rendered once per run into a file (all messages back to back, plus their end
    offsets), so each row's sender processes only slice it: the same bytes for every row and tool."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.data = path.read_bytes()
        self.ends = array("Q")
        self.ends.frombytes(Path(f"{path}.idx").read_bytes())

    @staticmethod
    def render(path: Path, n: int) -> "Corpus":
        ends, pos = array("Q", [0]), 0
        with open(path, "wb") as f:
            for i in range(1, n + 1):
                m = message(i)
                f.write(m)
                pos += len(m)
                ends.append(pos)
        Path(f"{path}.idx").write_bytes(ends.tobytes())
        return Corpus(path)

    def get(self, i: int) -> bytes:
        """Message with record id i (1-based)."""
        return self.data[self.ends[i - 1]:self.ends[i]]

    def expected_bytes(self, total: int) -> int:
        """What rsyslog's file holds once messages 1..total arrived: each message plus LF."""
        return self.ends[total] + total


# -- the load generator (separate processes) ----------------------------------------------------------

def _cpu_self() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _stream_sender(corpus: str, port: int, ranges: list[tuple[int, int]], ready: mp.Queue, go: mp.Event) -> None:
    msgs = Corpus(Path(corpus))
    per_conn: list[list[bytes]] = []
    for first, count in ranges:
        chunks, buf, size = [], [], 0
        for i in range(first, first + count):
            m = msgs.get(i)
            f = b"%d %s" % (len(m), m)
            buf.append(f)
            size += len(f)
            if size >= CHUNK:
                chunks.append(b"".join(buf))
                buf, size = [], 0
        if buf:
            chunks.append(b"".join(buf))
        per_conn.append(chunks)
    socks = [socket.create_connection(("127.0.0.1", port), timeout=120) for _ in ranges]
    del msgs
    ready.put(("ready", 0.0))
    go.wait()
    cpu0 = _cpu_self()
    idx = [0] * len(socks)
    live = [i for i in range(len(socks)) if per_conn[i]]
    while live:
        for i in live:
            socks[i].sendall(per_conn[i][idx[i]])
            idx[i] += 1
        live = [i for i in live if idx[i] < len(per_conn[i])]
    for s in socks:
        s.close()
    ready.put(("cpu", _cpu_self() - cpu0))


def _udp_sender(corpus: str, port: int, ranges: list[tuple[int, int]], rate: float, ready: mp.Queue,
                go: mp.Event) -> None:
    msgs = Corpus(Path(corpus))
    socks = []
    for _ in ranges:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.connect(("127.0.0.1", port))
        socks.append(s)
    # interleave the peers' messages: peer k sends its j-th message in round j
    plan: list[tuple[object, bytes]] = []
    longest = max(n for _, n in ranges)
    for j in range(longest):
        for k, (first, n) in enumerate(ranges):
            if j < n:
                plan.append((socks[k].send, msgs.get(first + j)))
    del msgs
    ready.put(("ready", 0.0))
    go.wait()
    cpu0 = _cpu_self()
    t0 = time.perf_counter()
    failed = 0
    for i, (send, m) in enumerate(plan):
        try:
            send(m)
        except OSError:  # an ICMP refusal (ECONNREFUSED) or ENOBUFS: never left this side
            failed += 1
        if rate and i % 200 == 199:
            ahead = (i + 1) / rate - (time.perf_counter() - t0)
            if ahead > 0:
                time.sleep(ahead)
    for s in socks:
        s.close()
    ready.put(("cpu", _cpu_self() - cpu0))
    ready.put(("send_failed", float(failed)))


# -- CPU accounting from /proc ----------------------------------------------------------------------

def proc_cpu(pid: int) -> float:
    """user+system seconds of one process (all its threads); 0 if it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICK


def children(pid: int) -> list[int]:
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def _alive(pid: int) -> bool:
    """Running (a zombie nobody reaped yet is dead)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


STAT_FIELDS = ("user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal")


def system_cpu() -> dict[str, float]:
    """CPU seconds of the whole machine (all cores) since boot, by kind (/proc/stat)."""
    v = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    return {k: x / TICK for k, x in zip(STAT_FIELDS, v)}


def system_busy(c: dict[str, float]) -> float:
    return sum(v for k, v in c.items() if k not in ("idle", "iowait"))
