"""`dcsentry serve --store postgresql://...`: the real service on this run's PostgreSQL database,
fed the same corpus over syslog as a service on SQLite at the same time, stores the same events
and raises the same alerts."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest
from conftest import corpus, run_cli
from servekit import Serve, corpus_json, frame, send_tcp, send_udp, wait_for

from dcsentry.store.dialect import to_postgres
from storekit import pg_database, pg_url  # noqa: F401 (fixtures)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]


class PgServe(Serve):
    """The service with its results in PostgreSQL: the harness's queries go there."""

    def __init__(self, data_dir: Path, url: str, *args: str) -> None:
        super().__init__(data_dir, "--store", url, *args)
        self.url = url

    def query(self, sql: str, *args: object) -> list[tuple]:
        with psycopg.connect(self.url, autocommit=True) as conn:
            return conn.execute(to_postgres(sql), args).fetchall()


def feed(svc: Serve) -> int:
    brute = corpus_json(corpus("evtx/deepbluecli/smb-password-guessing-security.evtx"), {4625})
    group = corpus_json(corpus("evtx/evtx-attack-samples/Network_Service_Guest_added_to_admins_4732.evtx"))
    psexec = corpus_json(corpus("evtx/evtx-to-mitre-attack/ID7045-7036 PSexec service installation.evtx"), {7045})
    sent = send_tcp(svc.ports["tcp"], (frame(m) for m in brute))
    sent += send_udp(svc.ports["udp"], (frame(m) for m in group))
    return sent + send_tcp(svc.ports["tcp"], (frame(m) for m in psexec))


def outcome(svc: Serve) -> tuple[dict, set]:
    events = dict(svc.query("SELECT event_id, COUNT(*) FROM events GROUP BY event_id"))
    alerts = {(a["id"], a["type"], a["count"], a["severity"], a["start"], a["end"]) for a in svc.alerts()}
    return events, alerts


def test_serve_on_postgresql_raises_what_serve_on_sqlite_raises(tmp_path, pg_url) -> None:
    lite = Serve(tmp_path / "lite").start()
    pg = PgServe(tmp_path / "pg", pg_url).start()
    try:
        sent = [feed(lite), feed(pg)]
        for svc, n in zip((lite, pg), sent):
            wait_for(lambda: svc.spool_rows() >= n, what=f"{n} messages in the spool")
            wait_for(svc.caught_up, what="the processor to catch up")
            wait_for(lambda: {a["type"] for a in svc.alerts()} >= {"brute-force", "sensitive-group-addition",
                                                                  "suspicious-service-creation"},
                     what="the alert types")
        try:  # pending NTLM joins are released after a quiet spell: let both settle
            wait_for(lambda: outcome(pg) == outcome(lite), timeout=30, what="the same results on both", every=0.5)
        finally:
            on_sqlite, on_pg = outcome(lite), outcome(pg)
        assert on_pg == on_sqlite
        assert on_pg[0][4625] > 3500 and len(on_pg[1]) >= 3
        assert not (tmp_path / "pg" / "dcsentry.db").exists()  # the results went to PostgreSQL only
        assert pg.http("/metrics")[0] == 200
    finally:
        assert lite.stop() == 0
        assert pg.stop() == 0


def test_store_flag_errors_are_plain(tmp_path) -> None:
    bad = run_cli("serve", "--data-dir", str(tmp_path), "--store", "mysql://h/db", timeout=30)
    assert bad.returncode == 2 and b"store URL must be sqlite:PATH or postgresql://" in bad.stderr
    down = run_cli("serve", "--data-dir", str(tmp_path), "--store", "postgresql://u:secret@127.0.0.1:1/x",
                   "--web", "off", "--syslog-udp", "off", "--syslog-tcp", "127.0.0.1:0", timeout=60)
    assert down.returncode == 1 and b"cannot open the PostgreSQL store postgresql://u:***@127.0.0.1:1/x" in down.stderr
    assert b"secret" not in down.stderr + down.stdout
    assert b"--store URL" in run_cli("serve", "--help").stdout
