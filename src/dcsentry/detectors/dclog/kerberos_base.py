"""What the four Kerberos ticket detectors share: settings, the sources never alerted on, the
honeytoken names/SIDs (a ticket for or by a decoy is always high), and run-time updates of both."""

from __future__ import annotations

from ...activities.context import DomainContext, account_name
from ...activities.dclog.kerberos import TicketRequest
from ...alerts import Alert
from ...config import Detection
from ..base import Incidents, add_unique
from ..baseline import Baseline


class KerberosDetector:
    def __init__(self, cfg: Detection, incidents: Incidents, baseline: Baseline, ctx: DomainContext) -> None:
        self.incidents = incidents
        self.baseline = baseline
        self.ctx = ctx
        self.configure(cfg)

    def configure(self, cfg: Detection) -> None:
        """The file's settings plus the run-time lists (excluded sources, honeytokens) as they change."""
        self.cfg = cfg.kerberos
        self.allowed = {s.upper() for s in (*cfg.exclude_sources, *cfg.kerberos.allowed_sources)}
        self.honey = {h.upper() if h.upper().startswith("S-1-") else account_name(h) for h in cfg.honeytokens}


def note_ticket(a: Alert, act: TicketRequest, source: str) -> None:
    """What every ticket alert records of a request: Kerberos, the client address, account, DC."""
    a.protocol = "Kerberos"
    add_unique(a.hosts, act.source_ip)
    add_unique(a.accounts, act.account)
    add_unique(a.dcs, act.host)
    a.details["source"] = source
