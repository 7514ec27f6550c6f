"""The pictures of each console page: the store's numbers (web/timeseries.py) drawn as SVG
(charts.py), with the facts a person reads next to them (totals, the window, what is cut off)."""

from __future__ import annotations

import time
from typing import Any

from ..catalogue import spec
from . import timeseries as ts
from .charts import hbars, rate, stacked_bars, strips
from .queries import AlertFilter

RESULTS = ("failure", "success", "group", "service", "other")


def alerts_picture(store: Any, f: AlertFilter) -> dict | None:
    """The alert list's charts: alerts over time stacked by severity, and by type."""
    s = ts.alert_series(store, f)
    if s.axis is None:
        return None
    return {"over_time": stacked_bars(s.axis, s.by_slot, ts.SEVERITIES, "alerts-over-time"),
            "by_type": hbars(s.by_type, ts.SEVERITIES, "alerts-by-type", href="/alerts?type="),
            "total": s.total, "capped": s.capped, "step": _step(s.axis.step),
            "first": s.axis.label(0), "last": s.axis.label(s.axis.n - 1)}


def _step(seconds: int) -> str:
    for unit, n in (("year", 365 * 86400), ("month", 30 * 86400), ("week", 7 * 86400), ("day", 86400),
                    ("hour", 3600), ("minute", 60), ("second", 1)):
        if seconds >= n:
            k = seconds // n
            return f"{k} {unit}s" if k > 1 else unit
    return "second"


def _silence(since: float, now: float) -> str:
    gone = max(0.0, now - since)
    if gone < 60:
        return "<1 min"
    if gone < 3600:
        return f"{int(gone // 60)} min"
    if gone < 86400:
        return f"{gone / 3600:.1f} h"
    return f"{gone / 86400:.1f} days"


def health_pictures(store: Any, dcs: list[dict], hours: int, now: float | None = None) -> list[dict]:
    """Per DC, events per second per event id over the window. An event id with events earlier in
    the window but none lately (the last slot; the last two while the last is under half gone, so
    events of one burst arriving a moment apart do not flicker), while the DC still sends others
    then, is marked as stopped. "now" is the rate over the part of the last slot gone by."""
    now = time.time() if now is None else now
    r = ts.dc_rates(store, hours, now)
    last_seen = {(d["dc"], e["event_id"]): e["last_seen"] for d in dcs for e in d.get("events", [])}
    elapsed = max(1.0, now - (r.axis.start + (r.axis.n - 1) * r.axis.step))
    recent = 2 if elapsed < r.axis.step / 2 else 1
    out = []
    for dc, by_event in sorted(r.dcs.items()):
        alive = any(sum(series[-recent:]) for series in by_event.values())
        rows: list[dict[str, Any]] = []
        for eid, series in sorted(by_event.items()):
            s = spec(eid)
            stopped = ""
            if alive and sum(series) > 0 and sum(series[-recent:]) == 0:  # counts: never negative
                seen = last_seen.get((dc, eid))
                stopped = f"stopped, silent {_silence(seen, now)}" if seen else "stopped"
            rows.append({"event_id": eid, "title": s.title if s else "", "series": series, "stopped": stopped})
        total = [sum(col) for col in zip(*(row["series"] for row in rows))] if rows else []
        out.append({"dc": dc, "svg": strips(r.axis, rows, f"rates-{dc}", elapsed), "rows": rows,
                    "events": sum(total), "now": rate(total[-1], elapsed) if total else "0/s",
                    "stopped": [row["event_id"] for row in rows if row["stopped"]]})
    return out


def health_window(hours: int) -> dict:
    hours = hours if hours in ts.WINDOWS else 24
    return {"hours": hours, "choices": sorted(ts.WINDOWS), "step": _step(ts.WINDOWS[hours])}


def entity_pictures(store: Any, kind: str, name: str) -> dict | None:
    """An entity's activity over time (authentications by result, group changes, services, the
    rest) and the accounts and hosts on the other side of it."""
    a = ts.entity_activity(store, kind, name)
    if a.axis is None:
        return None
    keys = [k for k in RESULTS if any(s.get(k) for s in a.by_slot)]
    return {"over_time": stacked_bars(a.axis, a.by_slot, keys, "entity-over-time", what="activities"),
            "kinds": keys, "total": a.total, "capped": a.capped, "step": _step(a.axis.step),
            "accounts": hbars([(n, {"touched": c}) for n, c in a.accounts], ("touched",), "entity-accounts",
                              href="/entities/account/") if a.accounts else None,
            "hosts": hbars([(n, {"touched": c}) for n, c in a.hosts], ("touched",), "entity-hosts",
                           href="/entities/host/") if a.hosts else None}
