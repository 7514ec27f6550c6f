"""Connection slots per listener and per peer address: one address can never hold a whole pool
(service/limits.py shares the descriptors out; the syslog listeners and the web port take slots)."""

from __future__ import annotations

import logging
import time

log = logging.getLogger("dcsentry.limits")


class PeerSlots:
    """Open connections, in all and per peer address, against their caps."""

    def __init__(self, total: int, per_peer: int) -> None:
        self.total, self.per_peer = total, per_peer
        self.open = 0
        self.by_peer: dict[str, int] = {}
        self._logged = 0.0

    def take(self, peer: str) -> bool:
        n = self.by_peer.get(peer, 0)
        if self.open >= self.total or n >= self.per_peer:
            now = time.monotonic()
            if now - self._logged > 60:
                self._logged = now
                log.warning("connection from %s refused: %d open (cap %d), %d from it (cap %d)", peer, self.open,
                            self.total, n, self.per_peer)
            return False
        self.by_peer[peer] = n + 1
        self.open += 1
        return True

    def give(self, peer: str) -> None:
        n = self.by_peer.get(peer, 0)
        if n <= 1:
            self.by_peer.pop(peer, None)
        else:
            self.by_peer[peer] = n - 1
        self.open = max(0, self.open - 1)
