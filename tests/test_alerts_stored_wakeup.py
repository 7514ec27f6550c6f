"""The processor tells the forwarder when a batch holding alerts is committed, so an alert goes to the
SIEM as soon as it is stored instead of at the forwarder's next poll (alert latency, issue #18)."""

from __future__ import annotations

import json
import time
from pathlib import Path

from servekit import frame

from dcsentry.config import Config
from dcsentry.runtime.processor import Processor
from dcsentry.sources.spool import Spool
from dcsentry.store.store import open_store


def framed_4776(i: int, status: str, account: str, workstation: str) -> bytes:
    """A DC's 4776 in the evtx JSON layout behind an RFC 5424 header."""
    doc = {"Event": {"System": {
        "Provider": {"#attributes": {"Name": "Microsoft-Windows-Security-Auditing"}}, "EventID": 4776,
        "Keywords": "0x8010000000000000" if status != "0x0" else "0x8020000000000000",
        "TimeCreated": {"#attributes": {"SystemTime": "2024-03-04T10:%02d:%02d.000000Z" % (i // 60 % 60, i % 60)}},
        "EventRecordID": i, "Channel": "Security", "Computer": "DC01.contoso.local"},
        "EventData": {"PackageName": "MICROSOFT_AUTHENTICATION_PACKAGE_V1_0", "TargetUserName": account,
                      "Workstation": workstation, "Status": status}}}
    return frame(json.dumps(doc, separators=(",", ":")).encode())


def run_processor(tmp_path: Path, msgs: list[bytes]) -> tuple[list[tuple[int, int]], int]:
    """Each call of `alerts_stored` as (alerts, outbox rows) in the store at that moment; and the
    alerts stored in the end."""
    store = open_store("sqlite:dcsentry.db", tmp_path)
    spool = Spool(tmp_path / "spool.db")
    spool.append([(time.time(), "10.0.0.5:514", "tcp", m) for m in msgs])
    seen: list[tuple[int, int]] = []
    proc = Processor(store, spool, Config(), batch_rows=10,
                     alerts_stored=lambda: seen.append((store.count("alerts"), store.count("outbox"))))
    while proc.step():
        pass
    proc.release_pending()  # the last 4776s stop waiting for an 8004 that is not coming
    proc.committer.close()
    alerts = store.count("alerts")
    spool.close()
    store.close()
    return seen, alerts


def test_a_committed_batch_with_alerts_wakes_the_forwarder_after_its_commit(tmp_path: Path) -> None:
    msgs = [framed_4776(i, "0x0", f"user{i}", f"WS{i}") for i in range(1, 21)]
    msgs += [framed_4776(i, "0xc000006a", "jdoe", "WS-ATTACKER") for i in range(21, 61)]  # a brute force
    seen, alerts = run_processor(tmp_path, msgs)
    assert alerts >= 1
    assert seen, "the forwarder was never told"
    first_alerts, first_outbox = seen[0]
    assert first_alerts >= 1 and first_outbox >= 1  # called after the commit: the rows are there to send


def test_batches_without_alerts_do_not_wake_it(tmp_path: Path) -> None:
    seen, alerts = run_processor(tmp_path, [framed_4776(i, "0x0", f"user{i}", f"WS{i}") for i in range(1, 61)])
    assert alerts == 0 and seen == []
