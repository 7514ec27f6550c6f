"""File descriptors: how many the service may spend on whom, so that a flood of idle or half-sent
connections never takes the console, the health probes or other senders down (docs/security.md).

At start the soft RLIMIT_NOFILE is raised to the hard limit (allowed without privileges). The
descriptors are then shared out: a reserve for the store, the spool, the processor's pipes, the
bus and the listening sockets; a cap for syslog connections and one for web connections, each
with a per-peer cap below it, so one address can never hold a whole pool. Past a cap a connection
is accepted and closed at once (counted), which keeps the accept queue moving. If the process still
runs out (EMFILE), asyncio's accept error is counted and logged once a minute, not as a traceback
per attempt.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import resource
import time
from dataclasses import dataclass
from typing import Any

log = logging.getLogger("dcsentry.limits")
RESERVE_MIN = 64  # store, spool, WAL/SHM, pipes to the processor, listeners, NATS, certificates


@dataclass(frozen=True, slots=True)
class Budget:
    nofile: int
    syslog_total: int
    syslog_per_peer: int
    web_total: int
    web_per_peer: int


def raise_nofile() -> int:
    """The soft descriptor limit, raised to the hard one where allowed; the limit in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
    if soft != resource.RLIM_INFINITY and soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            pass
    return int(soft if soft != resource.RLIM_INFINITY else 1 << 20)


def budget(nofile: int, syslog_max: int = 10_000) -> Budget:
    """Half of what is left after the reserve for syslog, a quarter for the web; each peer at most
    half of a pool. (A quarter stays free: WEF connections, bursts, files opened later.)"""
    reserve = max(RESERVE_MIN, nofile // 10)
    free = max(0, nofile - reserve)
    syslog_total = max(8, min(syslog_max, free // 2))
    web_total = max(8, min(4096, free // 4))
    return Budget(nofile, syslog_total, max(4, syslog_total // 2), web_total, max(4, web_total // 2))


class AcceptErrors:
    """A loop exception handler that turns "out of descriptors" accept errors into a counter and
    one log line a minute; everything else goes to the default handler."""

    def __init__(self, counters: dict[str, int]) -> None:
        self.counters = counters
        self._logged = 0.0

    def __call__(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        exc = context.get("exception")
        if isinstance(exc, OSError) and exc.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
            self.counters["accept_errors"] = self.counters.get("accept_errors", 0) + 1
            now = time.monotonic()
            if now - self._logged > 60:
                self._logged = now
                log.warning("out of file descriptors: new connections wait (%s; %d so far)", exc.strerror,
                            self.counters["accept_errors"])
            return
        loop.default_exception_handler(context)
