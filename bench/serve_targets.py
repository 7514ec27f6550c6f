"""The two receivers bench_serve.py drives: `dcsentry serve` and rsyslogd, behind one small interface."""


from __future__ import annotations

import json
import re
import shutil
import signal
import sqlite3
import subprocess
import threading
import time
from pathlib import Path

from common import dcsentry_cmd
from loadgen import _alive, children, proc_cpu
from rsyslog import Rsyslog


# -- the two receivers --------------------------------------------------------------------------------

class Dcsentry:
    name = "dcsentry"

    def __init__(self, folder: Path, extra: list[str] | None = None) -> None:
        self.folder = folder
        self.extra = list(extra or [])  # more `serve` options (bench_wire.py: --forward to its CEF sink)
        self.proc: subprocess.Popen | None = None
        self.lines: list[str] = []

    def start(self, transport: str) -> int:
        if self.folder.exists():
            shutil.rmtree(self.folder)
        self.folder.mkdir(parents=True)
        cmd = dcsentry_cmd() + ["serve", "--data-dir", str(self.folder), "--syslog-udp", "127.0.0.1:0",
                                "--syslog-tcp", "127.0.0.1:0", "--web", "off", *self.extra]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                     stdin=subprocess.DEVNULL)
        ports: dict[str, int] = {}
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                raise RuntimeError(f"dcsentry serve exited early ({self.proc.wait()}): {''.join(self.lines)}")
            self.lines.append(line)
            m = re.match(r"syslog-(udp|tcp) listening on [\d.]+:(\d+)", line)
            if m:
                ports[m.group(1)] = int(m.group(2))
            if line.startswith("data in"):
                threading.Thread(target=self._drain, daemon=True).start()
                break
        else:
            raise RuntimeError("dcsentry serve did not announce its ports")
        self.spool = sqlite3.connect(f"file:{self.folder / 'spool.db'}?mode=ro", uri=True, timeout=30)
        self.store = sqlite3.connect(f"file:{self.folder / 'dcsentry.db'}?mode=ro", uri=True, timeout=30)
        # the processor must be up before the clock starts (it is a spawned process importing dcsentry)
        deadline = time.monotonic() + 60
        while not children(self.proc.pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(1.0)
        return ports[transport]

    def _drain(self) -> None:
        for line in self.proc.stdout:
            self.lines.append(line)

    def progress(self) -> int:
        return int(self.spool.execute("SELECT COALESCE(MAX(last_msg), 0) FROM spool").fetchone()[0])

    def goal(self, count: int, nbytes: int) -> int:
        return count

    def final(self) -> int:
        return self.progress()

    def processed(self) -> int:
        row = self.store.execute("SELECT value FROM progress WHERE name = 'spool'").fetchone()
        return int(row[0]) if row else 0

    def cpu(self) -> dict[str, float]:
        return {"receiver": proc_cpu(self.proc.pid),
                "processor": sum(proc_cpu(c) for c in children(self.proc.pid))}

    def stop(self, drained: bool) -> None:
        """SIGTERM when the processor caught up (a clean stop is then quick); otherwise SIGKILL, as
        a clean stop would first process the whole backlog (the processor dies with its parent)."""
        kids = children(self.proc.pid)
        self.spool.close()
        self.store.close()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM if drained else signal.SIGKILL)
            try:
                self.proc.wait(timeout=120)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        deadline = time.monotonic() + 30
        while any(_alive(k) for k in kids) and time.monotonic() < deadline:
            time.sleep(0.1)
        self.returncode = self.proc.returncode

    def report(self) -> dict:
        """After stop: the service's own ingest counters (saved every second) and spool files."""
        db = sqlite3.connect(f"file:{self.folder / 'dcsentry.db'}?mode=ro", uri=True, timeout=30)
        try:
            row = db.execute("SELECT data FROM counters WHERE name = 'ingest'").fetchone()
        finally:
            db.close()
        c = json.loads(row[0]) if row else {}
        keys = ("udp_dropped", "udp_dropped_kernel", "udp_dropped_queue_full", "udp_dropped_refused", "batches",
                "delivered_messages", "consumer_errors", "dropped_at_stop")
        sizes = {p.name: p.stat().st_size for p in self.folder.glob("spool.db*")}
        return {"exit": self.returncode, "counters": {k: c.get(k) for k in keys}, "spool_files": sizes,
                "output": [line.rstrip() for line in self.lines if not line.startswith(("syslog-", "data in"))][-5:]}


class RsyslogTarget:
    def __init__(self, folder: Path, exe: str, sync: bool = False) -> None:
        self.folder, self.exe, self.sync = folder, exe, sync
        self.name = "rsyslog-sync" if sync else "rsyslog"
        self.rs: Rsyslog | None = None

    def start(self, transport: str) -> int:
        if self.folder.exists():
            shutil.rmtree(self.folder)
        self.rs = Rsyslog(self.folder, self.exe, sync=self.sync).start(tcp=transport == "tcp", udp=transport == "udp")
        time.sleep(0.5)
        return self.rs.tcp_port if transport == "tcp" else self.rs.udp_port

    def progress(self) -> int:
        return self.rs.size()

    def goal(self, count: int, nbytes: int) -> int:
        return nbytes

    def final(self) -> int:
        return self.rs.lines()

    def processed(self) -> int:
        return 0

    def cpu(self) -> dict[str, float]:
        return {"rsyslogd": proc_cpu(self.rs.pid)}

    def stop(self, drained: bool) -> None:
        self.rs.stop()
