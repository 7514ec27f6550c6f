"""Incidents in the distributed mode: a private nats-server, the PostgreSQL store, two ingest nodes and
two detect workers. The OTRF AD playbook's events are spread over both ingest nodes and (by the bus's
partitioning) over both workers; the one linker on the leader still makes one incident of the spray
and the Kerberoast, with the host alias learned by whichever worker read the 5156s."""

from __future__ import annotations

import json
import secrets

import pytest
from conftest import read_file_events
from natskit import Cluster, NatsServer, bus_config
from servekit import frame, send_tcp, wait_for
from storekit import pg_database, pg_url  # noqa: F401
from test_incidents import PURPLESHARP
from test_incidents_serve import WANTED

from dcsentry.synth.render import to_evtx_json

pytestmark = [pytest.mark.needs_nats, pytest.mark.needs_pg, pytest.mark.integration, pytest.mark.timeout(300)]


def test_one_incident_whichever_worker_saw_which_alert(tmp_path, pg_url) -> None:  # noqa: F811
    server = NatsServer(tmp_path / "jetstream").start()
    cluster = Cluster(tmp_path, server.url, pg_url, bus_config(f"t{secrets.token_hex(4)}")).start()
    try:
        events, _ = read_file_events(PURPLESHARP)
        msgs = [frame(to_evtx_json(e), "MORDORDC") for e in events if e.event_id in WANTED]
        half = len(msgs) // 2
        send_tcp(cluster.ingest[0].ports["tcp"], msgs[:half])
        send_tcp(cluster.ingest[1].ports["tcp"], msgs[half:])

        def linked() -> list[tuple]:
            return cluster.query("SELECT id, body FROM incidents WHERE status <> 'merged'")

        def story() -> bool:
            rows = linked()
            return len(rows) == 1 and len(json.loads(rows[0][1])["alerts"]) == 2

        try:
            wait_for(story, timeout=90, what="one incident of two alerts")
        except AssertionError:
            print(cluster.log())
            raise
        [(inc_id, body)] = linked()
        d = json.loads(body)
        assert d["title"] == "Password spray from WORKSTATION5, then Kerberoasting by pgustavo"
        members = cluster.query("SELECT alert_id FROM incident_alerts WHERE incident_id = ?", inc_id)
        alerts = cluster.query("SELECT id FROM alerts WHERE kind = 'security'")
        assert sorted(m for (m,) in members) == sorted(a for (a,) in alerts) and len(alerts) == 2
        assert ("WORKSTATION5",) in cluster.query("SELECT name FROM host_aliases WHERE address = ?", "172.18.39.5")
    finally:
        cluster.stop()
        server.stop()
