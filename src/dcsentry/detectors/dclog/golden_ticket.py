"""Golden ticket (reference/dc-log-alerts.md B4; MDI 2027 "nonexistent account" and 2009
"encryption downgrade", T1558.001).

A golden ticket is a TGT forged with the krbtgt key: the KDC never issued it, so it never logged
the 4768, and whatever the forger wrote into it comes back in the 4769s it is used for. Three
event-only tells:

1. **Nonexistent account** (High): a successful 4769 (or a Kerberos 4624) for an account of this
   domain that does not exist per the inventory (an imported inventory lacks it, or it was
   deleted). The KDC accepts a forged TGT without looking the client up. Not when the KDC itself
   issued that name a TGT (4768) from that address within `tgt_window`: the ticket is real and
   the name went away since (noPac renames the account back between TGT and service ticket:
   its own alert; a deleted account's TGT lives on until it expires).
2. **Forged realm** (High): the client realm of a 4769 (`TargetUserName` `user@REALM`,
   `TargetDomainName`) is this DC's own domain but not written in upper case. The KDC writes the
   realm of every ticket it issues canonically in upper case, whatever the client typed: a
   Rubeus AS-REQ for `theshire.local` or an impacket one for `OFFSEC` still give 4769s for
   `...@THESHIRE.LOCAL` / `...@OFFSEC.LAN` (obs. in the corpus), and every KDC-issued 4769 of
   the corpus carries the upper-case realm. A forged TGT carries the realm as the attacker typed
   it (mimikatz `kerberos::golden /domain:offsec.lan`: obs. `gold-non-existing-user@offsec.lan`,
   10 tickets, no 4768). A trusted realm is not judged (it may spell itself as it likes). Whether
   the account got a TGT (4768) from that address within `tgt_window` is noted as corroboration.
3. **Encryption downgrade** (Medium, MDI 2009): after `downgrade_learning`, an RC4 service ticket
   for a user account (computers are not profiled) whose service tickets were AES-only (at least
   `downgrade_min_aes`), to a service that only ever gave AES tickets, from an address with no
   4768 for that account within `tgt_window` on any DC. Needs every DC's 4768/4769 (the TGT may come from another DC).
"""

from __future__ import annotations

from collections.abc import Iterable

import msgspec

from ...activities import Activity, Logon
from ...activities.context import DomainContext
from ...activities.dclog.kerberos import AES_ETYPES, WEAK_ETYPES, TicketRequest, etype_name
from ...alerts import Alert
from ...config import Detection
from ..base import Incidents, Lru, add_unique, plural
from ..baseline import Baseline
from .kerberos_base import KerberosDetector

TYPE = "golden-ticket"
_TELLS = {
    "nonexistent": "the account does not exist in the domain",
    "realm": "the ticket's realm is not written the way the KDC writes it (forged TGT)",
    "downgrade": "an RC4 ticket for an account and a service that only ever used AES, without a TGT request",
}


class TicketProfile(msgspec.Struct, array_like=True):
    """The service tickets of an account, or for a service, so far (saved as `[first, aes, weak]`)."""

    first: float  # epoch of the first ticket profiled
    aes: int = 0  # AES tickets
    weak: int = 0  # RC4/DES tickets


class GoldenTicketDetector(KerberosDetector):
    accepts = (TicketRequest, Logon)  # the engine hands it nothing else

    def __init__(self, cfg: Detection, incidents: Incidents, baseline: Baseline, ctx: DomainContext) -> None:
        super().__init__(cfg, incidents, baseline, ctx)
        self.accounts = baseline.rows("golden-ticket.accounts", TicketProfile)  # account -> its tickets
        self.services = baseline.rows("golden-ticket.services", TicketProfile)  # service -> its tickets
        self.tgts: Lru[tuple[str, str], float] = Lru()  # (account, address) -> last TGT issued (4768 success), any DC
        self._domains: tuple[int, set[str]] = (-1, set())

    def on_activity(self, act: Activity) -> Iterable[Alert]:
        if isinstance(act, TicketRequest):
            if act.status != 0:
                return ()
            if act.tgt:
                t = act.time.timestamp()
                self.tgts.put((act.account_key, act.source_ip), t)
                self.tgts.drop_idle(t - self.cfg.tgt_window, float)  # read only within tgt_window
                return ()
            return self._ticket(act)
        if isinstance(act, Logon):
            return self._logon(act)
        return ()

    def _had_tgt(self, act: TicketRequest) -> bool:
        seen = self.tgts.get((act.account_key, act.source_ip))
        return seen is not None and act.time.timestamp() - seen <= self.cfg.tgt_window

    def _ticket(self, act: TicketRequest) -> Iterable[Alert]:
        own = act.canonical_realm  # None: no realm, or a trusted one
        learning = self.baseline.clock.learning(TYPE, act.time, self.cfg.downgrade_learning)
        tell = ""
        if own is False and not act.transmitted:  # (an S4U2Proxy ticket names the impersonated client)
            tell = "realm"
        elif own is not None and (inv := self.ctx.inventory).imported | bool(inv.deleted) \
                and inv.exists(act.account) is False and not self._had_tgt(act):
            tell = "nonexistent"
        elif act.machine:
            pass  # computers' tickets (most of a DC's 4769s) are not profiled: golden tickets are forged for users
        elif act.etype in WEAK_ETYPES:
            tell = self._downgrade(act, learning)
        else:
            self._learn(act)
        if not tell or act.source_ip.upper() in self.allowed:
            return ()  # only tickets that carry a tell grow the alert: the real account's own stay out
        a = self.incidents.raise_or_grow(TYPE, act.account_key, act.time, act.evidence)
        a.count += 1
        a.protocol = "Kerberos"
        add_unique(a.accounts, f"{act.account}@{act.realm}" if act.realm else act.account)
        add_unique(a.hosts, act.source_ip)
        add_unique(a.dcs, act.host)
        d = a.details
        d["source"] = ", ".join(a.hosts)
        if tell:
            add_unique(d.setdefault("tells", []), tell)
        services: dict = d.setdefault("services", {})
        if act.service not in services and len(services) < 100:
            services[act.service] = etype_name(act.etype)
        d["no_tgt"] = d.get("no_tgt", True) and not self._had_tgt(act)  # none of its tickets had a TGT
        tells = d.get("tells", [])
        a.severity = "high" if ("realm" in tells or "nonexistent" in tells) else "medium"
        a.description = self.describe(a)
        return (a,)

    def _downgrade(self, act: TicketRequest, learning: bool) -> str:
        """An RC4/DES ticket: a downgrade when both profiles are AES-only and learning is over."""
        t = act.time.timestamp()
        acc = self.accounts.get(act.account_key)
        svc = self.services.get(act.service_key)
        if (not learning and acc is not None and svc is not None and not acc.weak and not svc.weak
                and acc.aes >= self.cfg.downgrade_min_aes and svc.aes >= 1
                and t - acc.first >= self.cfg.downgrade_learning and not self._had_tgt(act)):
            return "downgrade"
        self._learn(act)
        return ""

    def _learn(self, act: TicketRequest) -> None:
        t = act.time.timestamp()
        aes = act.etype in AES_ETYPES
        if not aes and act.etype not in WEAK_ETYPES:
            return
        for table, key in ((self.accounts, act.account_key), (self.services, act.service_key)):
            row = table.touch(key, lambda: TicketProfile(t))
            if aes:
                row.aes += 1
            else:
                row.weak += 1

    def _domain_sids(self) -> set[str]:
        """Domain SIDs of the inventory's accounts (rebuilt when it grew)."""
        inv = self.ctx.inventory
        n, sids = self._domains
        if n != len(inv.by_sid):
            sids = {s.rsplit("-", 1)[0] for s in inv.by_sid if s.startswith("S-1-5-21-")}
            self._domains = (len(inv.by_sid), sids)
        return sids

    def _logon(self, lg: Logon) -> Iterable[Alert]:
        """A Kerberos logon by a nonexistent account of this domain, or one more use of a name
        already alerted as nonexistent (the logon tells where the forged ticket was used)."""
        if lg.package.lower() != "kerberos" or not lg.account or lg.account.endswith("$"):
            return ()
        key = lg.account_key
        open_ = self.incidents.current(TYPE, key, lg.time)
        if open_ is not None and "nonexistent" not in open_.details.get("tells", []):
            open_ = None  # a real account's own logons are not the forged ticket's
        missing = (lg.account_sid.startswith("S-1-5-21-")
                   and self.ctx.inventory.exists(lg.account, lg.account_sid) is False
                   and lg.account_sid.rsplit("-", 1)[0] in self._domain_sids())
        if open_ is None and not missing:
            return ()
        a = self.incidents.raise_or_grow(TYPE, key, lg.time, lg.evidence)
        a.count += 1
        a.protocol = "Kerberos"
        add_unique(a.accounts, lg.account)
        add_unique(a.hosts, lg.source_ip or lg.source_host)
        d = a.details
        add_unique(d.setdefault("logons", []), f"{lg.time:%Y-%m-%d %H:%M:%S} logon on {lg.host} from {lg.source or '?'}"
                   f" as {lg.account} ({lg.account_sid})", cap=20)
        if missing:
            add_unique(d.setdefault("tells", []), "nonexistent")
            a.severity = "high"
        a.description = self.describe(a)
        return (a,)

    def describe(self, a: Alert) -> str:
        d = a.details
        tells = d.get("tells", [])
        services = d.get("services", {})
        listed = ", ".join(f"{s} ({e})" for s, e in list(services.items())[:10])
        text = (f"Suspected golden ticket use by {', '.join(a.accounts[:3])} from "
                f"{d.get('source') or 'an unknown source'}: "
                f"{plural(a.count, 'Kerberos event')} on {', '.join(a.dcs) or 'the domain'}")
        if services:
            text += f", service tickets for {listed}"
        why = "; ".join(_TELLS[x] for x in tells if x in _TELLS)
        text += f". {why[:1].upper()}{why[1:]}." if why else "."
        if d.get("no_tgt"):
            text += " No TGT request (4768) for this account from that address was seen before the service tickets."
        if d.get("logons"):
            text += " Logons: " + "; ".join(d["logons"][:5]) + "."
        return text + (" Isolate the source host and find how the krbtgt key was obtained (DCSync, NTDS.dit copy); "
                       "reset the krbtgt password twice (with replication in between) to invalidate forged tickets, "
                       "and review what the account did with the tickets.")
