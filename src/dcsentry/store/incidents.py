"""Incidents in the store (migration 7): written by the one linker (runtime/linking.py), read by the
REST API and the console. Status changes and comments are the analyst's; the linker never overwrites
them (a merged incident turns `merged`, pointing at the one it went into)."""

from __future__ import annotations

import time
import uuid
from typing import Any

import msgspec

from .settings import audit

STATUSES = ("open", "closed", "suppressed")
_dec = msgspec.json.Decoder()
_COLS = (("id", "text"), ("status", "text"), ("severity", "text"), ("start_utc", "text"), ("end_utc", "text"),
         ("title", "text"), ("merged_into", "text"), ("body", "text"), ("updated_at", "double precision"))
_UPSERT = ("ON CONFLICT (id) DO UPDATE SET severity = excluded.severity, start_utc = excluded.start_utc, "
           "end_utc = excluded.end_utc, title = excluded.title, body = excluded.body, updated_at = excluded.updated_at")
_MEMBER = ("INSERT INTO incident_alerts (alert_id, incident_id, start_utc) VALUES (?, ?, ?) ON CONFLICT (alert_id) "
           "DO UPDATE SET incident_id = excluded.incident_id, start_utc = excluded.start_utc")


def save(store: Any, rows: list[tuple], members: list[tuple[str, str, str]], merged: list[tuple[str, str]]) -> None:
    """Incident rows (id, status, severity, start, end, title, merged_into, body, updated_at), their alerts
    (alert id, incident id, start) and the incidents merged away (gone id, survivor id): one transaction."""
    now = time.time()
    with store.transaction() as tx:
        db = tx.backend
        if rows:
            db.insert_rows("incidents", _COLS, rows, _UPSERT)
        if members:
            db.executemany(_MEMBER, members)
        for gone, into in merged:
            tx.execute("UPDATE incidents SET status = 'merged', merged_into = ?, updated_at = ? WHERE id = ?",
                       (into, now, gone))


def _decode(body: str, status: str, merged_into: str | None, updated: float) -> dict:
    d = _dec.decode(body)
    d["status"], d["merged_into"], d["updated_at"] = status, merged_into, updated
    return d


def list_incidents(store: Any, limit: int = 50, status: str | None = None, since: float = 0.0,
                   include_merged: bool = False) -> list[dict]:
    """Newest first (by start). `since`: only those changed after it (the console's live refresh)."""
    sql = "SELECT body, status, merged_into, updated_at FROM incidents WHERE updated_at > ?"
    args: list[object] = [since]
    if status:
        sql += " AND status = ?"
        args.append(status)
    elif not include_merged:
        sql += " AND status <> 'merged'"
    sql += " ORDER BY start_utc DESC, id DESC LIMIT ?"
    args.append(limit)
    return [_decode(*r) for r in store.query(sql, args)]


def get_incident(store: Any, incident_id: str) -> dict | None:
    rows = store.query("SELECT body, status, merged_into, updated_at FROM incidents WHERE id = ?", (incident_id,))
    if not rows:
        return None
    d = _decode(*rows[0])
    d["comments"] = [{"id": i, "at": at, "author": who, "text": text} for i, at, who, text in store.query(
        "SELECT id, at, author, text FROM incident_comments WHERE incident_id = ? ORDER BY at, id", (incident_id,))]
    return d


def incident_of(store: Any, alert_id: str) -> str | None:
    rows = store.query("SELECT incident_id FROM incident_alerts WHERE alert_id = ?", (alert_id,))
    return rows[0][0] if rows else None


def set_status(store: Any, incident_id: str, status: str, comment: str, actor: str) -> dict | None:
    if status not in STATUSES:
        raise ValueError(f"status must be one of {', '.join(STATUSES)}")
    now = time.time()
    with store.transaction() as tx:
        rows = tx.query("SELECT status FROM incidents WHERE id = ?", (incident_id,))
        if not rows:
            return None
        tx.execute("UPDATE incidents SET status = ?, updated_at = ? WHERE id = ?", (status, now, incident_id))
        change = {"from": rows[0][0], "to": status, "comment": comment}
        audit(tx, actor, "incident.status", f"incident:{incident_id}", change, now)
        if comment:
            _comment(tx, incident_id, actor, comment, now)
    return change


def add_comment(store: Any, incident_id: str, text: str, actor: str) -> dict | None:
    now = time.time()
    with store.transaction() as tx:
        if not tx.query("SELECT 1 FROM incidents WHERE id = ?", (incident_id,)):
            return None
        c = _comment(tx, incident_id, actor, text, now)
        tx.execute("UPDATE incidents SET updated_at = ? WHERE id = ?", (now, incident_id))
    return c


def _comment(tx: Any, incident_id: str, actor: str, text: str, now: float) -> dict:
    cid = uuid.uuid4().hex
    tx.execute("INSERT INTO incident_comments (id, incident_id, at, author, text) VALUES (?, ?, ?, ?, ?)",
               (cid, incident_id, now, actor, text))
    return {"id": cid, "at": now, "author": actor, "text": text}
