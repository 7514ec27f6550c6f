"""`dcsentry serve`: bind the listeners and the web port, run the detection process, stop cleanly.

The receiving side lives here (asyncio): each batch of messages goes to the intake (decoded and
durable: runtime/intake.py) before the connection reads on; while the intake cannot take more the
TCP/TLS readers wait (the kernel then pushes back on the senders) and UDP datagrams are dropped
and counted. SIGTERM/SIGINT: stop accepting, finish in-flight batches, let the detection process
finish its batch and the forwarder drain the outbox, then exit.

Which parts run here and what joins them are two strategies (service/roles.py): the role (all,
ingest, detect, web) and the mode (the single node's spool, or `--bus`: a JetStream stream,
docs/scaling.md).
"""

from __future__ import annotations

import asyncio
import multiprocessing as mp
import os
import signal
import socket
import time
from collections.abc import Callable
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any

import uvicorn

from ..config import Config, data_dir, host_port
from ..gcpolicy import tune_for_throughput
from ..runtime.intake import Intake
from ..sinks.safe import visible
from ..slots import PeerSlots
from ..sources.syslog.listeners import ListenerSet
from ..sources.syslog.relp import RelpServer
from ..sources.syslog.tls import server_context
from ..sources.wef.intake import WefIntake
from ..store.backend import resolve_store_url
from ..store.store import open_store
from ..store.tokens import demo_token, first_start_token
from ..web.app import WebOptions, create_app
from ..web.connections import guarded_protocol
from .limits import AcceptErrors, budget, raise_nofile
from .roles import choose


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
        self.role, self.mode = choose(cfg, self.dir, self.store, announce)
        self.listen, self.process = self.role.listens, self.role.detects
        self.node = self.mode.node
        self.intake: Intake | None = self.mode.intake() if self.listen else None
        self.listeners: ListenerSet | None = None
        self.relp: RelpServer | None = None
        self.wef: WefIntake | None = None
        self.worker: BaseProcess | None = None
        self.stopping = False
        self._alerts_seen_at = time.time()
        self._alerts_printed: set[str] = set()
        self.web_url = ""

    # -- the receiving side ------------------------------------------------------------------------
    def ingest_counters(self) -> dict:
        if not self.listen:  # detect and web nodes show the deployment's figures, added up by housekeeping
            return self.store.counters().get("ingest", {})
        c = dict(self.listeners.counters) if self.listeners else {}
        out: dict[str, Any] = {"received": {t: c.get(f"received_messages_{t}", 0) for t in ("udp", "tcp", "tls")},
               "received_bytes": {t: c.get(f"received_bytes_{t}", 0) for t in ("udp", "tcp", "tls")}}
        out.update({k: v for k, v in c.items() if isinstance(v, int)})
        out["accept_errors"] = self.accept_errors.get("accept_errors", 0)
        if self.relp is not None:
            out["relp"] = dict(self.relp.counters)
        if self.intake is not None:
            out.update({k: v for k, v in self.intake.snapshot().items() if k != "parse"})
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
        target, args, name = self.mode.detection(self.store_url, self.web_url or "http://127.0.0.1:8080")
        self.worker = ctx.Process(target=target, args=(*args, self._stop, self._ready), name=name, daemon=False)
        self.worker.start()

    def ready(self) -> bool:
        worker = not self.process or bool(self.worker and self.worker.is_alive() and self._ready.is_set())
        intake = not self.listen or bool(self.listeners and self.intake is not None and self.intake.ready)
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
        slots = PeerSlots(self.budget.web_total, self.budget.web_per_peer)
        http = guarded_protocol(slots, self.web_app.state.counters)
        server = uvicorn.Server(uvicorn.Config(self.web_app, log_level="warning", lifespan="off", access_log=False,
                                               timeout_graceful_shutdown=5, http=http,
                                               ssl_certfile=s.web_cert if https else None,
                                               ssl_keyfile=(s.web_key or None) if https else None))
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
        loop.set_exception_handler(AcceptErrors(self.accept_errors))
        web = await self.start_web()
        if self.intake is not None:
            await self.intake.start(stop)
            if self.mode.describe():
                self.announce(self.mode.describe())
        if self.process:
            self.start_worker()
        tune_for_throughput()  # the receiving process decodes every message (runtime/decode.py)
        bound = await self.start_listening(self.intake) if self.intake is not None else []
        self.announce(f"data in {self.dir}")
        if self.demo:
            self.start_demo(bound)
        await self.watch(stop)
        await self.shut_down(web)
        return 0

    async def start_listening(self, intake: Intake) -> list[tuple[str, str, int]]:
        """Syslog (UDP/TCP/TLS), RELP and WEF listeners, all handing their batches to `intake`."""
        s = self.cfg.serve
        tls_ctx = server_context(s.tls_cert, s.tls_key or None, client_ca=s.tls_client_ca or None) \
            if s.syslog_tls or s.syslog_relp_tls else None
        self.listeners = ListenerSet(intake.consume, udp_accept=intake.accepting, tls_context=tls_ctx,
                                     max_connections=self.budget.syslog_total, max_per_peer=self.budget.syslog_per_peer)
        bound = await self.listeners.start(udp=[host_port(a) for a in s.syslog_udp],
                                           tcp=[host_port(a) for a in s.syslog_tcp],
                                           tls=[host_port(a) for a in s.syslog_tls])
        if s.syslog_relp or s.syslog_relp_tls:
            self.relp = RelpServer(intake.consume, tls_context=tls_ctx, max_connections=self.budget.syslog_total,
                                   max_per_peer=self.budget.syslog_per_peer)
            bound += await self.relp.start([host_port(a) for a in s.syslog_relp],
                                           [host_port(a) for a in s.syslog_relp_tls])
        for transport, host, port in bound:
            self.announce(f"syslog-{transport} listening on {host}:{port}")
        if self.cfg.wef.https or self.cfg.wef.http:
            self.wef = WefIntake(self.cfg.wef, intake.consume_wef, intake.wef_bookmark)
            await self.wef.start(self.announce)
        return bound

    def start_demo(self, bound: list[tuple[str, str, int]]) -> None:
        tcp = next(((h, p) for t, h, p in bound if t == "tcp"), None)
        if tcp is None:
            raise ValueError("--demo needs a TCP syslog listener")
        from .demo import feed

        self._demo_task = asyncio.create_task(feed(*tcp))
        self.announce(f"demo: a simulated domain is forwarding to {tcp[0]}:{tcp[1]}; alerts are printed "
                      f"here and appear in the console as they are raised")

    async def watch(self, stop: asyncio.Event) -> None:
        """Until stopped: save this node's counters, print new alerts, restart a dead detection process."""
        while not stop.is_set():
            try:
                await asyncio.wait_for(stop.wait(), timeout=1.0)
            except TimeoutError:
                pass
            self.save_counters()
            if self.process:
                self.print_new_alerts()
            if self.worker is not None and not self.worker.is_alive() and not stop.is_set():
                self.announce(f"processor exited ({self.worker.exitcode}); restarting it")
                self.start_worker()

    async def shut_down(self, web: uvicorn.Server | None) -> None:
        """Listeners first (in-flight batches finished), then the detection process, the web, the store."""
        if self.relp is not None:
            await self.relp.stop()
        if self.listeners is not None:
            await self.listeners.stop(drain=True)
        if self.wef is not None:
            await self.wef.stop()
        self.save_counters()
        if self.worker is not None:
            self._stop.set()
            await asyncio.to_thread(self.worker.join)
        if web is not None:
            await self.web_app.state.live.close()  # ends the event streams, so the server can stop
            web.should_exit = True
            await self._web_task
        if self.intake is not None:
            await self.intake.close()
        self.store.close()

    def save_counters(self) -> None:
        """This intake's row (`ingest:<node>`, its parse counters inside) and its WEF clients
        (`wef:<node>`, for the health check); housekeeping adds every node's up (runtime/counters.py)."""
        if self.intake is None:
            return
        self.store.save_counters(f"ingest:{self.node}", {**self.ingest_counters(),
                                                          "parse": self.intake.snapshot().get("parse", {}),
                                                          "saved_at": time.time()})
        if self.wef is not None:
            self.store.save_counters(f"wef:{self.node}", {"clients": self.intake.wef_clients(),
                                                        "saved_at": time.time()})
