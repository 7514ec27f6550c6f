"""The NATS connection, the events stream and the key-value buckets, named from `[bus] name`.

Every node creates what it needs if missing (idempotent), so there is no separate setup step. The
stream records its partition count: a node configured with another count refuses to start rather
than route keys to the wrong workers.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from dataclasses import dataclass

import nats
from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.js.api import DiscardPolicy, KeyValueConfig, RetentionPolicy, StorageType, StreamConfig
from nats.js.errors import BucketNotFoundError, NotFoundError
from nats.js.kv import KeyValue

from ..config import Bus

_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


@dataclass(frozen=True)
class Names:
    prefix: str

    def __post_init__(self) -> None:
        if not _NAME.match(self.prefix):
            raise ValueError(f"[bus] name must be letters, digits, '-' or '_', got {self.prefix!r}")

    @property
    def stream(self) -> str:
        return f"{self.prefix}-events"

    def subject(self, p: int) -> str:
        return f"{self.prefix}.events.{p}"

    def consumer(self, p: int) -> str:
        return f"{self.prefix}-p{p}"

    @property
    def leases(self) -> str:
        return f"{self.prefix}-leases"

    @property
    def members(self) -> str:
        return f"{self.prefix}-members"

    @property
    def dcs(self) -> str:
        return f"{self.prefix}-dcs"


def _servers(url: str) -> list[str]:
    out = [u.strip() for u in url.split(",") if u.strip()]
    for u in out:
        if not u.startswith(("nats://", "tls://")):
            raise ValueError(f"--bus must be nats://host:port (or tls://), got {u!r}")
    return out


async def connect(url: str, name: str, announce: Callable[[str], None], stop: asyncio.Event | None = None) -> Client:
    """Connected, reconnecting forever afterwards; the first connection is retried until `stop`."""
    servers = _servers(url)
    delay = 0.2
    while True:
        try:
            return await nats.connect(servers=servers, name=name, max_reconnect_attempts=-1, reconnect_time_wait=0.5,
                                      connect_timeout=3, allow_reconnect=True, ping_interval=5, max_outstanding_pings=3,
                                      error_cb=_quiet, disconnected_cb=_none, reconnected_cb=_none)
        except (TimeoutError, OSError, nats.errors.Error) as exc:
            if stop is not None and stop.is_set():
                raise
            announce(f"bus {', '.join(servers)} not reachable ({exc or type(exc).__name__}); retrying")
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)


async def _quiet(exc: Exception) -> None:
    """Connection errors are retried by the client; the nodes count what they could not do."""


async def _none() -> None:
    pass


def description(partitions: int) -> str:
    return f"dcsentry events; partitions={partitions}"


async def ensure_stream(js: JetStreamContext, names: Names, cfg: Bus) -> None:
    want = StreamConfig(
        name=names.stream, description=description(cfg.partitions), subjects=[f"{names.prefix}.events.*"],
        retention=RetentionPolicy.LIMITS, storage=StorageType.FILE, max_age=cfg.retention_hours * 3600,
        max_bytes=cfg.max_bytes, discard=DiscardPolicy.NEW if cfg.max_bytes > 0 else DiscardPolicy.OLD,
        duplicate_window=cfg.duplicate_window)
    try:
        info = await js.stream_info(names.stream)
    except NotFoundError:
        await js.add_stream(want)
        return
    if info.config.description != want.description:
        raise ValueError(f"stream {names.stream} was created as {info.config.description!r}, this node is configured "
                         f"with {cfg.partitions} partitions: use the same [bus] partitions, or another [bus] name")
    if (info.config.max_age, info.config.max_bytes, info.config.duplicate_window) != \
            (want.max_age, want.max_bytes, want.duplicate_window):
        await js.update_stream(want)


async def bucket(js: JetStreamContext, name: str, ttl: float | None = None) -> KeyValue:
    try:
        return await js.key_value(name)
    except BucketNotFoundError:
        try:
            return await js.create_key_value(KeyValueConfig(bucket=name, ttl=ttl, history=1,
                                                            storage=StorageType.FILE))
        except nats.js.errors.BadRequestError:  # another node created it meanwhile
            return await js.key_value(name)
