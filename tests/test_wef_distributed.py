"""Windows Event Forwarding on an ingest node of the distributed mode: a private nats-server with
JetStream, the PostgreSQL store, one ingest node with a WEF HTTPS listener and one detect worker,
each a real `dcsentry serve` process; the test client (wefclient.py) plays the DCs over real TLS
with client certificates.

Delivered corpus events are stored once and detected; a batch re-sent after a lost Ack adds
nothing; a sender mismatch raises one `wef-sender-mismatch` alert (raised on the ingest node,
stored by the worker); a silent client raises "stopped forwarding" on the leader; `wef status`
reads the ingest node's bookmarks.
"""

from __future__ import annotations

import json
import secrets
from pathlib import Path

import pytest

from conftest import run_cli
from natskit import Cluster, NatsServer
from servekit import wait_for
from storekit import pg_database, pg_url  # noqa: F401
from test_wef_service import DCS, GROUPS, PSEXEC, config, wef_port
from wefclient import WefClient, client_context, evtx_events, make_wef_pki

pytestmark = [pytest.mark.needs_nats, pytest.mark.needs_pg, pytest.mark.integration]


@pytest.fixture()
def nats_server(tmp_path: Path):
    server = NatsServer(tmp_path / "jetstream").start()
    yield server
    server.stop()


def alerts(cluster: Cluster, kind: str = "security") -> list[dict]:
    return [json.loads(b) for (b,) in cluster.query("SELECT body FROM alerts WHERE kind = ?", kind)]


def test_wef_on_an_ingest_node_publishes_checks_senders_and_keeps_bookmarks(tmp_path, nats_server, pg_url) -> None:
    (tmp_path / "pki").mkdir()
    pki = make_wef_pki(tmp_path / "pki", DCS)
    bus = f'[bus]\nname = "w{secrets.token_hex(4)}"\npartitions = 8\nlease_seconds = 3.0\n'
    cfg = bus + config(pki, heartbeat_interval=1.0, max_time=1.0, silent_after=4.0,
                       intermediate_collectors=["relay.contoso.com"])
    cluster = Cluster(tmp_path, nats_server.url, pg_url, cfg, ingest=1, detect=1).start()
    node = cluster.ingest[0]
    port = wef_port(node)

    def client(cn: str) -> WefClient:
        return WefClient(f"https://localhost:{port}/wsman/SubscriptionManager/WEC", client_context(pki, f"client:{cn}"), cn)

    try:
        last = {}
        for path, cn in ((GROUPS, "rootdc1.offsec.lan"), (PSEXEC, "IE10Win7")):
            c = client(cn)
            _, (sub,), _ = c.enumerate()
            assert sub.bookmark is None
            events = c.pending(sub, evtx_events(str(path)))
            for batch in c.batches(sub, events):
                assert c.deliver(sub, batch).status == 200
            before = dict(sub.positions)
            sub.positions = {}  # the Ack of everything was lost: the client sends it all again
            assert c.deliver(sub, events).status == 200 and sub.positions == before
            c.close()
            last[cn] = sub.positions

        def stored() -> list[tuple]:
            return cluster.query("SELECT computer, event_id, source FROM events WHERE computer IN (?, ?)",
                                 "rootdc1.offsec.lan", "IE10Win7")
        wait_for(lambda: len(stored()) >= 7, timeout=60, what="the delivered events in the store")
        types = wait_for(lambda: {a["type"] for a in alerts(cluster)} >= {"sensitive-group-addition",
                                                                           "suspicious-service-creation"}
                         and {a["type"] for a in alerts(cluster)}, timeout=60, what="alerts from the WEF events")
        assert "wef-sender-mismatch" not in types
        rows = stored()
        assert sorted(r[1] for r in rows if r[0] == "rootdc1.offsec.lan") == [4728, 4756, 4756, 4756]
        # the re-sent copies are not stored; the 104 (its System log cleared) is stored too now
        assert sorted(r[1] for r in rows if r[0] == "IE10Win7") == [104, 7045, 7045]
        assert all(r[2].startswith("https://127.0.0.1:") and "#" in r[2] for r in rows)

        # A compromised forwarder writing in another DC's name; a relay on the allow-list doing the same.
        forged = evtx_events(str(GROUPS), computer="dc02.contoso.com")
        for cn in ("dc01.contoso.com", "relay.contoso.com"):
            c = client(cn)
            _, (sub,), _ = c.enumerate()
            assert c.deliver(sub, forged[:2]).status == 200
            sub.positions = {}
            assert c.deliver(sub, forged[:2]).status == 200  # re-sent after a lost Ack: counted once
            c.close()
        mismatch = wait_for(lambda: [a for a in alerts(cluster) if a["type"] == "wef-sender-mismatch"], timeout=60,
                            what="the sender mismatch alert")
        assert len(mismatch) == 1
        a = mismatch[0]
        assert a["details"]["sender"] == "dc01.contoso.com" and a["details"]["claimed_computer"] == "dc02.contoso.com"
        assert a["count"] == 2 and a["severity"] == "high"

        # The leader's health check sees the ingest node's clients: one that goes silent stopped forwarding.
        c = client("dc03.contoso.com")
        _, (sub,), _ = c.enumerate()
        assert c.heartbeat(sub)[0].status == 200
        c.close()
        stopped = wait_for(lambda: [h for h in alerts(cluster, "health") if h["type"] == "health:wef-stopped"
                                    and h["details"].get("client") == "dc03.contoso.com"], timeout=60,
                           what="the stopped-forwarding health alert")
        assert stopped[0]["title"] == "DC03 stopped forwarding"

        out = run_cli("wef", "status", "--data-dir", str(node.data_dir), "--json")
        status = {r["client"]: r for r in map(json.loads, out.stdout.decode().splitlines())}
        assert status["rootdc1.offsec.lan"]["positions"] == last["rootdc1.offsec.lan"]
        assert status["ie10win7"]["positions"] == last["IE10Win7"]
        c = client("rootdc1.offsec.lan")  # a re-enumeration gets the bookmark the ingest node stored
        _, (sub,), _ = c.enumerate()
        assert sub.positions == last["rootdc1.offsec.lan"]
        c.close()
        assert len([x for x in alerts(cluster) if x["type"] == "wef-sender-mismatch"]) == 1

        def parse() -> dict:
            rows = cluster.query("SELECT data FROM counters WHERE name LIKE 'ingest:%'")
            return json.loads(rows[0][0]).get("parse", {}) if rows else {}
        # JetStream dropped the re-sent copies by their message id (6 + 2 + 2 events sent twice)
        wait_for(lambda: parse().get("duplicates", 0) >= 10, timeout=20, what="the ingest node's duplicate count")
    except AssertionError:
        print(cluster.log())
        raise
    finally:
        cluster.stop()
