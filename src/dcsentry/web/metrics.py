"""Prometheus exposition of the service's counters, read at scrape time.

The receiving side's counters are live in this process; the processor's (parsed, failed, events
per id, alerts per type) come from the store, where the processor saves them every few seconds.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from ..store.store import Store


class ServiceCollector:
    def __init__(self, ingest: Callable[[], dict], store: Store, web: Mapping[str, int] | None = None) -> None:
        self.ingest = ingest
        self.store = store
        self.web = web if web is not None else {}

    def collect(self) -> Iterator[Metric]:
        ing = self.ingest()
        stored = self.store.counters()
        proc = stored.get("processor", {})
        fwd = stored.get("forward", {})
        rx = CounterMetricFamily("dcsentry_received_messages", "Syslog messages received", labels=["transport"])
        rxb = CounterMetricFamily("dcsentry_received_bytes", "Syslog bytes received", labels=["transport"])
        for transport in ("udp", "tcp", "tls"):
            rx.add_metric([transport], ing.get("received", {}).get(transport, 0))
            rxb.add_metric([transport], ing.get("received_bytes", {}).get(transport, 0))
        yield rx
        yield rxb
        yield CounterMetricFamily("dcsentry_udp_dropped", "UDP messages dropped (spool full or queue overflow)",
                                  value=ing.get("udp_dropped", 0))
        yield CounterMetricFamily("dcsentry_oversized", "Messages over the size limit", value=ing.get("oversized", 0))
        yield CounterMetricFamily("dcsentry_framing_errors", "TCP/TLS framing errors",
                                  value=ing.get("framing_errors", 0))
        yield GaugeMetricFamily("dcsentry_spool_depth", "Messages accepted but not yet processed",
                                value=ing.get("spool_depth", 0))
        yield GaugeMetricFamily("dcsentry_connections_open", "Open TCP/TLS connections",
                                value=ing.get("connections_open", 0))
        yield CounterMetricFamily("dcsentry_connections_refused", "TCP/TLS connections refused (over a cap)",
                                  value=ing.get("connections_refused", 0))
        yield CounterMetricFamily("dcsentry_idle_timeouts", "TCP/TLS connections closed after sending nothing",
                                  value=ing.get("idle_timeouts", 0))
        yield CounterMetricFamily("dcsentry_tls_handshake_failures", "TLS handshakes that failed (syslog)",
                                  value=ing.get("tls_handshake_failures", 0))
        yield CounterMetricFamily("dcsentry_accept_errors",
                                  "Connections that could not be accepted (out of descriptors)",
                                  value=ing.get("accept_errors", 0))
        parsed = CounterMetricFamily("dcsentry_parsed_messages", "Messages parsed, by layout", labels=["layout"])
        for layout, n in sorted(proc.get("by_layout", {}).items()):
            parsed.add_metric([layout], n)
        yield parsed
        failed = CounterMetricFamily("dcsentry_parse_failed_messages", "Messages fitting no layout, by peer",
                                     labels=["peer"])
        for peer, n in sorted(proc.get("failed_by_peer", {}).items()):
            failed.add_metric([peer], n)
        yield failed
        yield CounterMetricFamily("dcsentry_sender_mismatch", "Events refused: their sender may not speak for "
                                  "their computer ([serve] senders)", value=proc.get("sender_mismatch", 0))
        yield CounterMetricFamily("dcsentry_duplicates_removed", "Re-sent copies removed before detection",
                                  value=proc.get("duplicates", 0))
        events = CounterMetricFamily("dcsentry_events", "Windows events processed, by event id", labels=["event_id"])
        for eid, n in sorted(proc.get("by_event", {}).items()):
            events.add_metric([eid], n)
        yield events
        alerts = CounterMetricFamily("dcsentry_alerts", "Alerts raised, by type", labels=["type"])
        for t, n in sorted(proc.get("by_alert", {}).items()):
            alerts.add_metric([t], n)
        yield alerts
        sent = CounterMetricFamily("dcsentry_sink_sent", "Alerts sent, by sink", labels=["sink"])
        fail = CounterMetricFamily("dcsentry_sink_failed", "Alert sends that failed, by sink", labels=["sink"])
        for sink, n in sorted(fwd.get("sink_sent", {}).items()):
            sent.add_metric([sink], n)
        for sink, n in sorted(fwd.get("sink_failed", {}).items()):
            fail.add_metric([sink], n)
        dead = CounterMetricFamily("dcsentry_sink_dead_letter", "Alerts a sink refused for good (a webhook's 4xx "
                                   "answer): not retried", labels=["sink"])
        for sink, n in sorted(fwd.get("sink_dead_letter", {}).items()):
            dead.add_metric([sink], n)
        yield sent
        yield fail
        yield dead
        relp = ing.get("relp")
        if relp is not None:  # RELP: messages acknowledged once durable, sessions, refusals
            fam = CounterMetricFamily("dcsentry_relp", "RELP listener counters, by kind", labels=["kind"])
            for kind, n in sorted(relp.items()):
                if kind != "connections_open":
                    fam.add_metric([kind], n)
            yield fam
        wef = ing.get("wef")
        if wef is not None:  # Windows Event Forwarding: requests, events, refusals by kind
            fam = CounterMetricFamily("dcsentry_wef", "Windows Event Forwarding counters, by kind", labels=["kind"])
            for kind, n in sorted(wef.items()):
                if kind != "connections_open":
                    fam.add_metric([kind], n)
            fam.add_metric(["duplicates_removed"], proc.get("wef_duplicates", 0))
            yield fam
            yield GaugeMetricFamily("dcsentry_wef_connections_open", "Open WEF connections",
                                    value=wef.get("connections_open", 0))
        refused = CounterMetricFamily("dcsentry_web_refused_requests", "Web requests refused, by reason",
                                      labels=["reason"])
        for reason in ("refused_401", "refused_403", "too_large", "bad_requests", "invalid_requests", "login_failed",
                       "auth_throttled", "connections_refused", "header_timeouts"):
            refused.add_metric([reason.removeprefix("refused_")], self.web.get(reason, 0))
        yield refused


def exposition(collector: ServiceCollector) -> bytes:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    return generate_latest(registry)
