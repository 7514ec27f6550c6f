"""Failures of the distributed mode, on the real engines: a detect worker killed with SIGKILL in the
middle of a stream, and the NATS server itself killed and restarted. Two ingest nodes and two
detect workers (separate `dcsentry serve` processes), the PostgreSQL store.

Traffic: 24 sources each guess 40 passwords (Kerberos 4771) at the same time, so every partition
is busy when the failure strikes. Nothing may be lost (every event stored once, every attempt an
activity once) and nothing doubled: one brute-force alert per source counting all 40 attempts,
including an attack whose partition changed hands half-way.
"""

from __future__ import annotations

import re
import secrets
import socket
import threading
import time
from pathlib import Path

import pytest
from eventfactory import kerberos
from natskit import Cluster, NatsServer, bus_config
from servekit import frame, octet, wait_for
from storekit import pg_database, pg_url  # noqa: F401

from dcsentry.synth.render import to_evtx_json

pytestmark = [pytest.mark.needs_nats, pytest.mark.needs_pg, pytest.mark.integration]

SOURCES, ATTEMPTS = 24, 40


def attacks() -> list[list[bytes]]:
    """Per ingest node, the syslog messages of half the sources, interleaved in time."""
    out: list[list[bytes]] = [[], []]
    for k in range(ATTEMPTS):
        for i in range(SOURCES):
            ev = kerberos(4771, 2.0 * k + 0.01 * i, f"user{i}", "0x18", ip=f"10.9.{i // 200}.{i % 200 + 1}")
            out[i % 2].append(frame(to_evtx_json(ev), "DC01"))
    return out


def paced_send(port: int, messages: list[bytes], seconds: float) -> threading.Thread:
    def send() -> None:
        chunks = [messages[i:i + 20] for i in range(0, len(messages), 20)]
        with socket.create_connection(("127.0.0.1", port), timeout=120) as s:
            for chunk in chunks:
                s.sendall(b"".join(octet(m) for m in chunk))
                time.sleep(seconds / len(chunks))

    t = threading.Thread(target=send, daemon=True)
    t.start()
    return t


def done(cluster: Cluster) -> bool:
    alerts = cluster.query("SELECT count FROM alerts WHERE type = 'brute-force'")
    events = cluster.query("SELECT COUNT(*) FROM events")[0][0]
    return events == SOURCES * ATTEMPTS and len(alerts) == SOURCES and all(c == ATTEMPTS for (c,) in alerts)


def mid_stream(cluster: Cluster) -> None:
    """Until a quarter of the paced stream (6 s) is stored: the failure then hits it part way, however
    fast or slow the machine is."""
    wait_for(lambda: cluster.query("SELECT COUNT(*) FROM events")[0][0] >= SOURCES * ATTEMPTS // 4, timeout=60,
             what="a quarter of the stream stored", every=0.05)


def check(cluster: Cluster) -> None:
    try:
        wait_for(lambda: done(cluster), timeout=90, what="every attempt to be counted")
    except AssertionError:
        print(cluster.log())
        raise
    time.sleep(1.5)  # stays so: nothing counted again afterwards
    assert cluster.query("SELECT COUNT(*) FROM events")[0][0] == SOURCES * ATTEMPTS
    assert cluster.query("SELECT COUNT(*) FROM activities")[0][0] == SOURCES * ATTEMPTS  # each once
    rows = cluster.query("SELECT count, body FROM alerts WHERE kind = 'security'")
    assert len(rows) == SOURCES and {c for c, _ in rows} == {ATTEMPTS}
    assert len({re.search(r'"hosts":\["([^"]+)"', b).group(1) for _, b in rows}) == SOURCES


@pytest.fixture()
def cluster(tmp_path: Path, pg_url):
    server = NatsServer(tmp_path / "jetstream").start()
    c = Cluster(tmp_path, server.url, pg_url, bus_config(f"t{secrets.token_hex(4)}")).start()
    c.nats = server
    wait_for(lambda: all("taken by" in "".join(n.lines) for n in c.detect), timeout=30,
             what="both workers to own partitions")
    yield c
    c.stop()
    server.stop()


def test_worker_killed_mid_stream_loses_nothing_and_doubles_nothing(cluster: Cluster) -> None:
    messages = attacks()
    senders = [paced_send(node.ports["tcp"], msgs, 6.0) for node, msgs in zip(cluster.ingest, messages)]
    mid_stream(cluster)
    victim, survivor = cluster.detect
    victim.kill9()
    for s in senders:
        s.join(timeout=120)
    check(cluster)
    # the survivor took the dead worker's partitions over and rebuilt their state from the stream
    replays = [int(n) for n in re.findall(r"replaying (\d+) message", "".join(survivor.lines))]
    assert any(n > 0 for n in replays), "".join(survivor.lines)


def test_nats_server_restart_mid_stream_loses_nothing(cluster: Cluster) -> None:
    messages = attacks()
    senders = [paced_send(node.ports["tcp"], msgs, 6.0) for node, msgs in zip(cluster.ingest, messages)]
    mid_stream(cluster)
    cluster.nats.restart(down_for=2.0, kill=True)
    for s in senders:
        s.join(timeout=120)
    check(cluster)
