"""Bounded detector state (Lru) and typed baseline rows: a baseline saved with rows as plain JSON
arrays (what earlier versions wrote) loads into the typed rows, and saves back the same arrays."""

from __future__ import annotations

import msgspec

from dcsentry.detectors.baseline import Baseline
from dcsentry.detectors.dclog.asrep_roasting import PairSeen
from dcsentry.detectors.dclog.golden_ticket import TicketProfile
from dcsentry.detectors.dclog.overpass_the_hash import TgtProfile
from dcsentry.detectors.dclog.pass_the_hash import AuthProfile
from dcsentry.lru import Lru


def test_lru_forgets_the_least_recently_touched() -> None:
    lru: Lru[str, int] = Lru(2)
    lru.put("a", 1)
    lru.put("b", 2)
    assert lru.touch("a", lambda: 0) == 1  # "a" is now the most recent
    lru.put("c", 3)
    assert list(lru.items()) == [("a", 1), ("c", 3)]
    assert lru.touch("d", lambda: 4) == 4
    assert list(lru) == ["c", "d"]


OLD = {  # as a baseline of plain lists was saved
    "golden-ticket.accounts": [["alice", [1700000000.5, 12, 0]]],
    "asrep-roasting.pairs": [[["bob", "10.0.0.5"], [1700000000, 1700000100, 0, 1]]],
    "overpass-the-hash.tgts": [["carol", [1700000000.0, 3, 1, 1700000050.0]]],
    "auth_profiles": [["dave", [4, 1, ["10.0.0.7", "WS01"]]]],
}
ROWS = {"golden-ticket.accounts": TicketProfile, "asrep-roasting.pairs": PairSeen,
        "overpass-the-hash.tgts": TgtProfile, "auth_profiles": AuthProfile}


def test_old_baseline_rows_load_typed_and_save_unchanged() -> None:
    raw = msgspec.json.encode({"tables": OLD})
    b = Baseline.load(raw)
    accounts = b.rows("golden-ticket.accounts", TicketProfile)
    assert accounts["alice"] == TicketProfile(1700000000.5, 12, 0)
    pair = b.rows("asrep-roasting.pairs", PairSeen)[("bob", "10.0.0.5")]
    assert (pair.first, pair.last, pair.alerted, pair.learning) == (1700000000, 1700000100, 0, 1)
    assert b.rows("overpass-the-hash.tgts", TgtProfile)["carol"].rc4 == 1
    assert b.rows("auth_profiles", AuthProfile)["dave"].sources == ["10.0.0.7", "WS01"]
    for name, row in ROWS.items():
        b.rows(name, row)  # a second call converts nothing and keeps the same objects
    saved = msgspec.json.decode(b.dump())["tables"]
    assert saved == msgspec.json.decode(msgspec.json.encode(OLD))


def test_typed_rows_round_trip() -> None:
    b = Baseline()
    b.rows("golden-ticket.accounts", TicketProfile).touch("eve", lambda: TicketProfile(5.0)).aes += 1
    again = Baseline.load(b.dump()).rows("golden-ticket.accounts", TicketProfile)
    assert again["eve"] == TicketProfile(5.0, 1, 0)


def test_recent_set_keeps_the_last_distinct_keys() -> None:
    from dcsentry.lru import RecentSet

    seen: RecentSet[str] = RecentSet(3)
    for k in ("a", "b", "a", "c"):  # adding a key it holds changes nothing
        seen.add(k)
    assert len(seen) == 3 and "a" in seen
    seen.add("d")  # "a" came first: forgotten
    assert "a" not in seen and all(k in seen for k in "bcd")


def test_drop_idle_stops_at_the_first_active_key() -> None:
    from dcsentry.lru import PERIOD

    lru: Lru[str, float] = Lru()
    for k, t in (("old", 1.0), ("mid", 5.0), ("new", 9.0)):
        lru.put(k, t)
    assert lru.drop_idle(4.0, float) == []  # idle, but within a PERIOD: a late event may still need it
    assert lru.drop_idle(PERIOD + 4.0, float) == ["old"]
    assert list(lru) == ["mid", "new"]
    lru.put("mid", 20.0)  # touched again: now the most recent, so "new" is looked at first
    assert lru.drop_idle(PERIOD + 10.0, float) == ["new"] and list(lru) == ["mid"]


def test_open_alerts_go_a_day_of_the_clock_after_their_last_growth() -> None:
    """An open alert stays while its attack goes on, whatever the event time of other input does;
    once nothing grew it for the gap plus a day of wall time it is forgotten, so a sensor running for
    months does not keep every alert it ever raised."""
    from datetime import UTC, datetime, timedelta

    from dcsentry.config import Detection
    from dcsentry.detectors.base import Incidents

    now = [0.0]
    inc = Incidents(Detection(), clock=lambda: now[0])
    t = datetime(2024, 3, 4, 10, tzinfo=UTC)
    last_year = t - timedelta(days=365)
    alice = inc.raise_or_grow("brute-force", "WS1|alice", t, [])
    bob = inc.raise_or_grow("brute-force", "WS2|bob", last_year, [])  # another period, same wall time
    now[0] = inc.keep - 1
    assert inc.raise_or_grow("brute-force", "WS2|bob", last_year + timedelta(minutes=1), []) is bob  # grows
    now[0] = inc.keep + 1
    inc.raise_or_grow("brute-force", "WS3|carol", t + timedelta(minutes=2), [])  # a new alert looks
    assert inc.current("brute-force", "WS1|alice", t) is None  # not grown for `keep`: over
    assert inc.current("brute-force", "WS2|bob", last_year + timedelta(minutes=1)) is bob
    assert inc.raise_or_grow("brute-force", "WS1|alice", t + timedelta(minutes=3), []) is not alice
    for day in range(2, 40):  # one new alert a day for weeks: only the last day's stay open
        now[0] = day * (inc.keep + 1)
        inc.raise_or_grow("brute-force", f"WS{day}|user{day}", t + timedelta(days=day), [])
    assert len(inc._open) == 1
