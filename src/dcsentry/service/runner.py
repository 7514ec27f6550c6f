"""`dcsentry serve`: bind the listeners and the web port, run the processor process, stop cleanly.

The receiving side lives here (asyncio): each batch of messages is appended to the spool before
the connection reads on, and while the spool holds `spool_max_rows` unprocessed messages the
TCP/TLS readers wait (the kernel then pushes back on the senders) and UDP datagrams are dropped
and counted. SIGTERM/SIGINT: stop accepting, finish in-flight batches, let the processor drain the
spool and the forwarder the outbox, then exit.

With `--bus` (docs/scaling.md) the roles split: an ingest node publishes each batch to JetStream
instead of the spool (the connection reads on after the PubAcks), a detect node runs the stream's
detect worker as its child process instead of the spool processor, a web node only serves the
console; `all` is both ingest and detect. WEF listeners on an ingest node publish the same way and
keep only their clients' bookmarks in the local spool.db (bus/wef.py).
"""

from __future__ import annotations

import asyncio
import multiprocessing as mp
import os
import signal
import socket
import time
from collections.abc import Callable
from pathlib import Path

import uvicorn

from ..config import Config
from ..sinks.safe import visible
from ..slots import PeerSlots
from ..sources.syslog.listeners import ListenerSet, Received
from ..sources.syslog.relp import RelpServer
from ..sources.syslog.tls import server_context
from ..sources.wef.intake import WefIntake
from ..store.backend import resolve_store_url
from ..store.spool import Spool, WefUpdate
from ..store.store import open_store
from ..store.tokens import demo_token, first_start_token
from ..web.app import WebOptions, create_app
from ..web.connections import guarded_protocol
from .limits import AcceptErrors, budget, raise_nofile
from .worker import WorkerPaths, worker_main


def data_dir(configured: str) -> Path:
    if configured:
        return Path(configured).expanduser()
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return Path(base) / "dcsentry"


def host_port(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit():
        raise ValueError(f"expected HOST:PORT, got {text!r}")
    return host.strip("[]") or "127.0.0.1", int(port)


def private_dir(path: Path) -> None:
    """The data directory and everything this process (and its children) creates in it: owner only
    (0700/0600) whatever the umask, and files left readable by an older version tightened."""
    os.umask(0o077)
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(path, 0o700)
    for child in path.iterdir():
        try:
            mode = child.stat().st_mode
            if mode & 0o077:
                os.chmod(child, mode & 0o700)
        except OSError:
            pass


class Service:
    def __init__(self, cfg: Config, announce: Callable[[str], None], demo: bool = False) -> None:
        self.cfg = cfg
        self.demo = demo
        if demo:
            from .demo import demo_honeytokens

            cfg.detection.honeytokens = sorted({*cfg.detection.honeytokens, *demo_honeytokens()})
        self.announce = announce
        self.dir = data_dir(cfg.serve.data_dir)
        private_dir(self.dir)
        self.budget = budget(raise_nofile())  # descriptors shared out before anything opens (limits.py)
        self.accept_errors: dict[str, int] = {}
        self.store_url = resolve_store_url(cfg.serve.store, self.dir)
        self.store = open_store(self.store_url, self.dir)  # migrations run before anything else opens it
        self.role, self.bus = check_role(cfg.serve.role, cfg.serve.bus)
        self.listen, self.process = self.role in ("all", "ingest"), self.role in ("all", "detect")
        self.publisher = None
        if self.bus and self.listen:
            from ..bus.detect import node_name
            from ..bus.ingest import BusIngest

            self.node = node_name()
            self.publisher = BusIngest(cfg, self.node, announce, self.store)
        self.spool = Spool(self.dir / "spool.db", cfg.serve.spool_max_rows) if self.listen and not self.bus else None
        self.max_rows = cfg.serve.spool_max_rows
        self.last_seq = self.spool.last_seq() if self.spool else 0
        self.checkpoint = self.store.checkpoint()
        self._checkpoint_read = 0.0
        self.listeners: ListenerSet | None = None
        self.relp: RelpServer | None = None
        self.wef: WefIntake | None = None
        self.wef_bus = None  # bus.wef.BusWef on an ingest node with WEF listeners
        self.worker: mp.Process | None = None
        self.stopping = False
        self._alerts_seen_at = time.time()
        self._alerts_printed: set[str] = set()
        self.web_url = ""

    # -- the receiving side ------------------------------------------------------------------------
    def depth(self) -> int:
        if self.spool is None:
            return 0
        now = time.monotonic()
        if now - self._checkpoint_read > 0.1:
            self.checkpoint = self.store.checkpoint()
            self._checkpoint_read = now
        return max(0, self.last_seq - self.checkpoint)

    async def consume(self, batch: list[Received]) -> None:
        if self.publisher is not None:  # returns after JetStream acknowledged the whole batch
            await self.publisher.publish(batch)
            return
        while self.depth() >= self.max_rows:  # backpressure: this connection reads nothing meanwhile
            await asyncio.sleep(0.05)
        rows = [(r.received_at, r.peer if r.peer_name is None else f"{r.peer}#{r.peer_name}", r.transport, r.data)
                for r in batch]
        last = await asyncio.to_thread(self.spool.append, rows)
        self.last_seq = max(self.last_seq, last)  # connections commit concurrently: results come in any order

    async def consume_wef(self, rows: list[tuple[float, str, str, bytes]], update: WefUpdate) -> None:
        """A WEF delivery's events and its client's bookmark, in one spool transaction. A full spool
        holds the reply back for a while, then fails it (503: the client keeps the events and
        re-sends them from its last acknowledged bookmark)."""
        deadline = time.monotonic() + 20
        while rows and self.depth() >= self.max_rows:
            if time.monotonic() > deadline:
                raise RuntimeError("spool full")
            await asyncio.sleep(0.05)
        last = await asyncio.to_thread(self.spool.append_wef, rows, update, time.time())
        if rows:
            self.last_seq = max(self.last_seq, last)

    async def wef_bookmark(self, client: str, subscription: str) -> str | None:
        return await asyncio.to_thread(self.spool.wef_bookmark, client, subscription)

    def ingest_counters(self) -> dict:
        if not self.listen:  # detect and web nodes show the deployment's figures, merged by the leader
            return self.store.counters().get("ingest", {})
        c = dict(self.listeners.counters) if self.listeners else {}
        out = {"received": {t: c.get(f"received_messages_{t}", 0) for t in ("udp", "tcp", "tls")},
               "received_bytes": {t: c.get(f"received_bytes_{t}", 0) for t in ("udp", "tcp", "tls")}}
        out.update({k: v for k, v in c.items() if isinstance(v, int)})
        out["accept_errors"] = self.accept_errors.get("accept_errors", 0)
        if self.relp is not None:
            out["relp"] = dict(self.relp.counters)
        out["spool_depth"] = self.depth()
        if self.wef is not None:
            out["wef"] = self.wef.counters()
        return out

    def print_new_alerts(self) -> None:
        """One line per alert when it is raised, so the terminal shows what the sensor sees."""
        for ts, a in self.store.alerts_changed_since(self._alerts_seen_at):
            self._alerts_seen_at = max(self._alerts_seen_at, ts)
            if a["id"] in self._alerts_printed:
                continue
            self._alerts_printed.add(a["id"])
            text = " | ".join(line.strip() for line in a["description"].splitlines() if line.strip())
            self.announce(visible(f"ALERT {a['severity']:<6} {a['type']}: {text[:200]}", one_line=True))

    # -- processes and ports ------------------------------------------------------------------------
    def start_worker(self) -> None:
        ctx = mp.get_context("spawn")
        self._stop, self._ready = ctx.Event(), ctx.Event()
        console = self.web_url or "http://127.0.0.1:8080"
        if self.bus:
            from ..bus.detect import detect_main

            self.worker = ctx.Process(target=detect_main, args=(self.cfg, self.store_url, self.dir, console, os.getpid(),
                                                                self._stop, self._ready), name="dcsentry-detect")
        else:
            paths = WorkerPaths(self.store_url, self.dir / "spool.db", console, os.getpid())
            self.worker = ctx.Process(target=worker_main, args=(self.cfg, paths, self._stop, self._ready),
                                      name="dcsentry-processor", daemon=False)
        self.worker.start()

    def ready(self) -> bool:
        worker = not self.process or bool(self.worker and self.worker.is_alive() and self._ready.is_set())
        intake = not self.listen or bool(self.listeners and (self.publisher is None or self.publisher.connected))
        return worker and intake

    async def start_web(self) -> uvicorn.Server | None:
        if not self.cfg.serve.web:
            return None
        s = self.cfg.serve
        host, port = host_port(s.web)
        sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        # Accepted connections inherit it: a response's header and body writes go out at once, not
        # 40 ms apart behind the client's delayed ACK on a keep-alive connection.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.bind((host, port))
        sock.listen(128)
        sock.setblocking(False)
        bound = sock.getsockname()[1]
        https = bool(s.web_cert)
        options = WebOptions(detection=self.cfg.detection, missing_scale=self.cfg.health.missing_scale, https=https,
                             demo=self.demo)
        self.web_app = create_app(self.store, self.ingest_counters, self.ready, options)
        self.web_app.state.live.start()
        tls = {"ssl_certfile": s.web_cert, "ssl_keyfile": s.web_key or None} if https else {}
        slots = PeerSlots(self.budget.web_total, self.budget.web_per_peer)
        http = guarded_protocol(slots, self.web_app.state.counters)
        server = uvicorn.Server(uvicorn.Config(self.web_app, log_level="warning", lifespan="off", access_log=False,
                                               timeout_graceful_shutdown=5, http=http, **tls))
        self._web_task = asyncio.create_task(server.serve(sockets=[sock]))
        scheme = "https" if https else "http"
        self.web_url = f"{scheme}://{f'[{host}]' if ':' in host else host}:{bound}"
        self.announce(f"web listening on {self.web_url}")
        if host in ("0.0.0.0", "::"):  # every interface: this machine's loopback is one of them
            self.web_url = f"{scheme}://{'127.0.0.1' if host == '0.0.0.0' else '[::1]'}:{bound}"
        self.announce_console()
        return server

    def announce_console(self) -> None:
        """Where the console is, and (first start, or every --demo start) the token to log in with."""
        token = demo_token(self.store) if self.demo else first_start_token(self.store)
        if token and self.demo:
            self.announce(f"console: {self.web_url}/login#token={token}")
            self.announce(f"admin token (demo; a new one each start): {token}")
        elif token:
            self.announce(f"console: {self.web_url}/")
            self.announce(f"admin token (shown once, only its hash is stored; keep it now): {token}")
        else:
            self.announce(f"console: {self.web_url}/ (log in with a token: `dcsentry token create --name NAME "
                          f"--role admin` makes one)")

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        s = self.cfg.serve
        tls_ctx = server_context(s.tls_cert, s.tls_key or None, client_ca=s.tls_client_ca or None) \
            if s.syslog_tls or s.syslog_relp_tls else None
        if self.listen and (self.cfg.wef.https or self.cfg.wef.http):
            if self.publisher is not None:  # events to the stream, bookmarks to the local spool.db (bus/wef.py)
                from ..bus.wef import BusWef

                self.wef_bus = BusWef(self.cfg, self.publisher, self.dir / "spool.db")
                self.wef = WefIntake(self.cfg.wef, self.wef_bus.consume, self.wef_bus.bookmark)
            else:
                self.wef = WefIntake(self.cfg.wef, self.consume_wef, self.wef_bookmark)
        accept = (lambda: self.publisher.connected) if self.publisher else (lambda: self.depth() < self.max_rows)
        loop.set_exception_handler(AcceptErrors(self.accept_errors))
        self.listeners = ListenerSet(self.consume, udp_accept=accept, tls_context=tls_ctx,
                                     max_connections=self.budget.syslog_total,
                                     max_per_peer=self.budget.syslog_per_peer) if self.listen else None
        web = await self.start_web()
        if self.publisher is not None:
            await self.publisher.start(stop)
            self.announce(f"ingest node {self.node} publishing to {self.bus} ({self.cfg.bus.partitions} partitions)")
        if self.process:
            self.start_worker()
        bound = []
        if self.listeners is not None:
            bound = await self.listeners.start(udp=[host_port(a) for a in s.syslog_udp],
                                               tcp=[host_port(a) for a in s.syslog_tcp],
                                               tls=[host_port(a) for a in s.syslog_tls])
        if self.listen and (s.syslog_relp or s.syslog_relp_tls):
            self.relp = RelpServer(self.consume, tls_context=tls_ctx, max_connections=self.budget.syslog_total,
                                   max_per_peer=self.budget.syslog_per_peer)
            bound += await self.relp.start([host_port(a) for a in s.syslog_relp],
                                           [host_port(a) for a in s.syslog_relp_tls])
        for transport, host, port in bound:
            self.announce(f"syslog-{transport} listening on {host}:{port}")
        if self.wef is not None:
            await self.wef.start(self.announce)
        self.announce(f"data in {self.dir}")
        if self.demo:
            tcp = next(((h, p) for t, h, p in bound if t == "tcp"), None)
            if tcp is None:
                raise ValueError("--demo needs a TCP syslog listener")
            from .demo import feed

            self._demo_task = asyncio.create_task(feed(*tcp))
            self.announce(f"demo: a simulated domain is forwarding to {tcp[0]}:{tcp[1]}; alerts are printed "
                          f"here and appear in the console as they are raised")
        while not stop.is_set():
            try:
                await asyncio.wait_for(stop.wait(), timeout=1.0)
            except asyncio.TimeoutError:
                pass
            self.save_counters()
            if self.process:
                self.print_new_alerts()
            if self.worker is not None and not self.worker.is_alive() and not stop.is_set():
                self.announce(f"processor exited ({self.worker.exitcode}); restarting it")
                self.start_worker()
        if self.relp is not None:
            await self.relp.stop()
        if self.listeners is not None:
            await self.listeners.stop(drain=True)
        if self.wef is not None:
            await self.wef.stop()
        self.save_counters()
        if self.publisher is not None:
            await self.publisher.close()
        if self.worker is not None:
            self._stop.set()
            await asyncio.to_thread(self.worker.join)
        if web is not None:
            await self.web_app.state.live.close()  # ends the event streams, so the server can stop
            web.should_exit = True
            await self._web_task
        if self.spool is not None:
            self.spool.close()
        if self.wef_bus is not None:
            self.wef_bus.close()
        self.store.close()
        return 0

    def save_counters(self) -> None:
        if not self.listen:
            return
        if self.publisher is None:
            self.store.save_counters("ingest", self.ingest_counters())
        else:  # one row per ingest node; the leader adds them up
            self.store.save_counters(f"ingest:{self.node}", {**self.ingest_counters(), "parse": self.publisher.snapshot(),
                                                             "saved_at": time.time()})
            if self.wef_bus is not None:  # for the leader's "stopped forwarding" check
                self.store.save_counters(f"wef:{self.node}", self.wef_bus.snapshot())


def check_role(role: str, bus: str) -> tuple[str, str]:
    if role not in ("all", "ingest", "detect", "web"):
        raise ValueError(f"--role must be all, ingest, detect or web, got {role!r}")
    if role in ("ingest", "detect") and not bus:
        raise ValueError(f"--role {role} needs --bus nats://HOST:PORT (the stream between ingest and detect nodes)")
    return role, bus
