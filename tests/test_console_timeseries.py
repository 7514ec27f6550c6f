"""The numbers behind the console's pictures, on both backends (`store_url`): the per-minute DC
counters (`dc_minutes`, schema version 9) written with each batch's health counts, read back as a
window of slots by `dc_rates` (a DC silent all the window still has its rows), kept two days; and
the time axis the charts share."""

from __future__ import annotations

import time
from datetime import UTC, datetime

from storekit import pg_database, pg_url, store_url  # noqa: F401 (fixtures)

from dcsentry.store.rows import Batch
from dcsentry.store.store import MINUTES_KEPT, open_store
from dcsentry.web.timeseries import axis_for, dc_rates


def batch(dc: str, eid: int, at: float, n: int) -> Batch:
    b = Batch()
    b.health[(dc, eid)] = [at, at, datetime(2024, 1, 1, tzinfo=UTC), n]
    return b


def test_dc_minutes_counted_windowed_and_kept_two_days(store_url, tmp_path):  # noqa: F811
    store = open_store(store_url, tmp_path)
    now = time.time() // 60 * 60 + 30  # 30 s into this minute
    for b in (batch("DC01", 8004, now - 600, 5), batch("DC01", 8004, now - 590, 2), batch("DC01", 8004, now, 4),
              batch("DC02", 8004, now - 600, 7), batch("DC02", 4776, now, 3), batch("DC03", 4776, now - 3 * 86400, 9)):
        store.commit_batch(b)
    assert store.query("SELECT SUM(count) FROM dc_minutes WHERE dc = ? AND minute = ?",
                       ("DC01", int((now - 600) // 60)))[0][0] == 7  # one row per minute, added up
    r = dc_rates(store, hours=1, now=now)
    assert (r.axis.n, r.axis.step) == (60, 60) and r.axis.start + 60 * 60 > now >= r.axis.start + 59 * 60
    assert r.dcs["DC01"][8004][-1] == 4 and r.dcs["DC01"][8004][-11] == 7 and sum(r.dcs["DC01"][8004]) == 11
    assert r.dcs["DC02"][8004][-1] == 0 and sum(r.dcs["DC02"][8004]) == 7  # stopped: flat at the end
    assert r.dcs["DC02"][4776][-1] == 3
    assert r.dcs["DC03"][4776] == [0] * 60  # silent for days: still a row (from dc_health)
    day = dc_rates(store, hours=24, now=now)
    assert (day.axis.n, day.axis.step) == (96, 900) and sum(day.dcs["DC01"][8004]) == 11
    assert dc_rates(store, hours=5, now=now).hours == 24  # only the windows the page offers

    assert store.query("SELECT COUNT(*) FROM dc_minutes WHERE dc = 'DC03'")[0][0] == 1
    store.expire(time.time() - 10 * 86400)  # retention prunes the counters to the last two days
    assert store.query("SELECT COUNT(*) FROM dc_minutes WHERE dc = 'DC03'")[0][0] == 0
    assert store.query("SELECT MIN(minute) FROM dc_minutes")[0][0] >= int((time.time() - MINUTES_KEPT) // 60)
    assert store.query("SELECT count FROM dc_health WHERE dc = 'DC03'")[0][0] == 9  # the totals stay
    store.close()


def test_axis_picks_a_step_that_fits():
    a = axis_for(1000.0, 1000.0 + 160)  # a brute force of under three minutes: a bar per 5 s
    assert a.step == 5 and a.n == 33 and a.slot(1000.0) == 0 and a.slot(1160.0) == a.n - 1
    y = axis_for(1_450_000_000.0, 1_620_000_000.0)  # five years of corpus alerts: a bar per year
    assert y.step == 365 * 86400 and y.label(0) == "2014-12" and y.slot(1_450_000_000.0) == 0
    assert axis_for(0.0, 86400 * 2).step == 3600
