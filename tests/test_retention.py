"""`[serve] raw_events`: which raw events the store keeps (none / detector / all), on both backends.

Why these tests: whatever the choice, an alert's evidence must stay viewable in the console (its
events are kept, also when the alert names events of an earlier batch), activities and alerts are
always kept, and a wrong value is refused where it is read (the TOML file, the store).
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from dcsentry.activities import AuthActivity, evidence_of
from dcsentry.alerts import Alert
from dcsentry.config import Config, _apply
from dcsentry.model import Origin, WindowsEvent
from dcsentry.store.rows import RAW_EVENTS, Batch, RawEvents
from dcsentry.store.store import Store, open_store
from dcsentry.web.queries import alert_detail, entity_history
from storekit import pg_database, pg_url, store_url  # noqa: F401 (fixtures)

T0 = datetime(2024, 1, 18, 5, 0, tzinfo=timezone.utc)
DC = "DC01.contoso.local"


def event(rid: int, eid: int = 4776, user: str = "alice") -> WindowsEvent:
    return WindowsEvent(eid, "Microsoft-Windows-Security-Auditing", "Security", DC, T0 + timedelta(seconds=rid), rid,
                        {"TargetUserName": user, "Workstation": "WS1", "Status": "0xc000006a"},
                        origin=Origin("tcp://10.0.0.5:5000", rid))


def activity(ev: WindowsEvent) -> AuthActivity:
    return AuthActivity(ev.time, "NTLM", ev.data["TargetUserName"], "", "WS1", "", "DC01", "wrong-password",
                        "0xc000006a", [evidence_of(ev)])


def alert(*evs: WindowsEvent) -> Alert:
    return Alert(type="brute-force", key="WS1|alice", title="t", description="d", severity="medium",
                 technique="T1110.001", start=evs[0].time, end=evs[-1].time, count=len(evs),
                 accounts=["alice"], hosts=["WS1"], evidence=[evidence_of(e) for e in evs])


def stored(store: Store) -> set[int]:
    return {int(r[0]) for r in store.query("SELECT record_id FROM events")}


def test_evidence_older_than_the_hold_shows_as_a_reference(tmp_path):
    """Past HOLD_EVENTS dropped events the oldest are gone: the console still shows the reference,
    as it does for an event expired by retention."""
    store = open_store("sqlite:dcsentry.db", tmp_path, raw_events="none")
    store._raw.hold = 2
    evs = [event(i) for i in range(1, 5)]
    store.commit_batch(Batch(events=[(e, 1.0, False) for e in evs]))
    a = alert(*evs)
    store.commit_batch(Batch(alerts={a.id: a}))
    assert stored(store) == {3, 4}
    shown = alert_detail(store, a.id)["evidence"]
    assert [e["record_id"] for e in shown] == [1, 2, 3, 4]
    assert [e["event"] is not None for e in shown] == [False, False, True, True]
    store.close()


def test_all_keeps_events_without_record_id_and_none_holds_nothing_for_them(tmp_path):
    raw = RawEvents("none")
    b = Batch(events=[(event(1), 1.0, False)])
    b.events[0][0].record_id = None
    assert raw.select(b) == [] and not raw._held
    assert RawEvents("all").select(b) == b.events


def test_the_choice_is_checked_where_it_is_read(tmp_path):
    assert RAW_EVENTS == ("none", "detector", "all") and Config().serve.raw_events == "all"
    with pytest.raises(ValueError, match="raw_events"):
        RawEvents("some")
    store = open_store("sqlite:dcsentry.db", tmp_path)
    assert store.raw_events == "all"
    store.raw_events = "none"
    assert store.raw_events == "none"
    with pytest.raises(ValueError):
        store.raw_events = "everything"
    store.close()
    cfg = Config()
    _apply(cfg, {"serve": {"raw_events": "detector"}}, "t.toml")
    assert cfg.serve.raw_events == "detector"
    with pytest.raises(ValueError, match="raw_events"):
        _apply(Config(), {"serve": {"raw_events": "most"}}, "t.toml")


@pytest.mark.parametrize("policy, kept", [("all", {1, 2, 3}), ("detector", {1, 2}), ("none", {1})])
def test_each_choice_keeps_its_events_and_always_activities_and_alerts(store_url, tmp_path, policy, kept):
    store = open_store(store_url, tmp_path, raw_events=policy)
    evidence, read, other = event(1), event(2, user="bob"), event(3, 4769)
    a = alert(evidence)
    b = Batch(events=[(e, 1.0, False) for e in (evidence, read, other)],
              activities=[activity(evidence), activity(read)],
              alerts={a.id: a}, checkpoint=3)
    store.commit_batch(b)
    assert stored(store) == kept
    assert store.count("activities") == 2 and store.count("alerts") == 1 and store.checkpoint() == 3
    detail = alert_detail(store, a.id)
    assert detail is not None and detail["evidence"][0]["event"]["record_id"] == 1  # viewable in the console
    assert detail["evidence"][0]["fields"]["TargetUserName"] == "alice"
    assert [x["account"] for x in entity_history(store, "account", "bob")["auth"]] == ["bob"]  # activities stay
    store.close()


@pytest.mark.parametrize("policy", ["none", "detector"])
def test_evidence_of_an_earlier_batch_is_written_when_an_alert_names_it(store_url, tmp_path, policy):
    """A brute force crosses its threshold after events committed earlier: they were held back."""
    store = open_store(store_url, tmp_path, raw_events=policy)
    first = [event(i) for i in range(1, 6)]
    store.commit_batch(Batch(events=[(e, 1.0, False) for e in first], checkpoint=5))
    assert stored(store) == set()
    a = alert(*first[:3], event(6))
    store.commit_batch(Batch(events=[(event(6), 2.0, False), (event(7), 2.0, False)], alerts={a.id: a}, checkpoint=7))
    assert stored(store) == {1, 2, 3, 6}
    assert all(e["event"] is not None for e in alert_detail(store, a.id)["evidence"])
    store.close()
