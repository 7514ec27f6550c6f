"""Which detect worker owns which partition: leases in a JetStream key-value bucket with a TTL.

Key `p<N>` holds the owner's name. A worker takes a free partition with `create` (succeeds only
when the key is absent: atomic on the server), keeps it by `update(last=revision)` every third of
the lease (fails if anyone else wrote the key since), and gives it back with `delete(last=...)`.
A worker that dies stops renewing: the bucket's TTL removes its keys after `lease_seconds` and the
others take them. The members bucket (same TTL) says how many workers are alive, so each aims at
ceil(partitions / workers) and one that holds more gives the extra ones back: a new worker gets
its share without a coordinator.

A worker processes a partition only while its last successful renewal is younger than 0.8 of the
lease (fencing by time): by the time the key can expire and move, the old owner has stopped.
"""

from __future__ import annotations

import asyncio
import math
import time
import zlib

from nats.js import JetStreamContext
from nats.js.errors import APIError, KeyNotFoundError, KeyWrongLastSequenceError, NoKeysError
from nats.js.kv import KeyValue

from .connect import Names, bucket

VALID_FRACTION = 0.8


def _key(p: int) -> str:
    return f"p{p}"


class Leases:
    def __init__(self, js: JetStreamContext, names: Names, node: str, partitions: int, ttl: float) -> None:
        self.js = js
        self.names = names
        self.node = node
        self.partitions = partitions
        self.ttl = ttl
        self.owned: dict[int, int] = {}  # partition -> revision of our key
        self.renewed: dict[int, float] = {}  # partition -> monotonic time the last renewal was sent
        self.kv: KeyValue | None = None
        self.members: KeyValue | None = None
        self.live = 1

    async def open(self) -> None:
        self.kv = await bucket(self.js, self.names.leases, self.ttl)
        self.members = await bucket(self.js, self.names.members, self.ttl)

    def valid(self, p: int) -> bool:
        t = self.renewed.get(p)
        return p in self.owned and t is not None and time.monotonic() - t < VALID_FRACTION * self.ttl

    def target(self) -> int:
        return math.ceil(self.partitions / max(1, self.live))

    async def tick(self) -> tuple[list[int], list[int], list[int]]:
        """Renew, count the workers, take free partitions up to the target.
        Returns (gained, lost, extra): `extra` are ours beyond the target, for the caller to release."""
        assert self.kv is not None and self.members is not None
        lost: list[int] = []
        await self.members.put(self.node, b"")
        for p, rev in list(self.owned.items()):
            sent = time.monotonic()
            try:
                self.owned[p] = await self.kv.update(_key(p), self.node.encode(), last=rev)
                self.renewed[p] = sent
            except KeyWrongLastSequenceError:  # expired and taken (or deleted): not ours any more
                lost.append(p)
                self.owned.pop(p, None)
                self.renewed.pop(p, None)
        try:
            self.live = len(await self.members.keys())
        except NoKeysError:
            self.live = 1
        gained: list[int] = []
        want = self.target()
        start = zlib.crc32(self.node.encode()) % self.partitions  # workers start their search apart
        for i in range(self.partitions):
            if len(self.owned) >= want:
                break
            p = (start + i) % self.partitions
            if p in self.owned:
                continue
            sent = time.monotonic()
            try:
                self.owned[p] = await self.kv.create(_key(p), self.node.encode())
            except KeyWrongLastSequenceError:
                continue
            self.renewed[p] = sent
            gained.append(p)
        extra = sorted(self.owned)[want:] if len(self.owned) > want else []
        return gained, lost, extra

    async def release(self, p: int) -> None:
        rev = self.owned.pop(p, None)
        self.renewed.pop(p, None)
        if rev is None or self.kv is None:
            return
        try:
            await self.kv.delete(_key(p), last=rev)
        except (APIError, KeyNotFoundError):
            pass  # taken meanwhile, or already gone

    async def release_all(self) -> None:
        for p in list(self.owned):
            try:
                await asyncio.wait_for(self.release(p), timeout=2.0)
            except Exception:
                pass  # the lease then expires by itself
        if self.members is None:
            return
        try:
            await asyncio.wait_for(self.members.delete(self.node), timeout=2.0)
        except Exception:
            pass
