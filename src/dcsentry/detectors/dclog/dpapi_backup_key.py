"""DPAPI domain backup key read (reference/dc-log-alerts.md B16, MDI 2020): a 4662 on the DC reading
the LSA secret `G$BCKUPKEY_*` (ObjectType SecretObject, AccessMask 0x2). With that key every user's
DPAPI master keys in the domain can be decrypted (Mimikatz `lsadump::backupkeys`, SharpDPAPI).
No threshold: one read is the attack. Domain controllers (and SYSTEM) are not alerted.
"""

from __future__ import annotations

from collections.abc import Iterable

from ...activities import Activity
from ...activities.context import DomainContext, account_name
from ...activities.dclog.access import DirectoryAccess
from ...activities.dclog.fields import is_machine
from ...alerts import Alert
from ...config import Detection
from ..base import Incidents, add_unique, plural
from ..baseline import Baseline

TYPE = "dpapi-backup-key"

READ_SECRET = 0x2  # SECRET_QUERY_VALUE


class DpapiBackupKeyDetector:
    accepts = (DirectoryAccess,)  # the engine hands it nothing else

    def __init__(self, cfg: Detection, incidents: Incidents, baseline: Baseline, ctx: DomainContext) -> None:
        self.allowed = {e.strip().lower() if e.strip().upper().startswith("S-1-") else account_name(e)
                        for e in cfg.dcsync.dpapi_allowed}
        self.allowed.discard("")
        self.incidents = incidents
        self.ctx = ctx

    def on_activity(self, act: Activity) -> Iterable[Alert]:
        if type(act) is not DirectoryAccess or not act.access_mask & READ_SECRET:
            return ()
        if act.object_type.lower() != "secretobject" or "bckupkey" not in act.object_name.lower():
            return ()
        actor = account_name(act.actor) or act.actor_sid.lower()
        if (act.actor_sid == "S-1-5-18" or actor in self.allowed or act.actor_sid.lower() in self.allowed
                or self.ctx.inventory.is_dc(act.actor) or (is_machine(act.actor) and self._dc_like(act))):
            return ()
        a = self.incidents.raise_or_grow(TYPE, actor, act.time, act.evidence)
        a.count += 1
        add_unique(a.accounts, f"{act.actor_domain}\\{act.actor}" if act.actor_domain and act.actor_domain != "-"
                   else act.actor)
        add_unique(a.hosts, act.source)
        add_unique(a.dcs, act.host)
        secrets = a.details.setdefault("secrets", [])
        add_unique(secrets, act.object_name.replace("\\\\", "\\"), cap=20)
        if act.session is not None:
            if "session" not in a.details and len(a.evidence) < self.incidents.max_evidence:
                a.evidence.extend(act.session.evidence[:1])  # the 4624 that says where the actor came from
            a.protocol = act.session.package or a.protocol
            a.details["session"] = {"source_ip": act.session.source_ip, "source_host": act.session.source_host,
                                    "package": act.session.package, "logon_type": act.session.logon_type}
        if act.actor_sid:
            a.details["actor_sid"] = act.actor_sid
        if a.revision == 0:
            a.description = self.describe(a)
        return (a,)

    def _dc_like(self, act: DirectoryAccess) -> bool:
        """A computer account reading the secret: a DC unless an imported inventory says otherwise."""
        inv = self.ctx.inventory
        acc = inv.get(act.actor, act.actor_sid)
        return not (inv.imported or (acc is not None and acc.source == "imported"))

    def describe(self, a: Alert) -> str:
        who = a.accounts[0] if a.accounts else a.key
        src = f" from {', '.join(a.hosts)}" if a.hosts else ""
        secrets = ", ".join(a.details.get("secrets", []))
        return (f"{who}{src} read the domain's DPAPI backup key on {', '.join(a.dcs)} ({secrets}; "
                f"{plural(a.count, 'read')}). With it, the DPAPI master keys of every domain user (saved "
                f"passwords, browser secrets, certificates' private keys) can be decrypted offline. Investigate "
                f"the source computer and the account; if not a sanctioned recovery, treat both as compromised. "
                f"The key does not change by itself: assume every DPAPI-protected secret of the domain is exposed.")
