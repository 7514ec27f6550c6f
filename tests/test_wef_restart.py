"""A collector killed in the middle of a forwarding stream loses nothing and counts nothing twice.

A DC forwards 3,561 failed logons (deepbluecli smb-password-guessing) over HTTPS. Half-way the
client "loses" an Ack and re-sends that batch, then the service is killed with SIGKILL. After the
restart the client enumerates again, receives its stored bookmark in the Subscribe, resumes after
it, and also re-sends an old batch. Every event is stored once, the duplicates are removed before
detection (one brute-force alert whose count matches `dcsentry hunt` over the same file), and the
bookmark the collector holds at the end is the last record.
"""

from __future__ import annotations

import json

import pytest

from conftest import CORPUS, run_cli
from servekit import Serve, wait_for
from test_wef_service import config, wef_port
from wefclient import WefClient, client_context, evtx_events, make_wef_pki

pytestmark = pytest.mark.integration

SMB = CORPUS / "evtx/deepbluecli/smb-password-guessing-security.evtx"
DC = "DESKTOP-M5SN04R"


def test_restart_resumes_from_the_stored_bookmark_without_loss_or_double_counting(tmp_path) -> None:
    pki = make_wef_pki(tmp_path, [DC])
    events = evtx_events(str(SMB))
    assert len(events) == 3561 and {e.computer for e in events} == {DC}
    data = tmp_path / "data"
    s = Serve(data, config=config(pki)).start()
    c = WefClient(f"https://localhost:{wef_port(s)}/wsman/SubscriptionManager/WEC", client_context(pki, f"client:{DC}"), DC)
    _, (sub,), _ = c.enumerate()
    assert sub.bookmark is None
    batches = c.batches(sub, c.pending(sub, events))
    assert len(batches) >= 10  # Windows-sized envelopes, well below 512000 bytes each
    half = len(batches) // 2
    for b in batches[:half]:
        assert c.deliver(sub, b).status == 200
    before = dict(sub.positions)
    assert c.deliver(sub, batches[half]).status == 200
    sub.positions = before  # the Ack was lost on the way: the client still stands before that batch
    assert c.deliver(sub, batches[half]).status == 200  # ... and sends it again
    acked = dict(sub.positions)
    c.close()
    wait_for(lambda: s.spool_rows() >= sum(len(b) for b in batches[:half + 1]) + len(batches[half]),
             what="the spool to hold what was acknowledged")
    s.kill9()

    s = Serve(data, config=config(pki)).start()
    try:
        c = WefClient(f"https://localhost:{wef_port(s)}/wsman/SubscriptionManager/WEC", client_context(pki, f"client:{DC}"),
                      DC)
        _, (sub,), _ = c.enumerate()
        assert sub.bookmark and sub.positions == acked  # the stored bookmark comes back in the Subscribe
        rest = c.pending(sub, events)
        assert len(rest) == len(events) - sum(len(b) for b in batches[:half + 1])
        stale = sub.positions
        sub.positions = {"Security": batches[1][0].record_id - 1}
        assert c.deliver(sub, batches[1]).status == 200  # an old batch, again, after the restart
        sub.positions = stale
        for b in c.batches(sub, rest):
            assert c.deliver(sub, b).status == 200
        c.close()
        wait_for(s.caught_up, timeout=120, what="the processor to catch up")
        keys = s.query("SELECT record_id FROM events WHERE computer = ? AND channel = 'Security'", DC)
        assert sorted(k for (k,) in keys) == sorted(e.record_id for e in events)
        dups = len(batches[half]) + len(batches[1])

        def processor_counters() -> dict:
            rows = s.query("SELECT data FROM counters WHERE name = 'processor'")
            return json.loads(rows[0][0]) if rows else {}
        wait_for(lambda: processor_counters().get("wef_duplicates", 0) >= len(batches[1]),
                 what="the processor counters")
        counters = processor_counters()
        assert counters["wef_duplicates"] >= len(batches[1])  # the pre-kill ones were counted before the kill
        assert dups >= counters["wef_duplicates"]
        hunt = run_cli("hunt", "--jsonl", str(SMB))
        want = [a for a in map(json.loads, hunt.stdout.decode().splitlines()) if a["type"] == "brute-force"]
        got = wait_for(lambda: [a for a in s.alerts() if a["type"] == "brute-force"], what="the brute-force alert")
        assert len(got) == len(want) == 1
        assert got[0]["count"] == want[0]["count"]
        status = {r["client"]: r for r in map(json.loads, run_cli("wef", "status", "--data-dir", str(data),
                                                                       "--json").stdout.decode().splitlines())}
        assert status[DC.lower()]["positions"] == {"Security": max(e.record_id for e in events)}
    finally:
        s.stop()
