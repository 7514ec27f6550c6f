"""Syslog listeners against real sockets on 127.0.0.1 ephemeral ports (no mocks): UDP, TCP, flow control.

Every async test runs under `arun` (a hard timeout) and every wait polls with a deadline, so a
regression fails instead of hanging. TLS is in test_syslog_tls.py, the deframer alone in
test_syslog_framing.py.
"""

from __future__ import annotations

import asyncio
import random
import socket
import time
from dataclasses import FrozenInstanceError, astuple

import pytest
from syslogkit import EXPECTED, LOCAL, STREAM, Sink, any_close, arun, octet, start, tcp_send, until

from dcsentry.sources.syslog import ListenerSet, Received

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]


# -- UDP

def test_udp_messages_peer_and_counters() -> None:
    async def main() -> None:
        sink = Sink()
        ls, ports = await start(sink, kinds=("udp",))
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as c:
            c.bind(("127.0.0.1", 0))
            for m in (b"<13>a\n", b"<13>b\r\n", b"", b"<13>c"):
                c.sendto(m, ("127.0.0.1", ports["udp"]))
            await until(lambda: len(sink.items) == 3, what="3 datagrams")
            assert sink.data == [b"<13>a", b"<13>b", b"<13>c"]
            r = sink.items[0]
            assert (r.peer, r.transport, r.peer_name) == (f"udp://127.0.0.1:{c.getsockname()[1]}", "udp", None)
            assert abs(r.received_at - time.time()) < 5
            assert r == Received(b"<13>a", r.peer, "udp", r.received_at) and hash(r) == hash(Received(*astuple(r)))
            with pytest.raises(FrozenInstanceError):
                r.data = b"changed"  # type: ignore[misc]
        await ls.stop()
        assert ls.counters["received_messages_udp"] == 3 == ls.per_peer["127.0.0.1"]["messages"]

    arun(main())


def test_udp_drops_are_counted_never_silent() -> None:
    async def main() -> None:
        accepting = False
        gate = asyncio.Event()
        sink = Sink(gate)
        ls, ports = await start(sink, kinds=("udp",), udp_accept=lambda: accepting, batch_max=50, udp_queue=100)
        c = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        for i in range(50):
            c.sendto(b"<13>refused %d" % i, ("127.0.0.1", ports["udp"]))
        await until(lambda: ls.counters["udp_dropped_refused"] == 50, what="refusals")
        accepting = True
        for i in range(400):  # consumer blocked: 50 in its call, 100 queued, the rest dropped
            c.sendto(b"<13>queued %d" % i, ("127.0.0.1", ports["udp"]))
            if i % 50 == 49:
                await asyncio.sleep(0.01)
        c.close()
        cnt = ls.counters
        await until(lambda: cnt["received_messages_udp"] + cnt["udp_dropped_queue_full"]
                    + cnt["udp_dropped_kernel"] == 400, what="all 400 accounted")
        assert cnt["udp_dropped_queue_full"] >= 250 - cnt["udp_dropped_kernel"]
        assert cnt["udp_dropped"] == 50 + cnt["udp_dropped_queue_full"]
        gate.set()
        await until(lambda: len(sink.items) == cnt["received_messages_udp"], what="delivery")
        assert not any(b"refused" in m for m in sink.data)
        await ls.stop()

    arun(main())


# -- TCP framing

def test_tcp_octet_counting_split_anywhere() -> None:
    async def main() -> None:
        sink = Sink()
        ls, ports = await start(sink, kinds=("tcp",))
        msgs = [b"<13>1 2024-03-05T14:19:02Z dc01 app - - - msg %d" % i for i in range(500)] + [b"<13>with\nLF"]
        blob = b"".join(octet(m) for m in msgs)
        await tcp_send(ports["tcp"], *[blob[i:i + 97] for i in range(0, len(blob), 97)])
        await until(lambda: len(sink.items) == len(msgs), what="all frames")
        assert sink.data == msgs and {r.transport for r in sink.items} == {"tcp"}
        assert sink.items[0].peer.startswith("tcp://127.0.0.1:")
        await ls.stop()
        assert ls.counters["framing_errors"] == 0

    arun(main())


def test_tcp_lf_crlf_nul_and_mixed_framing() -> None:
    async def main() -> None:
        sink = Sink()
        ls, ports = await start(sink, kinds=("tcp",))
        await asyncio.gather(tcp_send(ports["tcp"], b"<13>lf1\n<13>lf2\n"),
                             tcp_send(ports["tcp"], b"<13>crlf1\r\n<13>cr", b"lf2\r\n"),
                             tcp_send(ports["tcp"], STREAM))
        await until(lambda: len(sink.items) == 4 + len(EXPECTED) + 1, what="frames")
        by_peer: dict[str, list[bytes]] = {}
        for r in sink.items:
            by_peer.setdefault(r.peer, []).append(r.data)
        assert sorted(by_peer.values()) == sorted([[b"<13>lf1", b"<13>lf2"], [b"<13>crlf1", b"<13>crlf2"],
                                                   [*EXPECTED, b"<13>seven"]])
        await ls.stop()

    arun(main())


def test_tcp_200k_message_and_oversized_frames_keep_framing() -> None:
    async def main() -> None:
        big = b"<13>" + b"x" * (200 * 1024)
        sink = Sink()
        ls, ports = await start(sink, kinds=("tcp",))
        await tcp_send(ports["tcp"], octet(big) + big + b"\n" + b"<13>after\n")
        await until(lambda: len(sink.items) == 3, what="big frames")
        assert sink.data == [big, big, b"<13>after"]
        await ls.stop()
        sink2 = Sink()
        ls2, ports2 = await start(sink2, kinds=("tcp",), max_message=64 * 1024)
        await tcp_send(ports2["tcp"], octet(big) + octet(b"<13>next") + big + b"\n" + b"<13>after\n")
        await until(lambda: len(sink2.items) == 4, what="truncated frames")
        assert sink2.data == [big[:65536], b"<13>next", big[:65536], b"<13>after"]
        await ls2.stop()
        assert ls2.counters["oversized"] == 2 == ls2.per_peer["127.0.0.1"]["errors"]

    arun(main())


def test_tcp_garbage_prefix_and_binary_garbage_server_stays_up() -> None:
    async def main() -> None:
        sink = Sink()
        ls, ports = await start(sink, kinds=("tcp",), max_message=4096)
        await tcp_send(ports["tcp"], b"99999999999 garbage length\n" + octet(b"<13>ok1") + b"<13>ok2\n")
        await tcp_send(ports["tcp"], random.Random(7).randbytes(300_000))  # whatever it parses to, counted
        await tcp_send(ports["tcp"], b"<13>still up\n")
        await until(lambda: b"<13>still up" in sink.data, what="server up")
        assert sink.data[:2] == [b"<13>ok1", b"<13>ok2"]
        await ls.stop()
        assert ls.counters["framing_errors"] >= 1 and ls.counters["connections_total"] == 3

    arun(main())


# -- flow control, stop, connection limits

def test_slow_consumer_pushes_back_on_tcp_sender_and_loses_nothing() -> None:
    async def main() -> None:
        gate = asyncio.Event()
        sink = Sink(gate)
        ls, ports = await start(sink, kinds=("tcp",), batch_max=500, idle_timeout=0.3)
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 65536)
        s.connect(("127.0.0.1", ports["tcp"]))
        s.setblocking(False)
        seq, pending, stuck_rounds = 0, b"", 0
        while stuck_rounds < 6 and seq < 2_000_000:  # the consumer never returns: the sender must block
            moved = False
            while True:
                if not pending:
                    pending = b"".join(b"<13>seq %08d\n" % (seq + i) for i in range(1000))
                    seq += 1000
                try:
                    n = s.send(pending)
                except BlockingIOError:
                    break
                pending, moved = pending[n:], True
            stuck_rounds = 0 if moved else stuck_rounds + 1
            await asyncio.sleep(0.05)  # let the server run: without backpressure it would drain us
        assert stuck_rounds == 6, "sender never blocked"
        assert sink.calls == 1 and not sink.items  # one call in flight, nothing more read into new calls
        read_while_blocked = ls.counters["received_messages_tcp"]
        assert read_while_blocked < seq
        gate.set()
        s.setblocking(True)
        await asyncio.to_thread(s.sendall, pending)  # in a thread: the server runs in this loop
        s.close()
        await until(lambda: len(sink.items) == seq, timeout=15, what="every message after release")
        assert sink.data == [b"<13>seq %08d" % i for i in range(seq)]
        assert max(sink.batches) <= 500 and ls.counters["idle_timeouts"] == 0  # paused is not idle
        await ls.stop()

    arun(main(), timeout=40)


def test_graceful_stop_drains_in_flight_batches() -> None:
    async def main() -> None:
        sink = Sink(delay=0.2)
        ls, ports = await start(sink, batch_max=1000)
        await tcp_send(ports["tcp"], b"".join(b"<13>t%d\n" % i for i in range(2500)))
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as c:
            for i in range(300):
                c.sendto(b"<13>u%d" % i, ("127.0.0.1", ports["udp"]))
        cnt = ls.counters
        await until(lambda: cnt["received_messages_tcp"] == 2500 and cnt["received_messages_udp"] == 300)
        assert cnt["delivered_messages"] < 2800
        await ls.stop(drain=True)
        assert len(sink.items) == cnt["delivered_messages"] == 2800 and cnt["dropped_at_stop"] == 0
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", ports["tcp"]), timeout=1).close()

    arun(main())


def test_stop_without_drain_counts_what_it_abandons() -> None:
    async def main() -> None:
        sink = Sink(asyncio.Event())  # never opens
        ls, ports = await start(sink, kinds=("tcp",), batch_max=100)
        await tcp_send(ports["tcp"], b"".join(b"<13>%d\n" % i for i in range(1000)))
        await until(lambda: ls.counters["received_messages_tcp"] == 1000)
        await ls.stop(drain=False)
        assert ls.counters["dropped_at_stop"] == 1000 and not sink.items

    arun(main())


def test_consumer_error_is_retried_not_lost() -> None:
    async def main() -> None:
        seen: list[bytes] = []
        failures = [1]

        async def flaky(batch: list[Received]) -> None:
            if failures[0]:
                failures[0] -= 1
                raise OSError("disk full")
            seen.extend(r.data for r in batch)

        ls = ListenerSet(flaky)
        (_, _, port), = await ls.start(tcp=LOCAL)
        await tcp_send(port, b"<13>a\n<13>b\n")
        await until(lambda: len(seen) == 2)
        await ls.stop()
        assert seen == [b"<13>a", b"<13>b"] and ls.counters["consumer_errors"] == 1

    arun(main())


def test_many_concurrent_connections() -> None:
    async def main() -> None:
        sink = Sink()
        ls, ports = await start(sink, kinds=("tcp",))
        conns = await asyncio.gather(*(asyncio.open_connection("127.0.0.1", ports["tcp"]) for _ in range(1000)))
        await until(lambda: ls.counters["connections_open"] == 1000, what="1000 open at once")
        for c, (_, w) in enumerate(conns):
            w.write(b"".join(b"<13>c%d m%d\n" % (c, i) for i in range(5)))
        await asyncio.gather(*(w.drain() for _, w in conns))
        for _, w in conns:
            w.close()
        await until(lambda: len(sink.items) == 5000, what="5000 messages")
        assert len({r.peer for r in sink.items}) == 1000
        await ls.stop()
        c = ls.counters
        assert (c["connections_total"], c["connections_open"], ls.per_peer["127.0.0.1"]["messages"]) == (1000, 0, 5000)

    arun(main())


def test_connection_flood_refused_beyond_max_then_recovers() -> None:
    async def main() -> None:
        sink = Sink()
        ls, ports = await start(sink, kinds=("tcp",), max_connections=5)
        conns = [await asyncio.open_connection("127.0.0.1", ports["tcp"]) for _ in range(5)]
        await until(lambda: ls.counters["connections_open"] == 5)
        extra = [await asyncio.open_connection("127.0.0.1", ports["tcp"]) for _ in range(3)]
        for r, _ in extra:  # closed by the server straight away
            with any_close():
                assert await asyncio.wait_for(r.read(), 5) == b""
        assert ls.counters["connections_refused"] == 3
        for _, w in conns + extra:
            w.close()
        await until(lambda: ls.counters["connections_open"] == 0)
        await tcp_send(ports["tcp"], b"<13>after the flood\n")
        await until(lambda: sink.data == [b"<13>after the flood"])
        await ls.stop()

    arun(main())


def test_idle_connections_are_closed() -> None:
    async def main() -> None:
        sink = Sink()
        ls, ports = await start(sink, kinds=("tcp",), idle_timeout=0.3)
        r, w = await asyncio.open_connection("127.0.0.1", ports["tcp"])
        w.write(b"<13>complete\n<13>half a mess")  # then nothing: slow-loris
        await w.drain()
        with any_close():
            assert await asyncio.wait_for(r.read(), 5) == b""
        assert ls.counters["idle_timeouts"] == 1 and ls.counters["connections_open"] == 0
        await until(lambda: len(sink.items) == 2)
        assert sink.data == [b"<13>complete", b"<13>half a mess"]  # the unterminated tail, as at EOF
        w.close()
        await ls.stop()

    arun(main())
