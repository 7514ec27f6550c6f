"""Running the real `dcsentry serve` process in tests, feeding it syslog, and receiving its CEF.

Nothing is faked: the service is started as a process on ephemeral loopback ports (it prints the
ports it bound), events go over real UDP/TCP/TLS sockets, alerts come back over a real TCP
receiver, and results are read from its SQLite store.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import sqlite3
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path

import evtx

DCSENTRY = [str(Path(sys.executable).parent / "dcsentry")]


def _alive(pid: str) -> bool:
    """Running (a zombie that nobody has reaped yet is dead)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def wait_for(pred: Callable[[], object], timeout: float = 60.0, what: str = "condition", every: float = 0.1) -> object:
    deadline = time.monotonic() + timeout
    while True:
        value = pred()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(every)


class CefReceiver:
    """A SIEM stand-in: accepts TCP, splits RFC 6587 octet-counted frames, keeps the messages."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.messages: list[str] = []
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._read, args=(conn,), daemon=True).start()

    def _read(self, conn: socket.socket) -> None:
        buf = b""
        with conn:
            while chunk := conn.recv(65536):
                buf += chunk
                while b" " in buf:
                    size, _, rest = buf.partition(b" ")
                    if not size.isdigit() or len(rest) < int(size):
                        break
                    with self._lock:
                        self.messages.append(rest[: int(size)].decode("utf-8", "replace"))
                    buf = rest[int(size):]

    def with_text(self, text: str) -> list[str]:
        with self._lock:
            return [m for m in self.messages if text in m]

    def close(self) -> None:
        self.sock.close()


class Serve:
    """`dcsentry serve` as a child process; ports parsed from what it prints."""

    def __init__(self, data_dir: Path, *args: str, config: str | None = None, env: dict | None = None) -> None:
        self.data_dir = data_dir
        self.args = list(args)
        self.config_path = None
        if config is not None:
            self.config_path = data_dir.parent / f"{data_dir.name}.toml"
            self.config_path.write_text(config)
        self.env = {**os.environ, **(env or {})}
        self.proc: subprocess.Popen | None = None
        self.ports: dict[str, int] = {}
        self.lines: list[str] = []
        self.token: str | None = None  # the admin token the first start prints (the web needs one)

    def start(self) -> "Serve":
        cmd = DCSENTRY + ["serve", "--data-dir", str(self.data_dir), "--syslog-udp", "127.0.0.1:0",
                          "--syslog-tcp", "127.0.0.1:0", "--web", "127.0.0.1:0", *self.args]
        if self.config_path:
            cmd += ["--config", str(self.config_path)]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=self.env)
        self.ports = {}
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                raise AssertionError(f"serve exited early ({self.proc.wait()}): {''.join(self.lines)}")
            self.lines.append(line)
            m = re.match(r"(syslog-udp|syslog-tcp|syslog-tls|web) listening on (?:http://)?[\d.]+:(\d+)", line)
            if m:
                self.ports[m.group(1).removeprefix("syslog-")] = int(m.group(2))
            t = re.match(r"admin token [^:]*: (dcs_\S+)", line)
            if t:
                self.token = t.group(1)
            if line.startswith("data in"):
                threading.Thread(target=self._drain, daemon=True).start()
                return self
        raise AssertionError("serve did not announce its ports")

    def _drain(self) -> None:
        for line in self.proc.stdout:  # keep the pipe from filling up
            self.lines.append(line)

    def kill9(self) -> None:
        """SIGKILL the service; its processor process must die with it (it asks the kernel to)."""
        children = subprocess.run(["pgrep", "-P", str(self.proc.pid)], capture_output=True, text=True).stdout.split()
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)
        wait_for(lambda: not any(_alive(pid) for pid in children), timeout=30,
                 what="the processor process to die with its parent")

    def stop(self) -> int:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            return self.proc.wait(timeout=120)
        return self.proc.returncode if self.proc else 0

    # -- reading its state ----------------------------------------------------------------------
    def db(self) -> sqlite3.Connection:
        return sqlite3.connect(f"file:{self.data_dir / 'dcsentry.db'}?mode=ro", uri=True, timeout=30)

    def query(self, sql: str, *args: object) -> list[tuple]:
        db = self.db()
        try:
            return db.execute(sql, args).fetchall()
        finally:
            db.close()

    def spool_rows(self) -> int:
        db = sqlite3.connect(f"file:{self.data_dir / 'spool.db'}?mode=ro", uri=True, timeout=30)
        try:
            return db.execute("SELECT COALESCE(MAX(last_msg), 0) FROM spool").fetchone()[0]
        finally:
            db.close()

    def caught_up(self) -> bool:
        done = self.query("SELECT value FROM progress WHERE name = 'spool'")
        return bool(done) and done[0][0] >= self.spool_rows() > 0

    def alerts(self, kind: str = "security") -> list[dict]:
        return [json.loads(b) for (b,) in self.query("SELECT body FROM alerts WHERE kind = ?", kind)]

    def http(self, path: str) -> tuple[int, str]:
        import httpx

        auth = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        r = httpx.get(f"http://127.0.0.1:{self.ports['web']}{path}", headers=auth, timeout=10)
        return r.status_code, r.text


def frame(payload: bytes, host: str = "DC01") -> bytes:
    """An RFC 5424 message carrying `payload`."""
    return b"<14>1 2024-01-01T00:00:00Z " + host.encode() + b" dcsentry-test - - - " + payload


def octet(msg: bytes) -> bytes:
    return b"%d %s" % (len(msg), msg)


def corpus_json(path: Path, ids: Iterable[int] | None = None) -> list[bytes]:
    """A corpus EVTX file's records in the evtx JSON layout (what Winlogbeat-less shippers send)."""
    wanted = set(ids) if ids else None
    out = []
    for rec in evtx.PyEvtxParser(str(path)).records_json():
        doc = json.loads(rec["data"])
        sysinfo = doc["Event"]["System"]
        eid = sysinfo["EventID"]["#text"] if isinstance(sysinfo["EventID"], dict) else sysinfo["EventID"]
        if wanted is None or eid in wanted:
            out.append(json.dumps(doc, separators=(",", ":")).encode())
    return out


def send_tcp(port: int, messages: Iterable[bytes], ctx: ssl.SSLContext | None = None) -> int:
    with socket.create_connection(("127.0.0.1", port), timeout=30) as raw:
        sock = ctx.wrap_socket(raw, server_hostname="localhost") if ctx else raw
        n = 0
        batch = []
        for m in messages:
            batch.append(octet(m))
            n += 1
            if len(batch) >= 500:
                sock.sendall(b"".join(batch))
                batch.clear()
        if batch:
            sock.sendall(b"".join(batch))
        sock.close()
    return n


def send_udp(port: int, messages: Iterable[bytes]) -> int:
    n = 0
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        for m in messages:
            s.sendto(m, ("127.0.0.1", port))
            n += 1
    return n
