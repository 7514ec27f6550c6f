"""5156 outbound connections in a host's own log: the host's name and its address in one event.

A DC sees a workstation by address (4769 IpAddress) or by name (4776 Workstation), seldom both; the
workstation's own Windows Filtering Platform audit (5156, Direction %%14593 = outbound) says which
address it sends from. Only the host alias table (context.HostAliases) learns from it: no activity.
"""

from __future__ import annotations

from ...model import WindowsEvent
from .. import Activity
from ..readers import Stateless
from .fields import ip

OUTBOUND = "%%14593"


class HostAddressReader(Stateless):
    ids = frozenset({5156})

    def feed(self, ev: WindowsEvent) -> list[Activity]:
        d = ev.data
        if ev.channel == "Security" and d.get("Direction") == OUTBOUND:
            self.ctx.hosts.link(ev.computer, ip(d.get("SourceAddress")))
        return []
