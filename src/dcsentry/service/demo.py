"""`serve --demo`: a simulated domain forwarding to this very sensor, so a new user sees alerts
arrive without a domain controller at hand. Events come from the synthetic generator (75 office
minutes of a 25-user domain with one of every attack) and are sent over the sensor's own TCP
syslog listener, octet-counted, in the evtx JSON layout, paced over `seconds`.
"""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta

import msgspec

from ..synth import DEFAULT_START, build_domain, generate
from ..synth.render import to_evtx_json

SEED, USERS, DCS = 7, 25, 2


def demo_honeytokens() -> list[str]:
    """The decoy accounts of the demo domain: the demo configures them so their use is caught."""
    return list(build_domain(SEED, USERS, DCS).summary()["honeytokens"])


def _frame(ev_json: bytes, host: str) -> bytes:
    msg = b"<14>1 - " + host.encode() + b" dcsentry-demo - - - " + ev_json
    return str(len(msg)).encode() + b" " + msg


async def feed(host: str, port: int, seconds: float = 60.0) -> int:
    """Send the demo events to HOST:PORT; returns how many were sent."""
    events, _ = generate(seed=SEED, hours=1.25, users=USERS, dcs=DCS, attacks="all",
                         start=DEFAULT_START + timedelta(hours=9), compact=True)
    # A new range of record ids each start: the same simulated events sent again would otherwise be
    # the events already stored, dropped as re-sent copies, and a second demo would show nothing.
    offset = int(time.time()) * 100_000
    frames = [_frame(to_evtx_json(msgspec.structs.replace(ev, record_id=(ev.record_id or 0) + offset)),
                     ev.computer.split(".", 1)[0]) for ev in events]
    _, writer = await asyncio.open_connection(host, port)
    pause = seconds / max(1, len(frames) // 20)
    try:
        for i in range(0, len(frames), 20):
            writer.write(b"".join(frames[i:i + 20]))
            await writer.drain()
            await asyncio.sleep(pause)
    finally:
        writer.close()
        await writer.wait_closed()
    return len(frames)
