"""Run-time settings in the distributed mode: a honeytoken and an excluded source set through the
REST API of a running node reach the ingest node's routing and the detect worker's engines.

Real processes: a private nats-server, the PostgreSQL store, one ingest node and one detect worker
(`dcsentry serve`); authentication events go over TCP syslog to the ingest node.
"""

from __future__ import annotations

import json
import secrets
from pathlib import Path

import httpx
import pytest
from eventfactory import kerberos
from natskit import Cluster, NatsServer, bus_config
from servekit import frame, send_tcp, wait_for
from storekit import pg_database, pg_url  # noqa: F401

from dcsentry.synth.render import to_evtx_json

pytestmark = [pytest.mark.needs_nats, pytest.mark.needs_pg, pytest.mark.integration, pytest.mark.timeout(240)]

DECOY = "svc-decoy"
EXCLUDED, OTHER = "10.7.7.7", "10.7.7.8"  # a vulnerability scanner to exclude; an attacker not excluded


@pytest.fixture()
def nats_server(tmp_path: Path):
    server = NatsServer(tmp_path / "jetstream").start()
    yield server
    server.stop()


def guesses(t0: float, account: str, ip: str, n: int = 20) -> list[bytes]:
    """`n` wrong passwords (Kerberos 4771) for one account from one address, a second apart."""
    return [frame(to_evtx_json(kerberos(4771, t0 + i, account, "0x18", ip=ip)), "DC01") for i in range(n)]


def send(cluster: Cluster, messages: list[bytes]) -> None:
    """Over syslog to the ingest node; returns once every event is in the store (so processed)."""
    before = cluster.query("SELECT COUNT(*) FROM events")[0][0]
    send_tcp(cluster.ingest[0].ports["tcp"], messages)
    wait_for(lambda: cluster.query("SELECT COUNT(*) FROM events")[0][0] >= before + len(messages), timeout=60,
             what="the events processed")


def alerts(cluster: Cluster, type_: str) -> list[dict]:
    return [json.loads(b) for (b,) in cluster.query("SELECT body FROM alerts WHERE type = ?", type_)]


def applied_everywhere(cluster: Cluster) -> bool:
    """Both nodes report the stored settings version in their counters rows."""
    version = cluster.query("SELECT MAX(updated_at) FROM runtime_settings")[0][0]
    rows = {name: json.loads(data) for name, data in cluster.query("SELECT name, data FROM counters")}
    ingest = [d.get("parse", {}).get("settings_version") for n, d in rows.items() if n.startswith("ingest:")]
    detect = [d.get("settings_version") for n, d in rows.items() if n.startswith("detect:")]
    return bool(version) and ingest == [version] and detect == [version]


def test_settings_set_through_the_api_reach_ingest_and_detect_nodes(tmp_path, nats_server, pg_url) -> None:
    cluster = Cluster(tmp_path, nats_server.url, pg_url, bus_config(f"s{secrets.token_hex(4)}", partitions=4),
                      ingest=1, detect=1).start()
    try:
        # Before: the decoy is an ordinary account; the scanner's guesses are a brute force.
        send(cluster, guesses(0, DECOY, "10.1.1.1", 1) + guesses(10, "alice", EXCLUDED))
        wait_for(lambda: len(alerts(cluster, "brute-force")) == 1, timeout=30, what="the scanner's brute force")
        assert alerts(cluster, "brute-force")[0]["count"] == 20
        assert not alerts(cluster, "honeytoken-activity")

        web = f"http://127.0.0.1:{cluster.detect[0].ports['web']}"
        with httpx.Client(base_url=web, headers={"Authorization": f"Bearer {cluster.token}"}, timeout=30) as api:
            for name, values in (("honeytokens", [DECOY]), ("exclude_sources", [EXCLUDED])):
                r = api.put(f"/api/v1/settings/{name}", json={"values": values, "comment": "test"})
                assert r.status_code == 200, r.text
        wait_for(lambda: applied_everywhere(cluster), timeout=30, what="both nodes to apply the settings")

        # After: any use of the decoy is an alert; the scanner's guesses no longer count, the
        # other attacker's still do.
        send(cluster, guesses(40, DECOY, "10.1.1.1", 1) + guesses(50, "alice", EXCLUDED) + guesses(50, "bob", OTHER))
        wait_for(lambda: len(alerts(cluster, "brute-force")) == 2, timeout=30, what="the other attacker's brute force")
        token = wait_for(lambda: alerts(cluster, "honeytoken-activity"), timeout=30, what="the honeytoken alert")
        assert len(token) == 1 and token[0]["count"] == 1  # the use after the change only
        assert DECOY in token[0]["entities"]["accounts"]
        by_host = {a["entities"]["hosts"][0]: a["count"] for a in alerts(cluster, "brute-force")}
        assert by_host == {EXCLUDED: 20, OTHER: 20}  # the excluded source's alert did not grow
    except AssertionError:
        print(cluster.log())
        raise
    finally:
        cluster.stop()
