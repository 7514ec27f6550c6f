"""Directory Service Changes: 5136 values assembled into one `DirectoryChange` per operation
(reference/dc-log-alerts.md A6).

Tests named `synthetic` build events from the reference's layouts (no public recording of shadow
credentials, GPO client-side-extension edits or primaryGroupID changes); the corpus files of these
types are scored in test_hunt_dclog.py and read here for what the alert says."""

from __future__ import annotations

import dclog_directorykit as k
from dclog_directorykit import PC_DN, USER_DN, changes
from dcsentry.activities.builder import ActivityBuilder
from dcsentry.activities.context import DomainContext
from dcsentry.activities.dclog.directory import DirectoryChange, DirectoryReader
from eventfactory import at


# -- the reader: one change per operation -----------------------------------------------------------
def test_synthetic_values_of_one_operation_make_one_change() -> None:
    corr = k.correlation()
    evs = [k.value(at(0), USER_DN, "user", "servicePrincipalName", "HTTP/web01", corr=corr),
           k.value(at(0.01), USER_DN, "user", "servicePrincipalName", "HTTP/web01.contoso.local", corr=corr)]
    (ch,) = changes(evs)
    assert (ch.operation, ch.attribute, ch.object_dn, ch.object_class) == ("modify", "servicePrincipalName",
                                                                            USER_DN, "user")
    assert ch.added == ["HTTP/web01", "HTTP/web01.contoso.local"] and ch.removed == []
    assert ch.correlation == corr and ch.event_ids == [5136] and len(ch.evidence) == 2
    assert ch.object_guid == "0b32719a-29a5-4ad5-b9dc-56200eba0ce0" and ch.actor == "Administrator"


def test_a_replace_is_the_deleted_and_added_value_of_one_change() -> None:
    (ch,) = changes(k.replace(at(0), USER_DN, "user", "primaryGroupID", "513", "512", syntax="2.5.5.9"))
    assert ch.removed == ["513"] and ch.added == ["512"]


def test_rendered_operation_words_are_read_like_the_codes() -> None:
    corr = k.correlation()
    evs = [k.value(at(0), USER_DN, "user", "description", "old", op="Value Deleted", corr=corr),
           k.value(at(0), USER_DN, "user", "description", "new", op="Value Added", corr=corr)]
    (ch,) = changes(evs)
    assert ch.removed == ["old"] and ch.added == ["new"]


def test_attributes_and_objects_of_one_operation_stay_apart() -> None:
    corr = k.correlation()
    evs = [k.value(at(0), USER_DN, "user", "description", "a", corr=corr),
           k.value(at(0), USER_DN, "user", "info", "b", corr=corr),
           k.value(at(0), PC_DN, "computer", "description", "c", corr=corr, guid="{11111111-2222-3333-4444-555555555555}")]
    assert sorted((c.object_dn, c.attribute) for c in changes(evs)) == [
        (PC_DN, "description"), (USER_DN, "description"), (USER_DN, "info")]


def test_a_new_correlation_id_on_the_dc_releases_the_previous_operation() -> None:
    reader = DirectoryReader(k_ctx())
    first = reader.feed(k.value(at(0), USER_DN, "user", "description", "a"))
    assert first == [] and reader.holding
    out = reader.feed(k.value(at(0.1), USER_DN, "user", "description", "b"))  # another operation
    assert [c.added for c in out] == [["a"]]
    assert [c.added for c in reader.release(float("inf"))] == [["b"]] and not reader.holding


def test_another_dcs_operation_does_not_release_this_one() -> None:
    reader = DirectoryReader(k_ctx())
    reader.feed(k.value(at(0), USER_DN, "user", "description", "a"))
    assert reader.feed(k.value(at(0.1), USER_DN, "user", "description", "b", dc="DC02.contoso.local")) == []


def test_the_clock_moving_past_the_window_releases_a_change() -> None:
    reader = DirectoryReader(k_ctx(), window=2.0)
    corr = k.correlation()
    reader.feed(k.value(at(0), USER_DN, "user", "description", "a", corr=corr))
    assert reader.release(at(-0.5).timestamp()) == []  # `before` is older than its last value
    assert reader.feed(k.value(at(1.5), USER_DN, "user", "description", "b", corr=corr)) == []
    late = reader.feed(k.value(at(4), PC_DN, "computer", "description", "c", dc="DC02.contoso.local"))
    assert [c.added for c in late] == [["a", "b"]]


def test_the_builder_releases_held_changes_as_other_events_arrive() -> None:
    b = ActivityBuilder()
    assert b.feed(k.value(at(0), USER_DN, "user", "description", "a")) == []
    out = b.feed(k.logon(at(30), "eve", k.EVE[1]))
    assert any(isinstance(a, DirectoryChange) for a in out)


def test_created_moved_and_deleted_objects_are_changes_of_their_own() -> None:
    evs = [k.created(at(0), PC_DN, "computer"), k.moved(at(1), PC_DN, "CN=WS01,OU=Quarantine,DC=contoso,DC=local",
                                                          "computer"),
           k.deleted(at(2), PC_DN, "computer")]
    got = changes(evs)
    assert [c.operation for c in got] == ["create", "move", "delete"]
    assert got[1].new_dn.startswith("CN=WS01,OU=Quarantine") and got[1].object_dn == PC_DN
    assert all(c.attribute == "" for c in got) and got[0].event_ids == [5137]


def test_the_writers_session_gives_the_source_address() -> None:
    evs = [k.logon(at(0), "eve", k.EVE[1], logon_id="0x77aa", ip="10.9.9.9"),
           k.value(at(5), USER_DN, "user", "description", "x", actor=k.EVE, logon_id="0x77aa")]
    (ch,) = changes(evs)
    assert ch.source == "10.9.9.9" and ch.session is not None


def k_ctx() -> DomainContext:
    return DomainContext()

