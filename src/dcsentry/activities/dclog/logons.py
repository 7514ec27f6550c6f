"""4624 successful logons: a `Logon` activity, and the session it opens for later actions."""

from __future__ import annotations

from ...model import WindowsEvent
from .. import Activity, Logon, evidence_of
from ..context import account_name
from ..readers import Stateless
from .fields import host, ip, short, sid


class LogonReader(Stateless):
    ids = frozenset({4624})

    def feed(self, ev: WindowsEvent) -> list[Activity]:
        if ev.channel != "Security":
            return []
        d = ev.data
        try:
            logon_type: int | None = int(d.get("LogonType", ""))
        except ValueError:
            logon_type = None
        lg = Logon(ev.time, short(ev.computer), d.get("TargetLogonId", ""), d.get("TargetUserName", ""),
                   sid(d.get("TargetUserSid")), d.get("TargetDomainName", ""), logon_type,
                   d.get("AuthenticationPackageName", ""), d.get("LogonProcessName", "").strip(),
                   ip(d.get("IpAddress")), host(d.get("WorkstationName")), d.get("KeyLength", ""),
                   d.get("LmPackageName", ""), [evidence_of(ev)])
        if lg.logon_id:
            self.ctx.sessions.add(lg)
        if lg.source_host and lg.source_ip:  # both names of the client machine (HostAliases)
            self.ctx.hosts.link(lg.source_host, lg.source_ip)
        inv = self.ctx.inventory
        # A domain (or local) account that logged on exists, as far as learning can tell. Not when an
        # imported inventory says which accounts exist, nor for one deleted: a forged ticket's
        # logon must not make its name real (golden-ticket reads the inventory).
        if lg.account_sid.startswith("S-1-5-21-") and not inv.imported and account_name(lg.account) not in inv.deleted:
            inv.learn(lg.account, lg.account_sid)
        return [lg]
