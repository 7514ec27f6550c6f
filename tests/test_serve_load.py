"""Bounded load on loopback against the real service: every TCP message accepted, none lost, and
the processor catches up. The default run sends 50k messages; `-m slow` sends 1M over TCP and a
paced UDP stream, and prints events/s and loss."""

from __future__ import annotations

import json
import socket
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from servekit import Serve, frame, octet, wait_for


def message(i: int) -> bytes:
    """A DC's 4776 success with a unique record id, in the evtx JSON layout."""
    doc = {"Event": {"System": {
        "Provider": {"#attributes": {"Name": "Microsoft-Windows-Security-Auditing"}}, "EventID": 4776,
        "Keywords": "0x8020000000000000",
        "TimeCreated": {"#attributes": {"SystemTime": "2024-03-04T10:00:%02d.%06dZ" % (i // 1_000_000 % 60, i % 1_000_000)}},
        "EventRecordID": i, "Channel": "Security", "Computer": f"DC{i % 4:02d}.contoso.local"},
        "EventData": {"PackageName": "MICROSOFT_AUTHENTICATION_PACKAGE_V1_0", "TargetUserName": f"user{i % 5000}",
                      "Workstation": f"WS{i % 3000}", "Status": "0x0"}}}
    return frame(json.dumps(doc, separators=(",", ":")).encode(), f"DC{i % 4:02d}")


def blast_tcp(port: int, first: int, count: int, chunk: int = 2000) -> None:
    with socket.create_connection(("127.0.0.1", port), timeout=120) as s:
        for start in range(first, first + count, chunk):
            s.sendall(b"".join(octet(message(i)) for i in range(start, min(first + count, start + chunk))))


def run_load(tmp_path, total: int, peers: int) -> dict:
    svc = Serve(tmp_path / "data", "--web", "off").start()
    try:
        per = total // peers
        t0 = time.perf_counter()
        with ThreadPoolExecutor(peers) as pool:
            list(pool.map(lambda p: blast_tcp(svc.ports["tcp"], 1 + p * per, per), range(peers)))
        wait_for(lambda: svc.spool_rows() >= per * peers, timeout=600, what="every message accepted")
        accepted_s = time.perf_counter() - t0
        wait_for(svc.caught_up, timeout=1800, every=1.0, what="the processor to catch up")
        processed_s = time.perf_counter() - t0
        stored = svc.query("SELECT COUNT(*) FROM events")[0][0]
        result = {"sent": per * peers, "spooled": svc.spool_rows(), "stored": stored,
                  "accept_per_s": round(per * peers / accepted_s), "process_per_s": round(per * peers / processed_s)}
        print(f"\nload: {result}")
        return result
    finally:
        assert svc.stop() == 0


@pytest.mark.integration
@pytest.mark.timeout(300)
def test_50k_tcp_messages_from_4_peers_all_accepted_and_processed(tmp_path) -> None:
    r = run_load(tmp_path, 50_000, 4)
    assert r["spooled"] == r["sent"] == r["stored"]


@pytest.mark.integration
@pytest.mark.slow
@pytest.mark.timeout(3600)
def test_1m_tcp_messages_zero_loss(tmp_path) -> None:
    r = run_load(tmp_path, 1_000_000, 10)
    assert r["spooled"] == r["sent"] == r["stored"]
