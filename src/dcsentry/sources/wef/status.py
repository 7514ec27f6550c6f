"""Forwarding clients as the spool records them: for `dcsentry wef status` and the health check
that says "DC02 stopped forwarding".

Read-only and outside the service: the status command opens the spool file with `mode=ro`, so it
can run beside a live `dcsentry serve` (WAL: readers never block the writer).
"""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

from ...identity import machine_name  # noqa: F401  (re-exported: the status rows' client names)
from ..spool import WEF_COLUMNS

_MARK = re.compile(r"<Bookmark\b([^>]*)/?>")
_ATTR = re.compile(r"""(\w+)\s*=\s*(?:"([^"]*)"|'([^']*)')""")


def read_clients(spool_path: Path) -> list[dict]:
    """Every (client, subscription) row; [] when the spool or its WEF table does not exist yet."""
    if not spool_path.is_file():
        return []
    db = sqlite3.connect(f"file:{spool_path}?mode=ro", uri=True, timeout=30)
    try:
        rows = db.execute(f"SELECT {', '.join(WEF_COLUMNS)} FROM wef_clients ORDER BY client, subscription").fetchall()
    except sqlite3.OperationalError:
        return []
    finally:
        db.close()
    return [dict(zip(WEF_COLUMNS, r)) for r in rows]


def bookmark_positions(bookmark: str | None) -> dict[str, int]:
    """`<BookmarkList>` -> {channel: record id} (the stored XML itself is kept verbatim)."""
    out: dict[str, int] = {}
    for m in _MARK.finditer(bookmark or ""):
        attrs = {k: a if a else b for k, a, b in _ATTR.findall(m.group(1))}
        rid = attrs.get("RecordId", "")
        if "Channel" in attrs and rid.isdigit():
            out[attrs["Channel"]] = int(rid)
    return out


def last_delivery(row: dict) -> float:
    """When the client last delivered (events or a heartbeat); its first enumeration if never.
    Enumerations alone do not count: a client that still enumerates but cannot reach its delivery
    address (a common misconfiguration) forwards nothing."""
    return max(row["last_heartbeat"] or 0.0, row["last_events"] or 0.0) or row["first_seen"]


def silent_clients(rows: list[dict], now: float, silent_after: float) -> list[dict]:
    """Clients that delivered nothing for `silent_after` seconds or ended their subscription, one
    entry per client: its most recently delivering subscription decides. A row may carry its own
    `allowed` silence (an ingest node's setting, in the distributed mode)."""
    latest: dict[str, dict] = {}
    for r in rows:
        cur = latest.get(r["client"])
        if cur is None or last_delivery(r) > last_delivery(cur):
            latest[r["client"]] = r
    return [r for r in latest.values()
            if now - last_delivery(r) > r.get("allowed", silent_after) or r["state"] == "ended"]
