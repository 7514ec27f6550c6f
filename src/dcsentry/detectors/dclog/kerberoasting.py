"""Kerberoasting / suspicious Kerberos SPN request (reference/dc-log-alerts.md B2; MDI 2410, XDR
`xdr_PossibleKerberoastingAttack` / `xdr_SuspiciousAuthAttempt`).

A candidate is a successful 4769 with a weak ticket (RC4 0x17, RC4-EXP 0x18, DES 0x1/0x3) for a
*user* service: ServiceName not `krbtgt`, not a computer (`$`), asked by a user (TargetUserName
without `$@`). The ticket is encrypted with the service account's password hash: a roaster asks
for RC4 because it cracks fastest. BloodHound's session collection asks many computer SPNs with
AES: never a candidate.

- **High**: >= `roast_services` distinct candidate services from one source address within
  `roast_window`, or any candidate for a sensitive or honeytoken service account.
- **Medium** (one ticket is enough): RC4 for a service whose account was never seen to take RC4
  tickets (no learned RC4 use: once learning is over, every legacy RC4 service has shown itself);
  a (source, service) pair never seen before, once the `spn_learning` period is over; or a
  forced-RC4 request by the v2 fields (the service has AES keys, the client offered no AES).
  Alerts raised during the learning period say so. A pair told once as Medium, or as anything
  during the learning period, is learned (the next ticket of a legacy client is quiet); pairs of
  a High incident after the learning period never are.
- Refused RC4-only requests (4769 `0xE`, KDC_ERR_ETYPE_NOSUPP, once RC4 is off for a service or
  the KDCs) count towards the High threshold like issued tickets: a roaster asking RC4 for many
  AES-only services is still roasting; one refusal alone is a legacy client and stays quiet.
- Quiet: (source, service) pairs learned without an alert (legacy clients of RC4-only service
  accounts), sources in `allowed_sources`, failures.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from datetime import datetime
from typing import NamedTuple

from ...activities import Activity
from ...activities.context import DomainContext
from ...activities.dclog.kerberos import WEAK_ETYPES, TicketRequest, etype_name, lists_aes
from ...alerts import Alert, Evidence
from ...config import Detection
from ..base import Incidents, Lru, add_unique, last_time, plural, trim
from ..baseline import Baseline
from .kerberos_base import KerberosDetector, note_ticket

TYPE = "kerberoasting"
ETYPE_NOSUPP = 0xE  # KDC_ERR_ETYPE_NOSUPP


def user_service(act: TicketRequest) -> bool:
    """A 4769 for a service run by a user account, asked by a user (Sigma's filters)."""
    s = act.service_key
    return bool(s) and s != "krbtgt" and not s.startswith("krbtgt/") and not s.endswith("$") and not act.machine


class Request(NamedTuple):
    """A weak or refused service-ticket request in a source's window."""

    t: float  # epoch
    service: str
    account: str
    label: str  # the encryption type's name, or "refused: ..."
    evidence: list[Evidence]
    time: datetime


class KerberoastingDetector(KerberosDetector):
    accepts = (TicketRequest,)  # the engine hands it nothing else

    def __init__(self, cfg: Detection, incidents: Incidents, baseline: Baseline, ctx: DomainContext) -> None:
        super().__init__(cfg, incidents, baseline, ctx)
        # (source, service) -> last time seen, no alert
        self.pairs: Lru[tuple[str, str], float] = baseline.table("kerberoasting.pairs")
        # service -> first RC4 ticket seen, no alert
        self.services: Lru[str, float] = baseline.table("kerberoasting.rc4-services")
        self.windows: Lru[str, deque[Request]] = Lru()  # source -> its requests in the window

    def on_activity(self, act: Activity) -> Iterable[Alert]:
        if not isinstance(act, TicketRequest) or act.tgt:
            return ()
        refused = act.status == ETYPE_NOSUPP  # an RC4-only request for an AES-only service (or KDC)
        if not (refused or act.status == 0 and act.etype in WEAK_ETYPES) or not user_service(act):
            return ()
        source = act.source_ip or act.account_key
        if source.upper() in self.allowed:
            return ()
        t = act.time.timestamp()
        svc = act.service_key
        pair = (source, svc)
        learning = self.baseline.clock.learning(TYPE, act.time, self.cfg.spn_learning)
        win = self.windows.touch(source, deque)
        trim(win, t, self.cfg.roast_window)
        label = "refused: etype not supported" if refused else etype_name(act.etype)
        if pair not in self.pairs:
            win.append(Request(t, act.service, act.account, label, act.evidence, act.time))
        self.windows.drop_idle(t - self.cfg.roast_window, last_time)  # every address asks for tickets
        distinct = {e.service.lower() for e in win}
        honey = svc in self.honey or (act.service_sid and act.service_sid in self.honey)
        sensitive = honey or self.ctx.inventory.is_sensitive(act.service, act.service_sid)
        forced = (lists_aes(act.v2.get("ServiceAvailableKeys")) and "ClientAdvertizedEncryptionTypes" in act.v2
                  and not lists_aes(act.v2["ClientAdvertizedEncryptionTypes"]))
        open_ = self.incidents.current(TYPE, source, act.time)
        reason = ""
        if len(distinct) >= self.cfg.roast_services:
            reason = "many"
        elif refused:
            reason = ""  # one refused request is a legacy client meeting an AES-only service
        elif sensitive:
            reason = "honeytoken" if honey else "sensitive"
        elif forced:
            reason = "forced"
        elif pair not in self.pairs and svc not in self.services:
            reason = "new-service"
        elif pair not in self.pairs and not learning:
            reason = "new-pair"
        if not reason and open_ is None:
            if not refused:
                self._learn(pair, t)
            return ()
        # a new High alert carries every request of the window it counts (quiet refusals included)
        earlier = [e for e in win if e.evidence is not act.evidence] if open_ is None and reason == "many" else []
        evidence = [ev for e in earlier for ev in e.evidence] + act.evidence
        a = self.incidents.raise_or_grow(TYPE, source, act.time, evidence, start=earlier[0].time if earlier else None,
                                         learning=learning and open_ is None)
        a.count += 1 + len(earlier)
        note_ticket(a, act, source)
        d = a.details
        services: dict = d.setdefault("services", {})
        for service, account, etype in [*((e.service, e.account, e.label) for e in earlier),
                                        (act.service, act.account, label)]:
            if service not in services and len(services) < 100:
                services[service] = etype
            add_unique(d.setdefault("requesters", []), account)
            if etype.startswith("refused"):
                d["refused"] = d.get("refused", 0) + 1
        add_unique(d.setdefault("reasons", []), reason)
        if sensitive:
            add_unique(d.setdefault("sensitive_services", []), act.service)
        if act.v2:
            d["v2"] = act.v2
        d["max_services_in_window"] = max(len(distinct), d.get("max_services_in_window", 0))
        high = d["max_services_in_window"] >= self.cfg.roast_services or bool(d.get("sensitive_services"))
        a.severity = "high" if high else "medium"
        d["kind"] = "Possible Kerberoasting" if high else "Suspicious Kerberos SPN request"
        if (not high or learning) and not refused:  # told once: a legacy client's next ticket is quiet
            self._learn(pair, t)
        elif high and not learning:  # a roasting source never becomes a legacy client, not even of earlier pairs
            for s in distinct:
                self.pairs.pop((source, s), None)
        a.description = self.describe(a)
        return (a,)

    def _learn(self, pair: tuple[str, str], t: float) -> None:
        self.pairs.put(pair, t)
        self.services.touch(pair[1], lambda: t)

    def describe(self, a: Alert) -> str:
        d = a.details
        services = d.get("services", {})
        listed = ", ".join(f"{s} ({e})" for s, e in list(services.items())[:10])
        more = f" and {len(services) - 10} more" if len(services) > 10 else ""
        who = ", ".join(d.get("requesters", [])[:5]) or "an account"
        text = (f"{d.get('kind', 'Kerberoasting')}: {who} from {d.get('source', a.key)} requested "
                f"{plural(a.count, 'weakly encrypted service ticket')} for "
                f"{plural(len(services), 'user service account')} "
                f"({listed}{more}) via {', '.join(a.dcs)}"
                + (f", {d['refused']} of them refused as RC4 is off for the service" if d.get("refused") else "")
                + ". A ticket for a user service is encrypted with that account's password hash; RC4/DES tickets "
                "can be cracked offline.")
        reasons = d.get("reasons", [])
        if d.get("sensitive_services"):
            text += f" Sensitive or honeytoken service accounts: {', '.join(d['sensitive_services'])}."
        if "forced" in reasons:
            text += " The service account has AES keys but the client offered no AES: RC4 was forced."
        if "new-service" in reasons:
            text += " The service account had no learned RC4 use."
        elif "new-pair" in reasons:
            text += " This source had not asked these services for tickets before."
        if a.learning:
            text += " (Raised during the learning period.)"
        return text + (" Check the process on the source host that asked for the tickets; reset the passwords of the "
                       "service accounts to long random ones (or move them to gMSAs), set them to AES only "
                       "(msDS-SupportedEncryptionTypes) and disable RC4 on the KDCs where possible.")
