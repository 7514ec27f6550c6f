"""A private NATS server with JetStream for the distributed tests: its own ephemeral port and a
temporary store directory, so tests never share streams with each other or with the machine's
server. `restart()` stops it and starts it again on the same port and store (what a crash and
restart of the bus looks like to the nodes).
"""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

NATS_SERVER = shutil.which("nats-server") or "/usr/sbin/nats-server"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _accepting(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
            return s.recv(4096).startswith(b"INFO")
    except OSError:
        return False


class NatsServer:
    def __init__(self, store_dir: Path, port: int | None = None) -> None:
        self.store_dir = store_dir
        self.port = port or _free_port()
        self.proc: subprocess.Popen | None = None
        self.log = store_dir.parent / f"{store_dir.name}.log"

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def start(self, timeout: float = 20.0) -> "NatsServer":
        self.store_dir.mkdir(parents=True, exist_ok=True)
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen([NATS_SERVER, "-js", "-a", "127.0.0.1", "-p", str(self.port),
                                          "-sd", str(self.store_dir)], stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while not _accepting(self.port):
            if self.proc.poll() is not None:
                raise AssertionError(f"nats-server exited ({self.proc.returncode}): {self.log.read_text()[-2000:]}")
            if time.monotonic() > deadline:
                raise AssertionError("nats-server did not start")
            time.sleep(0.05)
        return self

    def stop(self, kill: bool = False) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
            self.proc.wait(timeout=30)

    def restart(self, down_for: float = 1.0, kill: bool = False) -> None:
        """Stop (SIGTERM, or SIGKILL with kill=True), stay down `down_for` s, start on the same port."""
        self.stop(kill=kill)
        time.sleep(down_for)
        self.start()


# -- a distributed deployment of real `dcsentry serve` processes ----------------------------------
def read_store(url: str, sql: str, *args: object) -> list[tuple]:
    """Rows from the shared store, PostgreSQL or SQLite, as the test sees them."""
    if url.startswith("postgresql"):
        import psycopg

        from dcsentry.store.dialect import to_postgres

        with psycopg.connect(url, autocommit=True) as conn:
            return conn.execute(to_postgres(sql), args).fetchall()
    import sqlite3

    db = sqlite3.connect(f"file:{url.removeprefix('sqlite:///')}?mode=ro", uri=True, timeout=30)
    try:
        return db.execute(sql, args).fetchall()
    finally:
        db.close()


def bus_config(name: str, extra: str = "", partitions: int = 8, lease: float = 3.0) -> str:
    return (f"[bus]\nname = \"{name}\"\npartitions = {partitions}\nlease_seconds = {lease}\n"
            f"[health]\ncheck_interval = 3600.0\n{extra}")


class Cluster:
    """`ingest` ingest nodes and `detect` detect workers, each its own `dcsentry serve` process."""

    def __init__(self, tmp: Path, bus_url: str, store_url: str, config: str, ingest: int = 2, detect: int = 2) -> None:
        from servekit import Serve

        common = ["--bus", bus_url, "--store", store_url]
        self.store_url = store_url
        self.ingest = [Serve(tmp / f"ingest{i}", "--role", "ingest", *common, config=config) for i in range(ingest)]
        self.detect = [Serve(tmp / f"detect{i}", "--role", "detect", *common, config=config) for i in range(detect)]

    def start(self) -> "Cluster":
        for node in self.detect + self.ingest:
            node.start()
        # The nodes share one store: the first to start printed the admin token; all of them accept it.
        self.token = next((n.token for n in self.detect + self.ingest if n.token), None)
        for node in self.detect + self.ingest:
            node.token = self.token
        return self

    def stop(self) -> None:
        for node in self.ingest + self.detect:
            node.stop()

    def query(self, sql: str, *args: object) -> list[tuple]:
        return read_store(self.store_url, sql, *args)

    def log(self) -> str:
        return "\n".join(f"--- {n.data_dir.name}\n{''.join(n.lines[-40:])}" for n in self.ingest + self.detect)
