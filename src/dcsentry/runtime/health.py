"""Health alerts: a DC that stopped sending an event the sensor needs, a peer sending mostly
unparseable messages, a spool near full, UDP drops, a sink that cannot be reached. Each says what
to change, in the words of reference/health-alerts.md and audit-policy.md. They are stored and
forwarded like security alerts (kind "health") and closed when the condition clears.

Ids are stable: a condition's alert starts at a time derived from the condition (the DC's first
event plus the allowed silence; the hour or day bucket of the detection), so a restart updates
the same alert instead of raising a second one.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime

from ..alerts import Alert
from ..audit.silence import Seen, requirement_states
from ..config import Health, Wef
from ..sources.wef.status import bookmark_positions, last_delivery, silent_clients
from ..store.store import Store

HEALTH_CLASSES = {
    "ntlm-auditing": "NtlmAuditingNotEnabledMonitoringAlert",
    "credential-validation": "DirectoryServicesAdvancedAuditingNotEnabledMonitoringAlert",
    "security-group-management": "DirectoryServicesAdvancedAuditingNotEnabledMonitoringAlert",
    "service-installs": "WindowsEventsMissingMonitoringAlert",
    "kerberos-authentication": "DirectoryServicesAdvancedAuditingNotEnabledMonitoringAlert",
    "kerberos-service-tickets": "DirectoryServicesAdvancedAuditingNotEnabledMonitoringAlert",
    "directory-service-access": "DirectoryServicesObjectAuditingNotEnabledMonitoringAlert",
    "directory-service-changes": "DirectoryServicesAdvancedAuditingNotEnabledMonitoringAlert",
    "peer-unparseable": "SyslogPeerUnparseableMonitoringAlert",
    "spool-near-full": "WindowsEventsNotAnalyzedMonitoringAlert",
    "udp-drops": "WindowsEventsNotAnalyzedMonitoringAlert",
    "sink-unreachable": "SyslogSinkUnreachableMonitoringAlert",
    "wef-stopped": "WindowsEventForwardingStoppedMonitoringAlert",
}


def _utc(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


def health_alert(check: str, key: str, start: float, title: str, description: str, severity: str = "medium",
                 count: int = 1, **details: object) -> Alert:
    return Alert(type=f"health:{check}", key=key, title=title, description=description, severity=severity,
                 technique="", start=_utc(start), end=_utc(time.time()), count=count, kind="health",
                 details={"class": HEALTH_CLASSES.get(check, "MonitoringAlert"), **details})


class HealthChecker:
    """Evaluate every `check_interval`; `ingest` gives the receiving side's counters."""

    def __init__(self, store: Store, cfg: Health, ingest: Callable[[], dict], spool_bound: int,
                 wef: tuple[Wef, Callable[[], list[dict]]] | None = None) -> None:
        self.store = store
        self.wef = wef
        self.cfg = cfg
        self.ingest = ingest
        self.spool_bound = spool_bound
        self.open: dict[tuple[str, str], Alert] = {}
        self._last: dict[str, tuple[int, float]] = {}  # counter -> (value, when it last grew)

    def _grew_recently(self, name: str, value: int, now: float, within: float = 3600.0) -> bool:
        """True while a drop/failure counter has grown within the last hour."""
        old, when = self._last.get(name, (0, 0.0))
        if value > old:
            self._last[name] = (value, now)
            return True
        return value > 0 and now - when < within

    def evaluate(self, now: float | None = None) -> list[Alert]:
        now = time.time() if now is None else now
        found: dict[tuple[str, str], Alert] = {}
        self._missing_events(now, found)
        self._intake(now, found)
        self._forwarding(now, found)
        for k, a in found.items():
            prev = self.open.get(k)
            if prev is not None and prev.id == a.id:
                a.revision = prev.revision + (1 if prev.description != a.description else 0)
            self.store.put_alert(a, forward=prev is None or prev.description != a.description)
        for k, a in list(self.open.items()):
            if k not in found:
                self.store.set_status(a.id, "closed")
                del self.open[k]
        self.open.update(found)
        return list(found.values())

    def _missing_events(self, now: float, found: dict) -> None:
        by_dc: dict[str, dict[int, dict]] = {}
        for row in self.store.dc_health():
            by_dc.setdefault(row["dc"], {})[row["event_id"]] = row
        for dc, rows in by_dc.items():
            first = min(r["first_seen"] for r in rows.values())
            last = max(r["last_seen"] for r in rows.values())
            seen = {e: Seen(r["count"], r["last_seen"]) for e, r in rows.items()}
            for st in requirement_states(seen, first, last, now, self.cfg.missing_scale):
                req = st.requirement
                if st.status != "missing" or not req.health:
                    continue
                hours = (now - st.since) / 3600
                if req.health == "stopped":
                    what = (f"No {req.what} from {dc} for {hours:.1f} h, although it sent {st.count} before and "
                            "keeps sending other events")
                else:
                    what = f"No {req.what} from {dc} since it was first seen {hours:.1f} h ago"
                needs = "" if req.always else f" (setting: {req.subcategory_name})"
                desc = (f"{what}. Likely cause: {req.likely_cause} on {dc}{needs}. Change: {req.fix()}. "
                        + "".join(f"Also: {x}. " for x in req.extra if req.health == "stopped")
                        + f"Until then these detections are blind for {dc}: {', '.join(req.blind)}.")
                a = health_alert(req.key, dc, st.since + st.allowed, f"{req.likely_cause} on {dc}", desc,
                                 fix=req.fix(), blind=list(req.blind), subcategory=req.subcategory_name)
                a.dcs = [dc]
                found[(req.key, dc)] = a

    def _intake(self, now: float, found: dict) -> None:
        counters = self.ingest()
        proc = self.store.counters().get("processor", {})
        hour = now - now % 3600
        failed, parsed = proc.get("failed_by_peer", {}), proc.get("parsed_by_peer", {})
        for peer, bad in failed.items():
            total = bad + parsed.get(peer, 0)
            if total >= self.cfg.unparseable_min and bad / total >= self.cfg.unparseable_ratio:
                sample = proc.get("samples", {}).get(peer, "")
                found[("peer-unparseable", peer)] = health_alert(
                    "peer-unparseable", peer, now - now % 86400, f"Peer {peer} sends mostly unparseable messages",
                    f"{bad} of {total} messages from {peer} fit no supported layout (RSA Security Analytics, "
                    f"ArcSight CEF, QRadar, Splunk, Snare, Winlogbeat/NXLog JSON). Check the SIEM's forwarding "
                    f"format for this destination. Sample: {sample[:300]}", count=bad, peer=peer)
        depth, bound = counters.get("spool_depth", 0), self.spool_bound
        if bound and depth >= self.cfg.spool_near_full * bound:
            found[("spool-near-full", "spool")] = health_alert(
                "spool-near-full", "spool", hour, "Some Windows events are not being analyzed yet",
                f"The spool holds {depth} unprocessed messages ({100 * depth / bound:.0f}% of its bound {bound}): "
                "events arrive faster than they are analyzed. Forward only the required event ids (4776, 8004, "
                "4728, 4729, 4732, 4733, 4756, 4757, 7045), or send part of the DCs to another dcsentry node.",
                count=depth)
        udp = counters.get("udp_dropped", 0)
        if self._grew_recently("udp", udp, now):
            found[("udp-drops", "udp")] = health_alert(
                "udp-drops", "udp", hour, "Syslog messages dropped on UDP",
                f"{udp} UDP syslog messages were dropped since start (the spool was full or the receive queue "
                "overflowed). UDP cannot push back: use TCP or TLS, or forward only the required event ids.",
                count=udp)
        for sink, n in counters.get("sink_failed", {}).items():
            if self._grew_recently(f"sink:{sink}", n, now):
                found[("sink-unreachable", sink)] = health_alert(
                    "sink-unreachable", sink, hour, f"Failure sending alerts to {sink}",
                    f"Sending alerts to {sink} failed {n} times; alerts wait in the outbox and are sent when it is "
                    "back. Check the SIEM's address, port, transport and certificates.", count=n, sink=sink)

    def _forwarding(self, now: float, found: dict) -> None:
        """A WEF client silent for longer than its heartbeats allow (or that ended its subscription)."""
        if self.wef is None:
            return
        cfg, clients = self.wef
        default = cfg.silent_after or 2 * cfg.heartbeat_interval + cfg.max_time
        for row in silent_clients(clients(), now, default):
            allowed = row.get("allowed", default)  # an ingest node's own setting (distributed mode)
            name = (row["machine_id"] or row["client"]).split("@", 1)[0].split(".", 1)[0].removesuffix("$").upper()
            where = ", ".join(f"{ch} record {rid}" for ch, rid in bookmark_positions(row["bookmark"]).items())
            if row["state"] == "ended":
                why = f"it ended its subscription {row['subscription']!r} ({row['detail'] or 'no reason given'})"
            else:
                why = f"nothing (events or heartbeats) came for {(now - last_delivery(row)) / 60:.0f} min, " \
                      f"longer than its heartbeat interval allows ({allowed:.0f} s)"
            a = health_alert(
                "wef-stopped", row["client"], last_delivery(row) + allowed, f"{name} stopped forwarding",
                f"{name} ({row['client']}, last from {row['address']}) stopped forwarding Windows events: {why}. "
                f"Check on {name} that the WinRM service runs, the Microsoft-Windows-Forwarding/Operational log, "
                f"and that it still reaches this collector. Its bookmark: {where or 'none yet'}; it resumes from "
                "there without losing events the DC still holds.", client=row["client"],
                subscription=row["subscription"])
            a.dcs = [name]
            found[("wef-stopped", row["client"])] = a
