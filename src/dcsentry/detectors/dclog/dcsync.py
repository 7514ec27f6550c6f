"""DCSync (reference/dc-log-alerts.md B1, MDI 2006): an account that is not a domain controller asks a
DC for replication (4662 Control Access with DS-Replication-Get-Changes[-All|-In-Filtered-Set] on the
domain root). A run is hundreds of 4662s in a second: one alert per actor and incident.

Who may replicate: domain controllers (inventory), allow-listed accounts (Entra Connect `MSOL_*`,
backup products; optionally pinned to their addresses), and accounts learned while the detector
learns (Elastic's new-subject rule; their alerts say `learning`). A computer account is a DC's
replication partner unless the inventory knows it is not a DC (imported export, or created in the
stream as a workstation): hunting one file knows few DCs, and DC-to-DC replication must stay quiet.
A DC's own account replicating from an address no DC's account ever used (Zerologon, then DCSync as
the DC) alerts once that DC's addresses are known (its TGT requests, 4768); never learned.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from ...activities import Activity, AuthActivity
from ...activities.context import DomainContext, account_name, short_host
from ...activities.dclog.access import DirectoryAccess
from ...activities.dclog.accounts import AccountChange
from ...activities.dclog.fields import is_machine
from ...alerts import Alert
from ...config import Detection
from ..base import Incidents, Lru, add_unique, plural
from ..baseline import Baseline

TYPE = "dcsync"

CONTROL_ACCESS = 0x100
DOMAIN_DNS = frozenset({"19195a5b-6da0-11d0-afd3-00c04fd930c9", "domaindns"})
GET_CHANGES = "1131f6aa-9c07-11d1-f79f-00c04fc2dcd2"
GET_CHANGES_ALL = "1131f6ad-9c07-11d1-f79f-00c04fc2dcd2"
GET_CHANGES_FILTERED = "89e95b76-444d-4c62-991a-0facbeda640c"
RIGHT_NAMES = {GET_CHANGES: "DS-Replication-Get-Changes", GET_CHANGES_ALL: "DS-Replication-Get-Changes-All",
               GET_CHANGES_FILTERED: "DS-Replication-Get-Changes-In-Filtered-Set"}
SECRET_RIGHTS = frozenset({GET_CHANGES_ALL, GET_CHANGES_FILTERED})  # what returns password hashes


def replication_rights(act: DirectoryAccess) -> list[str]:
    """The replication rights a 4662 exercised (GUIDs), from raw GUIDs or rendered right names."""
    found = [g for g in act.rights if g in RIGHT_NAMES]
    if found or not act.rights:
        return found
    words = " ".join(act.rights).lower()  # rendered: "Replicating Directory Changes All", split into words
    for m in _RENDERED.finditer(words):
        add_unique(found, _BY_SUFFIX[m.group(1) or ""])
    return found


_RENDERED = re.compile(r"replicating directory changes(?: (all|in filtered set))?")
_BY_SUFFIX = {"": GET_CHANGES, "all": GET_CHANGES_ALL, "in filtered set": GET_CHANGES_FILTERED}


def parse_allowed(entries: Iterable[str]) -> dict[str, set[str]]:
    """`name` or `name=addr,addr` -> {name or SID (lower case): addresses (empty: from anywhere)}."""
    out: dict[str, set[str]] = {}
    for e in entries:
        name, _, addrs = e.partition("=")
        key = name.strip().lower()
        key = key if key.startswith("s-1-") else account_name(key)
        if key:
            out.setdefault(key, set()).update(a.strip().lower() for a in addrs.split(",") if a.strip())
    return out


def allowed(rules: dict[str, set[str]], act: DirectoryAccess) -> bool:
    for key in (account_name(act.actor), act.actor_sid.lower()):
        addrs = rules.get(key) if key else None
        if addrs is not None:
            src = act.source.lower()
            return not addrs or (src in addrs) or (act.session is not None and act.session.source_host.lower() in addrs)
    return False


class DcSyncDetector:
    accepts = (DirectoryAccess, AuthActivity, AccountChange)  # the engine hands it nothing else

    def configure(self, cfg: Detection) -> None:
        """Accounts allowed to replicate: `[detection.dcsync] allowed` from the file plus the
        run-time `replication_allowed` list of the console/API (same `name[=addr,...]` form)."""
        self.allowed = parse_allowed([*cfg.dcsync.allowed, *cfg.replication_allowed])

    def __init__(self, cfg: Detection, incidents: Incidents, baseline: Baseline, ctx: DomainContext) -> None:
        self.cfg = cfg.dcsync
        self.configure(cfg)
        self.incidents = incidents
        self.baseline = baseline
        self.ctx = ctx
        # actor -> sources it replicated from while learning
        self.learned: Lru[str, list[str]] = baseline.table("dcsync_actors")
        # computer -> when created in the stream as a workstation
        self.non_dc: Lru[str, float] = baseline.table("computers_not_dc", cap=200_000)
        # DC host -> addresses its account used
        self.dc_addresses: Lru[str, list[str]] = baseline.table("dc_addresses", cap=10_000)
        self._dc_ips: set[str] = {ip for ips in self.dc_addresses.values() for ip in ips}

    def on_activity(self, act: Activity) -> Iterable[Alert]:
        if type(act) is not DirectoryAccess:
            if type(act) is AuthActivity:
                self._note_address(act)
            elif getattr(act, "kind", "") == "account":
                self._note_computer(act)
            return ()
        if not act.access_mask & CONTROL_ACCESS or act.object_type.lower() not in DOMAIN_DNS:
            return ()
        rights = replication_rights(act)
        if not rights:
            return ()
        elsewhere = False
        if self._replica(act):
            elsewhere = self._from_elsewhere(act)
            if not elsewhere:
                return ()
        if self.allowed and allowed(self.allowed, act):
            return ()
        actor = account_name(act.actor) or act.actor_sid.lower()
        source = act.source
        learning = not elsewhere and self.baseline.clock.learning("dcsync", act.time, self.cfg.learning_period)
        known = None if elsewhere else self.learned.get(actor)
        if learning:
            sources = self.learned.touch(actor, list)
            add_unique(sources, source or "-", cap=20)
        elif known is not None and (source or "-") in known:
            return ()  # learned replicating account, from a learned source
        a = self.incidents.raise_or_grow(TYPE, actor, act.time, act.evidence, learning=learning)
        a.count += 1
        add_unique(a.accounts, f"{act.actor_domain}\\{act.actor}" if act.actor_domain and act.actor_domain != "-"
                   else act.actor)
        add_unique(a.hosts, source)
        add_unique(a.dcs, act.host)
        d = a.details
        names = d.setdefault("rights", [])
        for g in rights:
            add_unique(names, RIGHT_NAMES[g])
        secrets = any(g in SECRET_RIGHTS for g in rights) or d.get("secrets", False)
        d["secrets"] = secrets
        if elsewhere:
            d["dc_account_elsewhere"] = True
        a.severity = "high" if secrets or d.get("dc_account_elsewhere") else "medium"
        if act.actor_sid:
            d["actor_sid"] = act.actor_sid
        d.setdefault("logon_ids", [])
        add_unique(d["logon_ids"], act.logon_id, cap=20)
        if act.session is not None:
            s = act.session
            if "session" not in d and len(a.evidence) < self.incidents.max_evidence:
                a.evidence.extend(s.evidence[:1])  # the 4624 that says where the actor came from
            d["session"] = {"source_ip": s.source_ip, "source_host": s.source_host, "package": s.package,
                            "logon_type": s.logon_type, "logon_time": s.time.isoformat()}
            a.protocol = s.package or a.protocol
        if known is not None and not learning:
            d["learned_sources"] = list(known)
        if a.revision == 0:
            a.description = self.describe(a)
        return (a,)

    def _replica(self, act: DirectoryAccess) -> bool:
        """A domain controller replicating: a known DC, the DC's own SYSTEM, or a computer account not
        known to be anything else (see the module docstring)."""
        if act.actor_sid in ("S-1-5-18",) or act.actor_domain.upper() in ("WINDOW MANAGER", "FONT DRIVER HOST"):
            return True
        inv = self.ctx.inventory
        if inv.is_dc(act.actor):
            return True
        if not is_machine(act.actor):
            acc = inv.get(act.actor, act.actor_sid)
            return bool(acc and acc.dc)
        acc = inv.get(act.actor, act.actor_sid)
        if acc is not None and acc.source == "imported" or inv.imported:
            return False  # an authoritative export that does not call it a DC
        return account_name(act.actor) not in self.non_dc

    def _note_address(self, act: AuthActivity) -> None:
        """Where DCs' own accounts ask for TGTs (4768): their addresses. Not their network logons: the
        logon of a stolen DC account is one of those."""
        if act.protocol != "Kerberos" or act.failed or not act.source_ip or act.source_ip == "localhost":
            return
        if not is_machine(act.account) or not self.ctx.inventory.is_dc(act.account):
            return
        ips = self.dc_addresses.touch(short_host(act.account), list)
        if act.source_ip not in ips:
            add_unique(ips, act.source_ip, cap=8)
            self._dc_ips.add(act.source_ip)

    def _from_elsewhere(self, act: DirectoryAccess) -> bool:
        """A DC's account replicating from an address no DC was seen at (its hash used elsewhere,
        e.g. after Zerologon). Only when this DC's own addresses are known: else nothing tells."""
        ip = act.session.source_ip if act.session is not None else ""
        if not ip or ip == "localhost" or short_host(act.actor) not in self.dc_addresses:
            return False
        return ip not in self._dc_ips

    def _note_computer(self, act: Activity) -> None:
        """A computer account created (4741) without SERVER_TRUST, or demoted, is not a DC."""
        if not getattr(act, "machine", False):
            return
        name = account_name(getattr(act, "target", ""))
        if not name:
            return
        if 8 in getattr(act, "uac_set", ()):  # SERVER_TRUST: a DC (promotion); the inventory says so too
            self.non_dc.pop(name, None)
        elif getattr(act, "action", "") == "created" or 8 in getattr(act, "uac_cleared", ()):
            self.non_dc[name] = act.time.timestamp()

    def describe(self, a: Alert) -> str:
        d = a.details
        who = a.accounts[0] if a.accounts else a.key
        src = f" from {', '.join(a.hosts)}" if a.hosts else " (source unknown: its logon session was not in the stream)"
        dcs = ", ".join(a.dcs)
        rights = ", ".join(d.get("rights", []))
        what = ("password hashes of every account (krbtgt included) can be extracted" if d.get("secrets")
                else "only non-secret attributes were requested so far")
        session = d.get("session")
        via = (f" over a {session['package']} logon (type {session['logon_type']})"
               if session and session.get("package") else "")
        if d.get("dc_account_elsewhere"):
            return (f"The domain controller account {who}{src}{via} requested directory replication from {dcs} "
                    f"({rights}; {plural(a.count, 'request')}), but no domain controller was ever seen at that "
                    "address: the DC's account is used from another machine (its password or hash was taken, "
                    "e.g. after Zerologon). Isolate the source, reset the DC's machine password and the krbtgt "
                    "password twice.")
        learn = (" dcsentry is still learning which accounts replicate: confirm it, or allow-list the account "
                 "([detection.dcsync] allowed) if it is a sync or backup product." if a.learning else "")
        return (f"{who}{src}{via} requested directory replication from {dcs} ({rights}; "
                f"{plural(a.count, 'request')}): {what}. Only domain controllers replicate. If {who} is not an "
                f"Entra Connect or backup account, treat it as compromised: isolate the source, reset the account, "
                f"and reset the krbtgt password twice.{learn}")
