"""Nothing lost, nothing twice: `kill -9` of the service in the middle of an attack, then a restart.

Every message the service accepted (it is in the durable spool) must be stored exactly once, and
the brute force that spans the crash must stay one alert."""

from __future__ import annotations

import json
import sqlite3
import threading
import time

import pytest
from dcsentry.runtime.routing import EVENT, decode
from dcsentry.sources.spool import ROW_COLUMNS, unpack
from servekit import Serve, frame, send_tcp, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

BASE = 1_700_000_000  # event time of record 1 (2023-11-14)


def attempt(i: int) -> bytes:
    """A DC's 4776 for a wrong password, record id i, one second after record i-1 (evtx JSON layout)."""
    t = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(BASE + i)) + ".000000Z"
    return json.dumps({"Event": {"System": {
        "Provider": {"#attributes": {"Name": "Microsoft-Windows-Security-Auditing"}}, "EventID": 4776,
        "Keywords": "0x8010000000000000", "TimeCreated": {"#attributes": {"SystemTime": t}}, "EventRecordID": i,
        "Channel": "Security", "Computer": "DC01.contoso.local"},
        "EventData": {"PackageName": "MICROSOFT_AUTHENTICATION_PACKAGE_V1_0", "TargetUserName": "alice",
                      "Workstation": "KALI", "Status": "0xc000006a"}}}, separators=(",", ":")).encode()


def spooled_record_ids(svc: Serve) -> list[int]:
    db = sqlite3.connect(f"file:{svc.data_dir / 'spool.db'}?mode=ro", uri=True)
    try:
        return [decode(m.data).event.record_id  # the intake spools decoded events (runtime/routing.py)
                for r in db.execute(f"SELECT {ROW_COLUMNS} FROM spool") for m in unpack(r) if m.transport == EVENT]
    finally:
        db.close()


def test_kill9_mid_stream_loses_nothing_and_duplicates_nothing(tmp_path) -> None:
    svc = Serve(tmp_path / "data").start()
    first = range(1, 8001)

    def sender() -> None:
        try:
            for i in range(0, len(first), 200):
                send_tcp(svc.ports["tcp"], (frame(attempt(n)) for n in first[i:i + 200]))
                time.sleep(0.01)
        except OSError:
            pass  # the service died under us: what it did not accept is the sender's to resend

    t = threading.Thread(target=sender)
    t.start()
    def processing() -> bool:  # crash while the processor is part way: replay and resume both get exercised
        done = svc.query("SELECT value FROM progress WHERE name = 'spool'")
        return svc.spool_rows() >= 2000 and bool(done) and done[0][0] >= 500
    wait_for(processing, what="part of the stream stored and processed")
    processed_before = svc.query("SELECT value FROM progress WHERE name = 'spool'")[0][0]
    svc.kill9()
    t.join(timeout=60)
    accepted_before = svc.spool_rows()
    assert 2000 <= accepted_before < len(first) + 1
    assert processed_before < accepted_before or accepted_before == len(first)

    again = Serve(tmp_path / "data").start()  # the same data dir: resume from the spool
    try:
        rest = range(accepted_before + 1, accepted_before + 3001)  # the sender resends what was not accepted
        send_tcp(again.ports["tcp"], (frame(attempt(n)) for n in rest))
        total = accepted_before + len(rest)
        wait_for(lambda: again.spool_rows() >= total, what="the rest in the spool")
        wait_for(again.caught_up, what="the processor to catch up", timeout=120)
        spooled = spooled_record_ids(again)
        stored = [r for (r,) in again.query("SELECT record_id FROM events WHERE event_id = 4776")]
        assert len(spooled) == len(set(spooled)) == total, (len(spooled), len(set(spooled)), total, accepted_before)
        assert sorted(set(spooled)) == list(range(1, total + 1))
        assert sorted(stored) == sorted(spooled), (len(stored), min(stored), max(stored))
        brute = wait_for(lambda: [a for a in again.alerts() if a["type"] == "brute-force" and a["count"] == total],
                         what="the brute force to count every attempt")
        assert len([a for a in again.alerts() if a["type"] == "brute-force"]) == 1, "one attack, one alert"
        assert brute[0]["entities"]["hosts"][0] == "KALI"
    finally:
        assert again.stop() == 0
