"""The console's reads: the alert list (filters, keyset paging), one alert with its evidence
events and history, an entity's history, and the alert -> entity index behind the entity filter.

Only the store's generic `query`/`execute`/`transaction` with portable SQL, so this runs unchanged
on every backend. The alert list pages by (start, id) keys, never OFFSET: page 2000 of 100k alerts
costs what page 1 costs.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import msgspec

from ..catalogue import NTLM_CHANNEL, NTLM_DC_AUDIT_IDS, spec
from ..store.settings import audit, audit_log

STATUSES = ("open", "closed", "suppressed")
ENTITY_KINDS = ("account", "host", "group")
_dec = msgspec.json.Decoder()
_SUMMARY = ("a.id, a.type, a.kind, a.severity, a.status, a.start_utc, a.end_utc, a.count, a.revision, a.title, "
            "a.updated_at, a.body")


@dataclass
class AlertFilter:
    type: str | None = None
    severity: str | None = None
    status: str | None = None
    kind: str | None = None
    entity: str | None = None
    since: str | None = None  # ISO UTC: alerts whose activity reaches into [since, until]
    until: str | None = None


CURSOR_PATTERN = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?Z\|[0-9a-f]{1,64}$"
_CURSOR = re.compile(CURSOR_PATTERN)


def encode_cursor(start: str, alert_id: str) -> str:
    """`<start>|<id>` of the last alert on a page: the next page is everything older."""
    return f"{start}|{alert_id}"


def decode_cursor(cursor: str) -> tuple[str, str]:
    if not _CURSOR.match(cursor):
        raise ValueError("malformed cursor: expected the `next` value of a previous page")
    start, _, alert_id = cursor.partition("|")
    return start, alert_id


def summary(row: tuple) -> dict:
    """One alert as the list shows it (the body gives the entities and the first line of the story)."""
    aid, type_, kind, severity, status, start, end, count, revision, title, updated, body = row
    d = _dec.decode(body)
    first = next((ln.strip() for ln in d.get("description", "").splitlines() if ln.strip()), "")
    return {"id": aid, "type": type_, "kind": kind, "severity": severity, "status": status, "start": start,
            "end": end, "count": count, "revision": revision, "title": title, "updated_at": updated,
            "summary": first[:300], "entities": d.get("entities", {"accounts": [], "hosts": [], "dcs": []})}


def filter_conditions(f: AlertFilter, start_col: str = "a.start_utc") -> tuple[list[str], list[Any]]:
    """The WHERE conditions and arguments of an alert filter (alerts as `a`, entities as `e`), shared
    by the alert list and its chart so both always count the same alerts."""
    where: list[str] = []
    args: list[Any] = []
    if f.entity:
        where.append("e.entity = ?")
        args.append(f.entity.strip().lower())
    for col, val in (("a.type", f.type), ("a.severity", f.severity), ("a.status", f.status), ("a.kind", f.kind)):
        if val:
            where.append(f"{col} = ?")
            args.append(val)
    if f.since:
        where.append("a.end_utc >= ?")
        args.append(f.since)
    if f.until:
        where.append(f"{start_col} <= ?")
        args.append(f.until)
    return where, args


def list_alerts(store: Any, f: AlertFilter, limit: int = 50,
                cursor: str | None = None) -> tuple[list[dict], str | None]:
    """Newest first (by start, then id); returns the page and the cursor of the next one."""
    if f.entity:
        sql = f"SELECT {_SUMMARY} FROM alert_entities e JOIN alerts a ON a.id = e.alert_id"
        order_cols = ("e.start_utc", "e.alert_id")
    else:
        sql = f"SELECT {_SUMMARY} FROM alerts a"
        order_cols = ("a.start_utc", "a.id")
    where, args = filter_conditions(f, order_cols[0])
    if cursor:
        start, aid = decode_cursor(cursor)
        where.append(f"({order_cols[0]}, {order_cols[1]}) < (?, ?)")
        args += [start, aid]
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += f" ORDER BY {order_cols[0]} DESC, {order_cols[1]} DESC LIMIT ?"
    args.append(limit + 1)
    rows = store.query(sql, args)
    page = [summary(r) for r in rows[:limit]]
    nxt = encode_cursor(page[-1]["start"], page[-1]["id"]) if len(rows) > limit else None
    return page, nxt


def alert_types(store: Any) -> list[str]:
    return [t for (t,) in store.query("SELECT DISTINCT type FROM alerts ORDER BY type")]


def get_alert(store: Any, alert_id: str) -> dict | None:
    rows = store.query("SELECT body, status, updated_at FROM alerts WHERE id = ?", (alert_id,))
    if not rows:
        return None
    d = _dec.decode(rows[0][0])
    d["status"], d["updated_at"] = rows[0][1], rows[0][2]
    linked = store.query("SELECT incident_id FROM incident_alerts WHERE alert_id = ?", (alert_id,))
    d["incident"] = linked[0][0] if linked else None  # set by the incident linker after the commit
    return d


def _channels(event_id: int) -> list[str]:
    if event_id in NTLM_DC_AUDIT_IDS:
        return [NTLM_CHANNEL]
    s = spec(event_id)
    return [s.channel] if s else []


def evidence_events(store: Any, evidence: Iterable[dict]) -> list[dict]:
    """Each evidence reference with the stored event it points at (`event` None when it is not in
    the store: no record id, an id the catalogue does not store, or expired by retention)."""
    out = []
    for ev in evidence:
        found = None
        rid, computer = ev.get("record_id"), ev.get("computer") or ""
        for channel in _channels(int(ev.get("event_id") or 0)) if rid is not None else []:
            rows = store.query("SELECT body FROM events WHERE computer = ? AND channel = ? AND record_id = ?",
                               (computer, channel, rid))
            if rows:
                found = _dec.decode(rows[0][0])
                break
        out.append({**ev, "event": found, "fields": key_fields(found)})
    return out


KEY_FIELDS = ("TargetUserName", "TargetDomainName", "IpAddress", "WorkstationName", "Workstation", "Status",
              "SubStatus", "UserName", "DomainName", "SChannelName", "MemberName", "MemberSid", "SubjectUserName",
              "ServiceName", "ImagePath", "AccountName", "LogonType")


def key_fields(event: dict | None) -> dict:
    """The fields a responder reads first (who, from where, which answer); the rest stay one click away."""
    data = (event or {}).get("data") or {}
    return {k: data[k] for k in KEY_FIELDS if data.get(k) not in (None, "", "-")}


def timeline(alert: dict, evidence: list[dict], history: list[dict]) -> list[dict]:
    """What happened, in order: the first and last activity, the evidence events (a run of alike
    events is one line with its count) and each status change."""
    items = [{"time": alert["start"], "what": "first activity", "kind": "alert"}]
    run: dict | None = None
    for ev in sorted(evidence, key=lambda e: e["time"]):
        data = (ev.get("event") or {}).get("data") or {}
        who = data.get("TargetUserName") or data.get("UserName") or data.get("MemberName") or data.get("ServiceName")
        text = f"event {ev['event_id']} on {ev['computer']}" + (f": {who}" if who else "")
        if run is not None and run["text"] == text:
            run["n"] += 1
            run["last"] = ev["time"]
            continue
        run = {"time": ev["time"], "text": text, "n": 1, "last": ev["time"], "kind": "event"}
        items.append(run)
    for it in items:
        if it.get("kind") == "event":
            n, text, last = it.pop("n"), it.pop("text"), it.pop("last")
            it["what"] = text if n == 1 else f"{text} (x{n}, until {last[11:19]})"
    if alert["end"] != alert["start"]:
        items.append({"time": alert["end"], "what": f"last activity ({alert['count']} in all)", "kind": "alert"})
    for h in history:
        d = h["detail"]
        text = f"status {d.get('from')} -> {d.get('to')} by {h['actor']}"
        if d.get("comment"):
            text += f": {d['comment']}"
        items.append({"time": _iso(h["at"]), "what": text, "kind": "status"})
    return sorted(items, key=lambda i: i["time"])


def _iso(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts)) + f".{int(ts % 1 * 1e6):06d}Z"


def alert_detail(store: Any, alert_id: str) -> dict | None:
    a = get_alert(store, alert_id)
    if a is None:
        return None
    evidence = evidence_events(store, a.get("evidence", []))
    history = audit_log(store, f"alert:{alert_id}", limit=200)
    return {"alert": a, "evidence": evidence, "history": history, "timeline": timeline(a, evidence, history)}


def set_status(store: Any, alert_id: str, status: str, comment: str, actor: str) -> dict | None:
    """Change an alert's status with the actor and comment in the audit trail; None when no such alert."""
    if status not in STATUSES:
        raise ValueError(f"status must be one of {', '.join(STATUSES)}")
    now = time.time()
    with store.transaction() as tx:
        rows = tx.query("SELECT status FROM alerts WHERE id = ?", (alert_id,))
        if not rows:
            return None
        tx.execute("UPDATE alerts SET status = ?, updated_at = ? WHERE id = ?", (status, now, alert_id))
        change = {"from": rows[0][0], "to": status, "comment": comment}
        audit(tx, actor, "alert.status", f"alert:{alert_id}", change, now)
    return change


# -- entities ------------------------------------------------------------------------------------

def _variants(name: str) -> list[str]:
    return sorted({name, name.upper(), name.lower()})


def _activities(store: Any, kind: str, col: str, values: list[str], limit: int) -> list[dict]:
    marks = ", ".join("?" * len(values))
    rows = store.query(f"SELECT time_utc, body FROM activities WHERE {col} IN ({marks}) AND kind = ? "
                       f"ORDER BY time_utc DESC LIMIT ?", (*values, kind, limit))
    return [_dec.decode(body) for _, body in rows]


def entity_history(store: Any, kind: str, name: str, limit: int = 200) -> dict:
    """An account's or a host's activity (authentications with the server accessed, group changes,
    services), or a group's membership changes, newest first; plus the alerts naming it. For a host,
    also `accessed`: the authentications that reached it as the server (NTLM joined with its 8004,
    failed logons it logged itself), stored since schema version 4."""
    if kind not in ENTITY_KINDS:
        raise ValueError(f"kind must be one of {', '.join(ENTITY_KINDS)}")
    low = name.strip().lower()
    out: dict[str, Any] = {"kind": kind, "name": name, "auth": [], "accessed": [], "groups": [], "services": []}
    if kind == "account":  # activities key accounts without the domain (DOMAIN\\name, name@domain)
        names = sorted({low, low.split("\\")[-1].split("@")[0]})
        out["auth"] = _activities(store, "auth", "account", names, limit)
        out["groups"] = _activities(store, "group", "account", names, limit)
        out["services"] = _activities(store, "service", "account", names, limit)
    elif kind == "host":
        out["auth"] = _activities(store, "auth", "host", _variants(name.strip()), limit)
        out["accessed"] = _activities(store, "auth", "server", _variants(name.strip()), limit)
        out["services"] = _activities(store, "service", "host", _variants(name.strip()), limit)
    else:
        out["groups"] = _activities(store, "group", "host", _variants(name.strip()), limit)
    out["alerts"], _ = list_alerts(store, AlertFilter(entity=low), limit=50)
    return out


# -- the alert -> entity index, kept up to date from the alerts' update times -----------------------

OVERLAP = 2.0  # seconds re-read behind the mark: a writer may commit a change stamped a little earlier


class _Ents(msgspec.Struct):
    """The part of an alert body the entity index needs (msgspec skips the rest unread)."""

    id: str
    start: str
    entities: dict[str, list[str]] = {}


_ents = msgspec.json.Decoder(_Ents)


def entity_rows(body: str) -> list[tuple[str, str, str, str]]:
    a = _ents.decode(body)
    rows: dict[str, tuple[str, str, str, str]] = {}
    for role, key in (("account", "accounts"), ("host", "hosts"), ("dc", "dcs")):
        for name in a.entities.get(key) or []:
            if name:
                rows.setdefault(str(name).lower(), (str(name).lower(), a.id, role, a.start))
    return list(rows.values())


def index_entities(store: Any, bodies: Iterable[str]) -> int:
    rows = [r for b in bodies for r in entity_rows(b)]
    if rows:
        with store.transaction() as tx:
            for r in rows:
                tx.execute("INSERT INTO alert_entities (entity, alert_id, role, start_utc) VALUES (?, ?, ?, ?) "
                           "ON CONFLICT (entity, alert_id) DO NOTHING", r)
    return len(rows)


def changed_alerts(store: Any, since: float, after_id: str = "",
                   limit: int = 1000) -> list[tuple[float, str, str, str]]:
    """(updated_at, id, status, body) changed after (since, after_id), oldest change first (an index serves it)."""
    return store.query("SELECT updated_at, id, status, body FROM alerts WHERE (updated_at, id) > (?, ?) "
                       "ORDER BY updated_at, id LIMIT ?", (since, after_id, limit))


def decode_alert(body: str, status: str) -> dict:
    d = _dec.decode(body)
    d["status"] = status
    return d


def index_mark(store: Any) -> float:
    rows = store.query("SELECT value FROM progress WHERE name = 'alert_entities_ms'")
    return rows[0][0] / 1000.0 if rows else 0.0


def save_index_mark(store: Any, ts: float) -> None:
    store.execute("INSERT INTO progress (name, value) VALUES ('alert_entities_ms', ?) ON CONFLICT (name) "
                  "DO UPDATE SET value = excluded.value", (int(ts * 1000),))
