"""The distributed mode end to end: a private nats-server with JetStream, the PostgreSQL store,
two ingest nodes and two detect workers as separate `dcsentry serve` processes, corpus attack
traffic over TCP syslog. The same corpus must give the same alerts as the one-process service.
"""

from __future__ import annotations

import json
import secrets
import time
from pathlib import Path

import pytest
from conftest import corpus
from natskit import Cluster, NatsServer, bus_config
from servekit import Serve, corpus_json, frame, send_tcp, wait_for
from storekit import pg_database, pg_url  # noqa: F401

pytestmark = [pytest.mark.needs_nats, pytest.mark.needs_pg, pytest.mark.integration]

FILES = [  # (corpus file, sending host): every alert type, honeytokens (by account and by group member)
    ("evtx/deepbluecli/smb-password-guessing-security.evtx", "DESKTOP"),
    ("evtx/evtx-to-mitre-attack/ID4768-4771-Kerberos user enumeration (Kerbrute).evtx", "ROOTDC1"),
    ("evtx/evtx-attack-samples/kerberos_pwd_spray_4771.evtx", "DC1"),
    ("evtx/evtx-attack-samples/Network_Service_Guest_added_to_admins_4732.evtx", "MSEDGE"),
    ("evtx/evtx-to-mitre-attack/ID4728-4756-Member added to sensitive domain groups.evtx", "ROOTDC1"),
    ("evtx/evtx-to-mitre-attack/ID4732-4733-Quick added-removed user from local group.evtx", "JUMP01"),
    ("evtx/evtx-attack-samples/LM_Remote_Service02_7045.evtx", "WIN77"),
    ("evtx/evtx-to-mitre-attack/ID7000,7009,7045-Payload deployed via service - Tchopper.evtx", "FS03"),
    ("evtx/evtx-to-mitre-attack/ID7045-4697-SMBexec service registration.evtx", "ROOTDC1"),
]
DETECTION = '[detection]\nhoneytokens = ["svc-ata", "honey-pot1"]\n'


def corpus_messages() -> list[list[bytes]]:
    return [[frame(m, host) for m in corpus_json(corpus(path))] for path, host in FILES]


def summary(alerts: list[dict]) -> list[tuple]:
    """What must agree: type, count and entities (ids and texts may carry origins that differ)."""
    return sorted((a["type"], a["count"], tuple(sorted(a["entities"]["accounts"])), tuple(sorted(a["entities"]["hosts"])),
                   tuple(sorted(a["entities"]["dcs"])), a["severity"]) for a in alerts)


def stored_alerts(query) -> list[dict]:
    return [json.loads(b) for (b,) in query("SELECT body FROM alerts WHERE kind = 'security'")]


@pytest.fixture()
def nats_server(tmp_path: Path):
    server = NatsServer(tmp_path / "jetstream").start()
    yield server
    server.stop()


def one_process(tmp_path: Path, files: list[list[bytes]]) -> tuple[list[tuple], int]:
    node = Serve(tmp_path / "single", config=DETECTION).start()
    try:
        total = 0
        for messages in files:  # in order: each connection's messages are in the spool before the next
            send_tcp(node.ports["tcp"], messages)
            total += len(messages)
            wait_for(lambda: node.spool_rows() >= total, timeout=30, what="the spool")
        wait_for(lambda: node.spool_rows() >= total and node.caught_up(), timeout=60, what="the one-process service")
        time.sleep(1.0)
        return summary(node.alerts()), node.query("SELECT COUNT(*) FROM events")[0][0]
    finally:
        node.stop()


def test_same_corpus_gives_the_same_alerts_distributed_and_in_one_process(tmp_path, nats_server, pg_url) -> None:
    files = corpus_messages()
    expected, events = one_process(tmp_path, files)
    assert {t for t, *_ in expected} >= {"brute-force", "password-spray", "sensitive-group-addition",
                                         "suspicious-service-creation", "remote-code-execution", "honeytoken-activity"}
    cluster = Cluster(tmp_path, nats_server.url, pg_url, bus_config(f"t{secrets.token_hex(4)}", DETECTION)).start()
    try:
        for i, messages in enumerate(files):  # file by file, the two ingest nodes in turn, as one DC per file
            node = cluster.ingest[i % 2]
            before = _parsed(cluster, node)
            send_tcp(node.ports["tcp"], messages)
            wait_for(lambda: _parsed(cluster, node) >= before + len(messages), timeout=30,
                     what=f"ingest of {FILES[i][0]}")
            time.sleep(0.3)  # the DCs it learnt reach the other ingest node (key-value watch)
        got = lambda: summary(stored_alerts(cluster.query))  # noqa: E731
        try:
            wait_for(lambda: got() == expected and cluster.query("SELECT COUNT(*) FROM events")[0][0] == events,
                     timeout=60, what="the distributed alerts to match the one-process ones")
        except AssertionError:
            now = got()
            print(cluster.log())
            assert [a for a in now if a not in expected] == [a for a in expected if a not in now]
            raise
        time.sleep(1.5)  # and they stay so: nothing counted twice afterwards
        assert got() == expected
        assert cluster.query("SELECT COUNT(*) FROM events")[0][0] == events
        metrics = cluster.detect[0].http("/metrics")[1]
        assert 'dcsentry_alerts_total{type="brute-force"} 1.0' in metrics
        web = Serve(tmp_path / "web", "--role", "web", "--store", pg_url).start()  # the console from the store only
        web.token = cluster.token
        try:
            assert web.http("/readyz")[0] == 200
            wait_for(lambda: f"dcsentry_events_total{{event_id=\"4625\"}} {3561.0}" in web.http("/metrics")[1],
                     timeout=20, what="the web node's merged counters")
        finally:
            web.stop()
    finally:
        cluster.stop()


def _parsed(cluster: Cluster, node: Serve) -> int:
    """Messages this ingest node decoded and published (its counters row in the shared store)."""
    rows = cluster.query("SELECT name, data FROM counters WHERE name LIKE 'ingest:%'")
    total = 0
    for name, data in rows:
        d = json.loads(data)
        if d.get("parse") and name.split(":", 1)[1] in "".join(node.lines):
            total += d["parse"]["parsed"] + d["parse"]["failed"]
    return total
