"""Detection state stays flat under hours of the same everyday traffic (issue #18, "memory flat").

A sensor sees the same accounts from the same machines all day: an application server validating
its service account over NTLM every few seconds, a phone retrying an old password, users' Kerberos
and logons. Whatever the engine keeps for that (joins waiting for their other half, windows,
learned profiles, open alerts) must stop growing once the traffic repeats: state bounded only by
key caps grows for hours before a cap bites (the soak of docs/performance.md found a 4776 join
table that kept every joined entry of a key seen at least once a minute). The traffic here: the
synthetic domain's everyday events (no attacks) merged with chatty service accounts; the number of
items held in every container reachable from the engine is compared between hour 13 and hour 8.
"""

from __future__ import annotations

import copy
import heapq
from collections import deque
from collections.abc import Iterator
from datetime import datetime, timedelta

from dclog_kerberoskit import tgs, tgt
from dcsentry.config import Detection
from dcsentry.detectors.engine import DetectionEngine
from dcsentry.model import WindowsEvent
from dcsentry.synth import generate
from eventfactory import T0, kerberos, ntlm_4776, ntlm_8004

BLOCK = 600.0  # seconds of event time one block of chatty traffic covers
HOURS = 18


def _block() -> list[tuple[float, WindowsEvent]]:
    """Ten minutes of chatty accounts, as (offset in the block, event)."""
    out: list[tuple[float, WindowsEvent]] = []
    for k in range(int(BLOCK // 5)):  # the app server's service account, NTLM with its 8004, every 5 s
        out += [(5.0 * k, ntlm_4776(T0, "svc_app", "APPSRV")),
                (5.0 * k + 0.2, ntlm_8004(T0, "FILES", "svc_app", "APPSRV"))]
    for k in range(int(BLOCK // 7)):  # another one the DC logs no 8004 for
        out.append((7.0 * k + 1, ntlm_4776(T0, "svc_sql", "SQLSRV")))
    for k in range(int(BLOCK // 9)):  # an 8004 whose 4776 went to another DC
        out.append((9.0 * k + 2, ntlm_8004(T0, "WEB01", "svc_web", "WEBSRV")))
    for k in range(int(BLOCK // 30)):  # a phone with an old password, over NTLM and Kerberos
        out += [(30.0 * k + 3, ntlm_4776(T0, "jdoe", "PHONE1", "0xc000006a")),
                (30.0 * k + 4, kerberos(4771, T0, "jdoe", "0x18", ip="::ffff:10.0.9.9")),
                (30.0 * k + 5, kerberos(4768, T0, "svc_app", "0x0", ip="::ffff:10.0.1.10"))]
    return sorted(out, key=lambda x: x[0])


def _chatty(hours: int) -> Iterator[WindowsEvent]:
    block = _block()
    for b in range(int(hours * 3600 // BLOCK)):
        for offset, ev in block:
            e = copy.copy(ev)
            e.time = T0 + timedelta(seconds=b * BLOCK + offset)
            e.record_id = (ev.record_id or 0) + b * len(block)
            yield e


def _held(root: object) -> dict[str, int]:
    """Items held by every dict, list, set and deque reachable from `root`, by the shortest attribute
    path to it (breadth first, so the path is stable; a container seen twice counts once)."""
    seen: set[int] = set()
    out: dict[str, int] = {}
    queue: deque[tuple[str, object]] = deque([("engine", root)])
    while queue:
        path, x = queue.popleft()
        if id(x) in seen or isinstance(x, (str, bytes, int, float, type)) or x is None or callable(x):
            continue
        seen.add(id(x))
        if isinstance(x, dict):
            out[path] = out.get(path, 0) + len(x)
            queue += [(path, v) for v in x.values()] + [(path, k) for k in x if isinstance(k, tuple)]
        elif isinstance(x, (list, tuple, set, frozenset, deque)):
            if not isinstance(x, tuple):
                out[path] = out.get(path, 0) + len(x)
            queue += [(path, v) for v in x]
        else:
            attrs = dict(getattr(x, "__dict__", {}))
            for cls in type(x).__mro__:
                for slot in cls.__dict__.get("__slots__", ()):
                    if hasattr(x, slot):
                        attrs[slot] = getattr(x, slot)
            queue += [(f"{path}.{k}" if path.count(".") < 3 else path, v) for k, v in attrs.items()]
    return out


def _growth(events: Iterator[WindowsEvent], early: int, late: int, learned: tuple[str, ...] = ()) -> dict:
    """Feed `events` to an engine; the containers (by path) holding over 10 % (and 20 items) more at
    hour `late` than at hour `early`, paths starting with `learned` left out: {path: (then, now)}."""
    engine = DetectionEngine(Detection(), keep_alerts=False)
    snapshots: dict[int, dict[str, int]] = {}
    for ev in events:
        hour = int((ev.time - T0).total_seconds() // 3600)
        if hour in (early, late) and hour not in snapshots:
            engine.describe_pending()
            snapshots[hour] = _held(engine)
        engine.feed(ev)
    then, now = snapshots[early], snapshots[late]
    return {p: (then.get(p, 0), n) for p, n in now.items()
            if n > 1.1 * then.get(p, 0) + 20 and not (learned and p.startswith(learned))}


def test_state_stops_growing_when_the_traffic_repeats() -> None:
    everyday, _ = generate(seed=5, hours=HOURS, users=40, attacks="none", start=T0)
    grew = _growth(heapq.merge(everyday, _chatty(HOURS), key=lambda e: e.time), 13, HOURS - 1)
    assert not grew, f"state still growing between hour 13 and hour {HOURS - 1} (items then, now): {grew}"


def _one_offs(hours: int, per_hour: int) -> Iterator[WindowsEvent]:
    """Every hour, `per_hour` machines never seen again: each gets one wrong password, one name that
    does not exist, one right password over NTLM, one Kerberos pre-authentication failure, a TGT and
    an RC4 service ticket (what a Kerberoasting window keeps per address)."""
    for h in range(hours):
        for i in range(per_hour):
            t = T0 + timedelta(seconds=h * 3600 + i * 3600 / per_hour)
            ws, user = f"WS{h:03d}X{i:03d}", f"u{h:03d}x{i:03d}"
            yield ntlm_4776(t, user, ws, "0xc000006a")
            yield ntlm_4776(t + timedelta(seconds=1), f"nobody{h}x{i}", ws, "0xc0000064")
            yield ntlm_4776(t + timedelta(seconds=2), f"{user}ok", ws)
            ip = f"::ffff:10.{h % 250}.{i % 250}.7"
            yield kerberos(4771, t + timedelta(seconds=3), user, "0x18", ip=ip)
            yield tgt(t + timedelta(seconds=4), user, ip=ip)
            yield tgs(t + timedelta(seconds=5), user, "svc_sql", ip=ip)


def test_keys_seen_once_are_forgotten_once_idle() -> None:
    """What a detector keeps per source or per (source, account) goes when that key has been idle for
    longer than the window that reads it plus a day (lru.PERIOD, for late events), the spray's day
    the longest, not when a cap of 200,000 keys pushes it out: a domain meets new failing pairs all
    day. What is learned (engine.baseline: who logs on from where; engine.ctx.inventory: the
    accounts that exist) is the domain's profile, kept for weeks and bounded by the domain's size."""
    hours = 62
    grew = _growth(_one_offs(hours, 40), 50, hours - 1, learned=("engine.baseline", "engine.ctx.inventory"))
    assert not grew, f"state kept for idle keys between hour 50 and hour {hours - 1} (items then, now): {grew}"


def _tries(start: datetime, n: int) -> list[WindowsEvent]:
    return [ntlm_4776(start + timedelta(seconds=5 * k), "alice", "WS01", "0xc000006a") for k in range(n)]


def test_time_going_back_does_not_join_two_periods() -> None:
    """`hunt` over more files than it merges reads them one after another: a DC's log of last year
    may follow this year's. A window that kept this year's tries when last year's arrive would count
    both periods as one (and never let go of them): 10 + 10 tries a year apart are no brute force,
    20 within minutes are."""
    year_ago = T0 - timedelta(days=365)
    engine = DetectionEngine(Detection())
    for ev in _tries(T0, 10) + _tries(year_ago, 10):
        engine.feed(ev)
    engine.finish()
    assert not [a for a in engine.alerts.values() if a.type == "brute-force"]
    bf = next(d for d in engine.detectors if type(d).__name__ == "BruteForceDetector")
    assert [len(w) for w in bf.windows.values()] == [10]  # last year's tries only
    engine = DetectionEngine(Detection())
    for ev in _tries(T0, 10) + _tries(year_ago, 20):
        engine.feed(ev)
    engine.finish()
    assert [a.count for a in engine.alerts.values() if a.type == "brute-force"] == [20]


def test_a_late_backlog_still_finds_its_windows() -> None:
    """A DC that was cut off sends three hours of backlog while the others are live: its brute force
    is counted in its own time, though live failures keep touching the same tables (keys are
    forgotten only a day past their window, lru.PERIOD)."""
    live, late = T0 + timedelta(hours=3), T0
    events: list[WindowsEvent] = []
    for k in range(20):  # a live pair under the threshold: each of its tries makes alice's window the oldest key
        events.append(ntlm_4776(late + timedelta(seconds=5 * k), "alice", "WS09", "0xc000006a", dc="DC02.contoso.local"))
        if k < 14:
            events.append(ntlm_4776(live + timedelta(seconds=5 * k), "bob", "LIVE01", "0xc000006a"))
    engine = DetectionEngine(Detection())
    for ev in events:
        engine.feed(ev)
    engine.finish()
    assert [(a.key, a.count) for a in engine.alerts.values() if a.type == "brute-force"] == [("WS09|alice", 20)]
