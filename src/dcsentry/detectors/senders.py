"""Which syslog senders may speak for which computers (`[serve] senders`, docs/security.md).

Over syslog anybody who reaches the port can send an event claiming any computer ("Computer =
DC99"): it would be stored, detected on and show DC99 in DC health. With bindings configured, an
event is accepted only from a sender bound to its computer; others are counted per sender, kept out
of detection, the store and DC health, and raise one `sender-mismatch` alert per sender (growing with
each computer it claimed). WEF has its own check (detectors/wef_sender.py: the client certificate or
Kerberos principal must be the computer).

An entry is ``SENDER = COMPUTERS``: SENDER an address (``10.0.0.5``), a network (``10.0.1.0/24``) or
the verified TLS client-certificate name of a TLS/RELP-TLS sender (``cn:wec01.contoso.com``);
COMPUTERS a comma list of computer names (short or FQDN, case-insensitive) or ``*`` (a relay, a SIEM
forwarding for everyone). No entries: no binding (the default; the risk is documented).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from datetime import datetime

from ..alerts import ALERT_TYPES, Alert, Evidence
from ..model import WindowsEvent

TYPE = "sender-mismatch"
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True, slots=True)
class Binding:
    network: Network | None
    cert_name: str | None
    computers: frozenset[str] | None  # None: any computer

    def sender_matches(self, address: str, cert_name: str | None) -> bool:
        if self.cert_name is not None:
            return cert_name is not None and cert_name.lower() == self.cert_name
        try:
            return self.network is not None and ipaddress.ip_address(address) in self.network
        except ValueError:
            return False

    def covers(self, computer: str) -> bool:
        if self.computers is None:
            return True
        c = computer.lower()
        return c in self.computers or c.split(".", 1)[0] in self.computers


def parse_bindings(entries: list[str]) -> list[Binding]:
    """Raises ValueError naming the bad entry."""
    out = []
    for entry in entries:
        sender, sep, computers = entry.partition("=")
        sender, computers = sender.strip(), computers.strip()
        if not sep or not sender or not computers:
            raise ValueError(f"senders: {entry!r} is not 'SENDER = COMPUTER[, COMPUTER...]'")
        names = [c.strip().lower() for c in computers.split(",") if c.strip()]
        allowed = None if names == ["*"] else frozenset(n for name in names for n in (name, name.split(".", 1)[0]))
        if sender.lower().startswith("cn:"):
            out.append(Binding(None, sender[3:].strip().lower(), allowed))
            continue
        try:
            out.append(Binding(ipaddress.ip_network(sender, strict=False), None, allowed))
        except ValueError:
            raise ValueError(f"senders: {sender!r} is not an address, a network or cn:NAME") from None
    return out


class SenderCheck:
    """One per process that decodes syslog (the one-node processor, an ingest node)."""

    def __init__(self, entries: list[str]) -> None:
        self.bindings = parse_bindings(entries)
        self.open: dict[str, Alert] = {}  # sender -> its alert (one per sender and process lifetime)

    @property
    def active(self) -> bool:
        return bool(self.bindings)

    def allows(self, address: str, cert_name: str | None, computer: str) -> bool:
        if not self.bindings:
            return True
        for b in self.bindings:
            if b.sender_matches(address, cert_name) and b.covers(computer):
                return True
        return False

    def mismatch(self, ev: WindowsEvent, address: str, cert_name: str | None) -> Alert:
        """The sender's alert, raised or grown by this event (returned for the batch to upsert)."""
        sender = f"{address} ({cert_name})" if cert_name else address
        a = self.open.get(sender)
        t: datetime = ev.time
        at = ALERT_TYPES[TYPE]
        if a is None:
            a = Alert(type=TYPE, key=sender, title=at.title, description="", severity=at.severity,
                      technique=at.technique, start=t, end=t, count=0)
            a.hosts.append(sender)
            self.open[sender] = a
        else:
            a.revision += 1
            a.end = max(a.end, t)
        a.count += 1
        if len(a.evidence) < 20:
            a.evidence.append(Evidence(ev.event_id, ev.computer, ev.record_id, ev.time,
                                       str(ev.origin) if ev.origin else None))
        claimed = a.details.setdefault("claimed_computers", [])
        if ev.computer not in claimed and len(claimed) < 100:
            claimed.append(ev.computer)
            a.dcs.append(ev.computer)
        a.description = (f"{sender} sent {a.count} event(s) claiming {', '.join(claimed[:10])}"
                         f"{' and more' if len(claimed) > 10 else ''}, which no [serve] senders entry lets it "
                         "speak for. The events were kept out of detection, the store and DC health. If the "
                         "sender is a legitimate relay, add it to `senders` in the configuration; otherwise "
                         "find who sends from that address: it may be forging a domain controller's events.")
        return a
