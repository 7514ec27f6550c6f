"""noPac / sAMAccountName spoofing, CVE-2021-42278 + CVE-2021-42287 (reference/dc-log-alerts.md B9).

The attack: a plain user creates a computer (4741, MachineAccountQuota), clears its SPNs (4742
`%%1793`), renames it to a DC's name without `$` (4781, and a 4742 SamAccountName), gets a TGT for
that name (4768), renames it back and asks a service ticket with the TGT: the KDC, not finding the
name, appends `$` and issues a ticket as the DC.
- 4781 `OldTargetUserName` with `$`, `NewTargetUserName` without (a 4742 changing a computer's
  SamAccountName to a name without `$` says the same): alert; High when the new name is a DC's
  name without `$` or the computer was created by a non-privileged account and had its SPNs cleared
  within `nopac_window`, else Medium (XDR "Suspicious SAM Account Name Change").
- A name gaining `$` (user -> `x$`) is Medium, unless it is the rename back of an open incident.
- Any 4768 whose account is a DC's name without `$` (the DC that logs it counts): High; 4769 with
  that name grow the alert. Renames that keep the name (OS setup) or keep the `$` are quiet.
One alert per impersonated name.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple

from ...activities import Activity
from ...activities.context import DomainContext
from ...activities.dclog.accounts import AccountChange, spns_cleared
from ...activities.dclog.kerberos import TicketRequest
from ...alerts import Alert, Evidence
from ...config import Detection
from ..base import Incidents, Lru, add_unique
from .accountkit import actor_text, note_actor, privileged_sid

TYPE = "nopac"
_CAP = 20_000


def _bare(name: str) -> str:
    return (name or "").strip().split("\\")[-1].split("@")[0]


class Created(NamedTuple):
    """A computer account's creation (4741), for the chain of a later rename."""

    t: float  # epoch
    actor: str
    plain: bool  # by an account that is not an administrator
    evidence: list[Evidence]


class NoPacDetector:
    accepts = (AccountChange, TicketRequest)  # the engine hands it nothing else

    def __init__(self, cfg: Detection, incidents: Incidents, ctx: DomainContext) -> None:
        self.incidents = incidents
        self.ctx = ctx
        self.window = cfg.account_changes.nopac_window
        self.created: Lru[str, Created] = Lru(_CAP)  # computer (sid or name) -> its creation (4741)
        self.cleared: Lru[str, tuple[float, list[Evidence]]] = Lru(_CAP)  # computer (sid or name) -> (t, evidence)

    # -- helpers ----------------------------------------------------------------------------------
    def _is_dc_name(self, name: str, logged_by: str) -> bool:
        """`rootdc1` is a DC's name without `$`: a known DC, or the DC that logged the event."""
        n = _bare(name)
        if not n or n.endswith("$"):
            return False
        return self.ctx.inventory.is_dc(n + "$") or n.upper() == (logged_by or "").upper()

    def _plain(self, act: AccountChange) -> bool:
        inv = self.ctx.inventory
        return not (privileged_sid(act.actor_sid) or inv.is_sensitive(act.actor, act.actor_sid)
                    or act.actor.endswith("$") or inv.is_dc(act.actor))

    def _chain(self, a: Alert, ref: str, t: float) -> None:
        """Attach the creation and SPN clearing of the renamed computer, when recent."""
        steps = a.details.setdefault("chain", [])
        made = self.created.get(ref)
        if made is not None and t - made.t <= self.window and "created" not in a.details:
            a.details["created"] = f"by {made.actor}" + (" (not an administrator)" if made.plain else "")
            a.details["created_by_plain_user"] = made.plain
            self._evidence(a, made.evidence)
            steps.append("4741 computer created " + a.details["created"])
        gone = self.cleared.get(ref)
        if gone is not None and t - gone[0] <= self.window and "spns_cleared" not in a.details:
            a.details["spns_cleared"] = True
            self._evidence(a, gone[1])
            steps.append("4742 SPNs cleared")

    def _evidence(self, a: Alert, ev: list[Evidence]) -> None:
        for e in ev:
            if len(a.evidence) < self.incidents.max_evidence:
                a.evidence.append(e)
            a.count += 1

    # -- activities -------------------------------------------------------------------------------
    def on_activity(self, act: Activity) -> Iterable[Alert]:
        if isinstance(act, AccountChange):
            return self._account(act)
        if isinstance(act, TicketRequest):
            return self._ticket(act)
        return ()

    def _account(self, act: AccountChange) -> Iterable[Alert]:
        ref = (act.target_sid or act.target).upper()
        t = act.time.timestamp()
        if act.event_id == 4741:
            self.created.put(ref, Created(t, act.actor, self._plain(act), act.evidence))
            return ()
        if act.event_id == 4742:
            if spns_cleared(act.changed.get("ServicePrincipalNames", "")):
                self.cleared.put(ref, (t, act.evidence))
            new = _bare(act.changed.get("SamAccountName", ""))
            if new and not new.endswith("$"):
                return self._renamed(act, "", new, ref, t)
            return ()
        if act.event_id != 4781:
            return ()
        old, new = _bare(act.old_name), _bare(act.target)
        if not old or not new or old.lower() == new.lower():
            return ()
        if old.endswith("$") and not new.endswith("$"):
            return self._renamed(act, old, new, ref, t)
        if new.endswith("$") and not old.endswith("$"):
            a = self.incidents.current(TYPE, old.lower(), act.time)
            if a is not None:  # the rename back of an attack in progress
                a = self.incidents.raise_or_grow(TYPE, old.lower(), act.time, act.evidence)
                a.count += 1
                add_unique(a.details.setdefault("chain", []), f"4781 renamed back {old} -> {new}")
                a.description = self.describe(a)
                return (a,)
            return self._renamed(act, old, new, ref, t)
        return ()

    def _renamed(self, act: AccountChange, old: str, new: str, ref: str, t: float) -> Iterable[Alert]:
        key = new.lower()
        a = self.incidents.raise_or_grow(TYPE, key, act.time, act.evidence)
        a.count += 1
        note_actor(a, act)
        if old:
            add_unique(a.accounts, old)
            a.details["old_name"] = old
        a.details["new_name"] = new
        a.details.setdefault("actor_text", actor_text(act))
        self._chain(a, ref, t)
        add_unique(a.details.setdefault("chain", []), f"4781 renamed {old} -> {new}" if old else
                   f"4742 sAMAccountName of computer {act.target_sid or act.target} set to {new}")
        dc = self._is_dc_name(new, act.host)
        if dc:
            a.details["impersonated_dc"] = new.upper()
        chain = a.details.get("created_by_plain_user") and a.details.get("spns_cleared")
        if dc or chain or a.severity == "high" and a.revision:
            a.severity = "high"
        elif not a.revision:
            a.severity = "medium"
        a.description = self.describe(a)
        return (a,)

    def _ticket(self, act: TicketRequest) -> Iterable[Alert]:
        name = _bare(act.account)
        if not name or name.endswith("$") or not self._is_dc_name(name, act.host):
            return ()
        key = name.lower()
        if not act.tgt and self.incidents.current(TYPE, key, act.time) is None:
            return ()
        a = self.incidents.raise_or_grow(TYPE, key, act.time, act.evidence)
        a.count += 1
        a.severity = "high"
        add_unique(a.hosts, act.source_ip)
        add_unique(a.dcs, act.host)
        add_unique(a.accounts, name)
        a.details["impersonated_dc"] = name.upper()
        a.details.setdefault("new_name", name)
        if act.source_ip:
            a.details.setdefault("source", act.source_ip)
        what = "TGT" if act.tgt else f"service ticket for {act.service}"
        status = "issued" if act.ok else f"refused (0x{act.status or 0:x})"
        add_unique(a.details.setdefault("chain", []),
                   f"{4768 if act.tgt else 4769} {what} for {name} {status}"
                   + (f" from {act.source_ip}" if act.source_ip else ""))
        if act.account_sid:
            self._chain(a, act.account_sid.upper(), act.time.timestamp())
        a.description = self.describe(a)
        return (a,)

    def describe(self, a: Alert) -> str:
        d = a.details
        new = d.get("new_name", a.key)
        dc = d.get("impersonated_dc")
        who = d.get("actor_text") or (f"a client at {d['source']}" if d.get("source") else "an unknown account")
        if d.get("old_name"):
            text = f"{who} renamed the account {d['old_name']} to {new}"
        else:
            text = f"{who} used the account name {new}"
        text += (f", the name of domain controller {dc} without its '$'" if dc
                 else ", dropping or adding the machine '$'")
        text += f" (logged on {', '.join(a.dcs) or 'a DC'}). Steps: " + "; ".join(d.get("chain", [])) + "."
        text += (" This is the noPac / sAMAccountName spoofing attack (CVE-2021-42278/42287): a ticket for the "
                 "renamed account can be turned into a ticket as the DC and then full domain control." if dc else
                 " Computer names normally keep their '$'; this is how noPac (CVE-2021-42278) prepares a "
                 "spoofed name.")
        return text + (" Disable the account involved, treat the acting account and its source as compromised, "
                       "look for service tickets (4769) issued to the spoofed name, make sure the November 2021 "
                       "KDC updates (PAC enforcement) are installed and set ms-DS-MachineAccountQuota to 0.")
