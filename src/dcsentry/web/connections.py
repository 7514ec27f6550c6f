"""The web port's connections: a slot per connection (in all and per peer address, from
service/limits.py's budget) and a deadline for a request's headers, so half-sent requests (a
slow-loris) cannot hold descriptors the console and the health probes need.

uvicorn's own keep-alive timeout only covers the wait before a request's first byte; this
protocol closes a connection whose request head is not complete `header_timeout` seconds after it
opened or after its previous response finished."""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.h11_impl import H11Protocol

from ..slots import PeerSlots

HEADER_TIMEOUT = 10.0


def guarded_protocol(slots: PeerSlots, counters: Any, header_timeout: float = HEADER_TIMEOUT) -> type[H11Protocol]:
    class GuardedH11(H11Protocol):
        _slot: str | None = None
        _timer: asyncio.TimerHandle | None = None

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            peer = str((transport.get_extra_info("peername") or ("?",))[0])
            if not slots.take(peer):
                counters["connections_refused"] += 1
                transport.abort()
                return
            self._slot = peer
            super().connection_made(transport)
            self._arm()

        def _arm(self) -> None:
            self._disarm()
            self._timer = self.loop.call_later(header_timeout, self._expire)

        def _disarm(self) -> None:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None

        def _expire(self) -> None:
            self._timer = None
            if self.cycle is None or self.cycle.response_complete:  # no request head completed since armed
                counters["header_timeouts"] += 1
                self.transport.close()

        def handle_events(self) -> None:
            before = self.cycle
            super().handle_events()
            if self.cycle is not before:  # a request head arrived: its handler runs now
                self._disarm()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            if not self.transport.is_closing():
                self._arm()

        def connection_lost(self, exc: Exception | None) -> None:
            if self._slot is None:  # refused in connection_made: nothing of uvicorn's was set up
                return
            slots.give(self._slot)
            self._slot = None
            self._disarm()
            super().connection_lost(exc)

    return GuardedH11
