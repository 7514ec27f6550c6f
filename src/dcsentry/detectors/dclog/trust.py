"""New domain trust (4706, with 4865 for forest trusts; reference/dc-log-alerts.md A7, B14).

Every new trust is an alert (medium): a trust lets another domain's accounts in. High when the
other side can authenticate here (direction inbound or both) over an external or forest trust that
neither quarantines (SID filtering, 0x4) nor treats as external (0x40): SID history from that
domain then crosses the trust. 4865 entries (the forest's names and domains) grow the alert of
their forest; alone, they are a new name on an existing forest trust (medium). Trusts listed in
`planned_trusts` stay medium.
"""

from __future__ import annotations

from collections.abc import Iterable

from ...activities import Activity
from ...activities.dclog.system import TrustChange
from ...alerts import Alert
from ...config import Detection
from ..base import Incidents, add_unique
from .log_cleared import actor_of

TYPE = "trust-created"

TYPES = {1: "downlevel (Windows NT / non-AD domain)", 2: "Active Directory domain", 3: "MIT Kerberos realm"}
DIRECTIONS = {0: "disabled", 1: "inbound", 2: "outbound", 3: "two-way"}
ATTRIBUTES = {  # trustAttributes bits (MS-ADTS 6.1.6.7.9)
    0x1: "non-transitive", 0x2: "uplevel clients only", 0x4: "quarantined (SID filtering)",
    0x8: "forest trust", 0x10: "cross-organization (selective authentication)", 0x20: "within the forest",
    0x40: "treat as external", 0x80: "uses RC4 encryption", 0x200: "no TGT delegation",
    0x400: "PIM trust", 0x800: "TGT delegation enabled",
}
ENTRY_TYPES = {"0": "top-level name", "1": "excluded top-level name", "2": "domain"}


def attribute_words(bits: int | None) -> list[str]:
    if bits is None:
        return ["unknown"]
    words = [w for b, w in ATTRIBUTES.items() if bits & b]
    rest = bits & ~sum(ATTRIBUTES)
    if rest:
        words.append(f"0x{rest:x}")
    return words or ["none (external, transitive defaults)"]


def risky(act: TrustChange) -> bool:
    """Inbound/two-way, external or forest (not within the forest), neither quarantined nor treat-as-external."""
    bits = act.attributes or 0
    return act.direction in (1, 3) and not bits & 0x20 and not bits & (0x4 | 0x40)


class TrustDetector:
    accepts = (TrustChange,)  # the engine hands it nothing else

    def __init__(self, cfg: Detection, incidents: Incidents) -> None:
        self.planned = {p.lower() for p in cfg.tampering.planned_trusts}
        self.incidents = incidents

    def on_activity(self, act: Activity) -> Iterable[Alert]:
        if not isinstance(act, TrustChange):
            return ()
        key = (act.domain_name or act.domain_sid or "unknown").lower()
        a = self.incidents.raise_or_grow(TYPE, key, act.time, act.evidence)
        a.count += 1
        actor = actor_of(act.actor, act.actor_domain)
        add_unique(a.accounts, actor)
        add_unique(a.hosts, act.source if act.session is not None and act.session.remote else act.host)
        add_unique(a.dcs, act.host)
        d = a.details
        d["domain"] = act.domain_name
        if act.domain_sid:
            d["domain_sid"] = act.domain_sid
        if act.event_id == 4706:
            d["type"] = TYPES.get(act.tdo_type or -1, f"unknown ({act.tdo_type})")
            d["direction"] = DIRECTIONS.get(act.direction if act.direction is not None else -1,
                                            f"unknown ({act.direction})")
            d["attributes"] = attribute_words(act.attributes)
            d["attributes_raw"] = act.attributes
            if act.sid_filtering:
                d["sid_filtering"] = act.sid_filtering
            d["trust_event"] = True
            planned = act.domain_name.lower() in self.planned or act.domain_name.split(".")[0].lower() in self.planned
            a.severity = "high" if risky(act) and not planned else "medium"
            d["planned"] = planned
        else:
            entry = f"{ENTRY_TYPES.get(act.entry_type, act.entry_type or '?')} {act.entry_name or '-'}"
            if act.entry_sid:
                entry += f" {act.entry_sid}"
            add_unique(d.setdefault("forest_entries", []), entry, cap=100)
        a.description = self._text(a)
        return (a,)

    @staticmethod
    def _text(a: Alert) -> str:
        d = a.details
        who = ", ".join(a.accounts) or "an unknown account"
        dc = ", ".join(a.dcs)
        sid = f" ({d['domain_sid']})" if d.get("domain_sid") else ""
        if d.get("trust_event"):
            text = (f"{who} created a {d['direction']} trust on {dc} with {d['domain']}{sid}: "
                    f"{d['type']}, attributes {', '.join(d['attributes'])}.")
            if a.severity == "high":
                text += (f" Accounts of {d['domain']} can now authenticate here and the trust does not filter SIDs "
                         "(neither quarantined nor treat-as-external): SID history from that domain crosses it.")
        else:
            text = f"{who} added names of the trusted forest {d['domain']}{sid} on {dc}."
        entries = d.get("forest_entries")
        if entries:
            text += f" Forest trust information: {'; '.join(entries[:8])}."
        if d.get("planned"):
            text += " This trust is listed as planned."
        return text + (f" Confirm with {who} and the change records that this trust was planned; if not, remove it "
                       "(Active Directory Domains and Trusts or netdom trust /remove), and review what "
                       f"{d['domain']} accounts did since. Keep SID filtering (quarantine) on external trusts.")
