"""Every intake and every detection process saves its own counters (`ingest:<node>`,
`detect:<node>`; the single node's are `ingest:local` and `detect:local`); housekeeping adds them up
into the `ingest` and `processor` rows that /metrics, the console and the health checks read, so
both modes show the same figures, made the same way."""

from __future__ import annotations

import time

GAUGES = frozenset({"connections_open", "lag", "partitions"})
NOT_SUMMED = frozenset({"saved_at", "settings_version"})  # per node: what a sum of them would mean nothing
DETECT_GAUGES = frozenset({"lag", "partitions", "checkpoint"})  # a detect row's per-node state, not totals
STALE = 120.0  # a node silent this long no longer counts in the gauges (its totals still count)


def add_into(total: dict, part: dict, gauges: bool = True) -> None:
    for k, v in part.items():
        if k in NOT_SUMMED or (not gauges and k in GAUGES):
            continue
        if isinstance(v, bool):
            continue
        if isinstance(v, (int, float)):
            total[k] = total.get(k, 0) + v
        elif isinstance(v, dict):
            add_into(total.setdefault(k, {}), v, gauges)
        elif isinstance(v, str):
            total.setdefault(k, v)


def merged_counters(rows: dict[str, dict], now: float | None = None) -> dict[str, dict]:
    now = time.time() if now is None else now
    ingest: dict = {}
    processor: dict = {}
    lag = 0
    for name, data in rows.items():
        fresh = now - float(data.get("saved_at", 0)) < STALE
        if name.startswith("ingest:"):
            add_into(ingest, {k: v for k, v in data.items() if k != "parse"}, fresh)
            add_into(processor, data.get("parse", {}))
        elif name.startswith("detect:"):
            add_into(processor, {k: v for k, v in data.items() if k not in DETECT_GAUGES})
            if fresh:
                lag += int(data.get("lag", 0))
    ingest["spool_depth"] = lag  # accepted (in the stream) but not yet processed
    return {"ingest": ingest, "processor": processor}
