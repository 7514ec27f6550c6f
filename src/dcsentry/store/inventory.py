"""The imported account inventory (`dcsentry inventory import`, migration 5's `inventory` table).

An import replaces the stored inventory whole (an export is a snapshot of the directory: an account
missing from it no longer exists) and leaves an audit row. Detecting processes build their
engines' `Inventory` from it (`load_inventory`) when they start, and again when `inventory_version`
changes (runtime/settings.py).
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import msgspec

from ..activities.context import Account, Inventory, account_name
from .settings import audit

_enc = msgspec.json.Encoder()
_dec = msgspec.json.Decoder()
_COLS = "name, sid, kind, dc, sensitive, disabled, dn, body, imported_at"


def _row(acc: Account, now: float) -> tuple:
    body = dataclasses.asdict(acc)
    return (account_name(acc.name), acc.sid, acc.kind, int(acc.dc), int(acc.sensitive), int(acc.disabled), acc.dn,
            _enc.encode(body).decode(), now)


def save_inventory(store: Any, accounts: list[Account], actor: str, filename: str, fmt: str = "") -> dict:
    """Replace the stored inventory with `accounts`; returns the import's summary (also audited)."""
    now = time.time()
    rows: dict[str, tuple] = {}
    for acc in accounts:
        key = account_name(acc.name)
        if key:
            rows[key] = _row(acc, now)  # one row per sAMAccountName (the last record wins)
    summary = {"filename": filename, "format": fmt, "accounts": len(rows),
               "computers": sum(1 for r in rows.values() if r[2] == "computer"),
               "dcs": sum(1 for r in rows.values() if r[3]), "sensitive": sum(1 for r in rows.values() if r[4])}
    with store.transaction() as tx:
        before = tx.query("SELECT COUNT(*) FROM inventory")[0][0]
        tx.execute("DELETE FROM inventory")
        if rows:
            tx.backend.executemany(f"INSERT INTO inventory ({_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                                   list(rows.values()))
        audit(tx, actor, "inventory.import", "inventory", {**summary, "replaced": before}, now)
    return summary


def stored_accounts(store: Any) -> list[Account]:
    return [Account(**_dec.decode(body)) for (body,) in store.query("SELECT body FROM inventory ORDER BY name")]


def load_inventory(store: Any) -> Inventory | None:
    """A fresh `Inventory` holding the stored import (each engine needs its own: readers add to it),
    or None when nothing was imported."""
    accounts = stored_accounts(store)
    if not accounts:
        return None
    inv = Inventory()
    inv.load(accounts)
    return inv


def inventory_version(store: Any) -> float:
    rows = store.query("SELECT MAX(imported_at) FROM inventory")
    return float(rows[0][0] or 0.0) if rows else 0.0


def inventory_summary(store: Any) -> dict:
    """Counts, and who imported what when (the latest import's audit row)."""
    n, computers, dcs, sensitive, disabled = store.query(
        "SELECT COUNT(*), COALESCE(SUM(CASE WHEN kind = 'computer' THEN 1 ELSE 0 END), 0), COALESCE(SUM(dc), 0), "
        "COALESCE(SUM(sensitive), 0), COALESCE(SUM(disabled), 0) FROM inventory")[0]
    last = store.query("SELECT at, actor, detail FROM audit_log WHERE action = 'inventory.import' "
                       "ORDER BY at DESC LIMIT 1")
    out = {"accounts": int(n), "users": int(n) - int(computers), "computers": int(computers), "dcs": int(dcs),
           "sensitive": int(sensitive), "disabled": int(disabled), "imported_at": None, "imported_by": None,
           "filename": None}
    if last:
        at, actor, detail = last[0]
        out.update(imported_at=at, imported_by=actor, filename=_dec.decode(detail).get("filename"))
    return out


def list_inventory(store: Any, q: str = "", kind: str = "", limit: int = 200, offset: int = 0) -> list[dict]:
    """Accounts by name; `q` matches name, SID or DN (substring, case-insensitive); `kind`:
    user | computer | dc | sensitive."""
    sql = "SELECT body FROM inventory"
    args: list[object] = []
    where = []
    if q:
        like = "%" + q.lower().replace("!", "!!").replace("%", "!%").replace("_", "!_") + "%"
        where.append("(name LIKE ? ESCAPE '!' OR LOWER(sid) LIKE ? ESCAPE '!' OR LOWER(dn) LIKE ? ESCAPE '!')")
        args += [like, like, like]
    if kind in ("user", "computer"):
        where.append("kind = ?")
        args.append(kind)
    elif kind in ("dc", "sensitive", "disabled"):
        where.append(f"{kind} = 1")
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += " ORDER BY name LIMIT ? OFFSET ?"
    args += [limit, offset]
    return [_dec.decode(body) for (body,) in store.query(sql, args)]
