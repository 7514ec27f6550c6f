"""Live alerts: one poller follows the alerts' update times in the store, keeps the alert -> entity
index current, and hands every new or changed alert to each open event stream (SSE).

The store is the only channel between the processor process and the web: polling its `updated_at`
index twice a second costs one indexed query, and works the same on every store backend.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

from . import queries

POLL = 0.5
PAGE = 2000  # alerts indexed per step while catching up (each step one short transaction)
KEEPALIVE = 15.0
REVALIDATE = 5.0  # seconds between checks that a stream's token or session is still valid
QUEUE = 1000  # events waiting for one slow client; past that it is dropped (it reconnects and reloads)


class Live:
    def __init__(self, store: Any) -> None:
        self.store = store
        self.started = time.time()
        self.subscribers: set[asyncio.Queue] = set()
        self._sent: dict[str, float] = {}  # alert id -> update time already indexed (and published)
        self._mark = 0.0
        self._mark_id = ""
        self._task: asyncio.Task | None = None
        self.closing = False
        self.caught_up = False  # the entity index has seen every alert in the store
        self.errors = 0

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def close(self) -> None:
        """End every stream (so the server can stop) and the poller."""
        self.closing = True
        for q in list(self.subscribers):
            q.put_nowait(None)
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass

    async def _run(self) -> None:
        await asyncio.to_thread(self._load_mark)
        while not self.closing:
            try:
                changed, more = await asyncio.to_thread(self.poll)
            except Exception:  # a store hiccup (locked, connection lost) must not end live updates
                self.errors += 1
                changed, more = [], False
                await asyncio.sleep(2.0)
            for item in changed:
                self.publish(item)
            if not more:
                await asyncio.sleep(POLL)

    def _load_mark(self) -> None:
        self._mark = max(0.0, queries.index_mark(self.store) - queries.OVERLAP)

    def poll(self) -> tuple[list[dict], bool]:
        """One step: index what changed since the mark (a page at a time while catching up); returns
        the changes that streams have not been sent yet, and whether more are waiting."""
        rows = queries.changed_alerts(self.store, self._mark, self._mark_id, limit=PAGE)
        fresh = [r for r in rows if self._sent.get(r[1]) != r[0]]  # the overlap re-reads some: once each
        if fresh:
            queries.index_entities(self.store, (body for _, _, _, body in fresh))
        if rows:
            self._mark, self._mark_id = rows[-1][0], rows[-1][1]
        more = len(rows) == PAGE
        if fresh:
            queries.save_index_mark(self.store, self._mark)
        if not more:
            self.caught_up = True
            now = time.time()
            if self._mark > now - queries.OVERLAP:  # re-read a little behind the newest change (late commits)
                self._mark, self._mark_id = now - queries.OVERLAP, ""
        out = []
        for ts, aid, status, body in fresh:
            self._sent[aid] = ts
            if ts >= self.started - queries.OVERLAP:  # not history from before this start
                out.append(_event(ts, queries.decode_alert(body, status)))
        if len(self._sent) > 50_000:
            cut = time.time() - 10 * queries.OVERLAP
            self._sent = {k: v for k, v in self._sent.items() if v > cut}
        return out, more

    def publish(self, item: dict) -> None:
        for q in list(self.subscribers):
            try:
                q.put_nowait(item)
            except asyncio.QueueFull:
                self.subscribers.discard(q)  # too slow: end its stream; the browser reconnects
                while not q.empty():
                    q.get_nowait()
                q.put_nowait(None)

    async def stream(self, still_valid: Callable[[], bool] = lambda: True) -> AsyncIterator[str]:
        """Server-sent events: `event: alert`, data = the alert's list row. The credential that
        opened the stream is checked again every REVALIDATE seconds: revoked, the stream ends."""
        q: asyncio.Queue = asyncio.Queue(QUEUE)
        self.subscribers.add(q)
        checked = idle = 0.0
        try:
            yield "retry: 3000\n\n"
            while not self.closing:
                now = time.monotonic()
                if now - checked >= REVALIDATE:
                    if not still_valid():
                        return
                    checked = now
                try:
                    item = await asyncio.wait_for(q.get(), REVALIDATE)
                    idle = 0.0
                except TimeoutError:
                    idle += REVALIDATE
                    if idle >= KEEPALIVE:
                        idle = 0.0
                        yield ": keepalive\n\n"
                    continue
                if item is None:
                    return
                yield f"event: alert\ndata: {json.dumps(item, separators=(',', ':'))}\n\n"
        finally:
            self.subscribers.discard(q)


def _event(ts: float, a: dict) -> dict:
    first = next((ln.strip() for ln in a.get("description", "").splitlines() if ln.strip()), "")
    return {"id": a["id"], "type": a["type"], "kind": a.get("kind", "security"), "severity": a["severity"],
            "status": a["status"], "start": a["start"], "end": a["end"], "count": a["count"],
            "revision": a.get("revision", 0), "title": a["title"], "updated_at": ts, "summary": first[:300],
            "entities": a.get("entities", {})}
