"""Incidents in the store (migration 7) on SQLite and PostgreSQL: the one linker fed by the outbox
forwarder, host aliases carried by the batches, status and comments, a restart, a merge."""

from __future__ import annotations

from datetime import timedelta

from storekit import pg_database, pg_url, store_url  # noqa: F401 - fixtures
from test_incidents import PURPLESHARP, _alert

from dcsentry.config import Detection
from dcsentry.formats import ReadStats
from dcsentry.hunt import hunt
from dcsentry.runtime.forwarder import Forwarder
from dcsentry.runtime.linking import IncidentLinker
from dcsentry.web import queries
from dcsentry.store import incidents as stored
from dcsentry.store.rows import Batch
from dcsentry.store.store import open_store


def test_linked_once_through_the_forwarder_and_kept(store_url: str, tmp_path) -> None:  # noqa: F811
    alerts, engine = hunt([str(PURPLESHARP)], Detection(), ReadStats())
    store = open_store(store_url, tmp_path)
    try:
        store.commit_batch(Batch(alerts={a.id: a for a in alerts}, aliases=dict(engine.ctx.hosts.by_address)))
        fwd = Forwarder(store, {}, IncidentLinker(store))
        assert fwd.pump() == 2
        [inc] = stored.list_incidents(store)
        assert inc["title"] == "Password spray from WORKSTATION5, then Kerberoasting by pgustavo"
        assert [a["type"] for a in inc["alerts"]] == ["password-spray", "kerberoasting"]
        assert {queries.get_alert(store, a.id)["incident"] for a in alerts} == {inc["id"]}
        assert stored.set_status(store, inc["id"], "closed", "handled", "tester")["from"] == "open"
        assert stored.add_comment(store, inc["id"], "reset pgustavo", "tester")["author"] == "tester"
        d = stored.get_incident(store, inc["id"])
        assert d["status"] == "closed" and [c["text"] for c in d["comments"]] == ["handled", "reset pgustavo"]

        # a restart: the new linker knows the stored incident; a later alert from the same host joins it,
        # and a second story merged in by it is marked merged
        linker = IncidentLinker(store)
        t = alerts[0].start
        other = _alert("dcsync", "jdoe", 0, accounts=["jdoe"], hosts=["10.9.9.9"])
        other.start, other.end = t + timedelta(minutes=20), t + timedelta(minutes=21)
        linker.link([other])
        second = other.incident
        assert second != inc["id"] and len(stored.list_incidents(store)) == 2
        late = _alert("golden-ticket", "jdoe", 0, accounts=["jdoe"], hosts=["172.18.39.5"])
        late.start, late.end = t + timedelta(minutes=40), t + timedelta(minutes=41)
        linker.link([late])
        [kept] = stored.list_incidents(store)
        assert kept["id"] == inc["id"] and kept["status"] == "closed" and len(kept["alerts"]) == 4
        assert kept["merged"][0]["id"] == second and other.incident == inc["id"]
        gone = stored.list_incidents(store, status="merged")
        assert [g["id"] for g in gone] == [second] and gone[0]["merged_into"] == inc["id"]
        assert kept["severity"] == "critical"
    finally:
        store.close()
