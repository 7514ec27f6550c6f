"""DCShadow: a rogue domain controller registered to push changes (reference/dc-log-alerts.md B11;
MDI 2028).

`lsadump::dcshadow` makes an ordinary computer look like a DC for a few seconds: it gives the
computer account the replication SPNs and creates its server / nTDSDSA objects in the
Configuration partition, pushes its changes, then removes everything. For a computer that is not
a known DC (inventory), each of these raises (one alert per computer):
- 4742 `ServicePrincipalNames` holding `GC/…` or `E3514235-4B06-11D1-AB04-00C04FC2DCD2/…` (DRS);
- 5136 adding such an SPN to a computer object;
- 5137 of a `server` or `nTDSDSA` object under `CN=Sites,CN=Configuration`.
4662 on the domain object with the replication-topology rights (`1131f6ac…` Manage-Replication-
Topology, `9923a32a…` DS-Install-Replica) by an account that is not a DC joins the alert of the
computer that account is registering (within `nopac_window`); by a computer account on its own it
raises only when that computer is known not to be a DC (created in the stream, or an imported
inventory says so): DCs whose own events are not collected use these rights too (KCC, repadmin).
A computer writing its own DRS SPN is a DC. Removal (5141, 5136 deleted SPN, 4662 DELETE) grows
the alert.
A real promotion makes the computer a DC (SERVER_TRUST `%%2088`): nothing is raised once it is one,
and an alert whose computer becomes a DC within `promotion_grace` is lowered to Low and says so.
"""

from __future__ import annotations

from collections.abc import Iterable

from ...activities import Activity, DcActivity
from ...activities.context import DomainContext
from ...activities.dclog.access import DirectoryAccess
from ...activities.dclog.accounts import SERVER_TRUST, AccountChange, new_computers
from ...activities.dclog.directory import DirectoryChange
from ...alerts import Alert, Evidence
from ...config import Detection
from ..base import Incidents, Lru, add_unique
from .accountkit import actor_text, note_actor

TYPE = "dcshadow"
DRS_SPN = "e3514235-4b06-11d1-ab04-00c04fc2dcd2/"
DOMAIN_DNS = "19195a5b-6da0-11d0-afd3-00c04fd930c9"
TOPOLOGY_RIGHTS = {"1131f6ac-9c07-11d1-f79f-00c04fc2dcd2": "Manage-Replication-Topology",
                   "9923a32a-3607-11d2-b9be-0000f87a36b2": "DS-Install-Replica"}
_DSA_CLASSES = {"server", "ntdsdsa"}
_CLASS_GUIDS = {"f0f8ffab-1191-11d0-a060-00aa006c33ed": "nTDSDSA", "bf967a92-0de6-11d0-a285-00aa003049e2": "server"}


def rogue_spns(spns: Iterable[str]) -> list[str]:
    return [s for s in spns if s.lower().startswith(("gc/", DRS_SPN))]


def _rdn(dn: str, i: int = 0) -> str:
    parts = [p for p in (dn or "").split(",") if "=" in p]
    return parts[i].split("=", 1)[1].strip() if len(parts) > i else ""


class DcShadowDetector:
    accepts = (AccountChange, DirectoryChange, DirectoryAccess)  # the engine hands it nothing else

    def __init__(self, cfg: Detection, incidents: Incidents, ctx: DomainContext) -> None:
        self.incidents = incidents
        self.ctx = ctx
        self.grace = cfg.account_changes.promotion_grace
        self.window = cfg.account_changes.nopac_window
        self.by_actor: Lru[str, tuple[float, str]] = Lru(10_000)  # actor -> (t, computer key) of its latest candidate
        # actor -> [(t, evidence, right)] topology rights not yet tied
        self.pending: Lru[str, list[tuple[float, list[Evidence], str]]] = Lru(10_000)
        self.raised: Lru[str, float] = Lru(10_000)  # computer key -> first alert time (epoch), for the grace
        # computer key -> its replication SPNs (lower case -> as written) as last listed by 4741/4742
        self.spns: Lru[str, dict[str, str]] = Lru(10_000)

    def on_activity(self, act: Activity) -> Iterable[Alert]:
        if isinstance(act, AccountChange):
            return self._account(act)
        if isinstance(act, DirectoryChange):
            return self._directory(act)
        if isinstance(act, DirectoryAccess):
            return self._access(act)
        return ()

    # -- signals ----------------------------------------------------------------------------------
    def _account(self, act: AccountChange) -> Iterable[Alert]:
        if act.event_id not in (4741, 4742) or not act.target:
            return ()
        key = act.target.split("\\")[-1].rstrip("$").lower()
        if SERVER_TRUST in act.uac_set:
            return self._promoted(key, act)
        if "ServicePrincipalNames" not in act.changed or self.ctx.inventory.is_dc(act.target):
            return ()
        if act.actor.lower() == act.target.lower():  # a computer writing its own DRS SPN: only a DC may
            return ()
        spns = {s.lower(): s for s in rogue_spns(act.spns)}
        before = self.spns.get(key, {})
        self.spns.put(key, spns)
        added = [v for k, v in spns.items() if k not in before]
        removed = [v for k, v in before.items() if k not in spns]
        if added:
            return self._raise(key, act, f"{act.event_id} replication SPNs given to {act.target}: {', '.join(added)}")
        if removed:
            return self._grow(key, act, f"{act.event_id} replication SPNs removed from {act.target}: "
                                        f"{', '.join(removed)}")
        return self._grow(key, act, "") if spns else ()

    def _directory(self, act: DirectoryChange) -> Iterable[Alert]:
        dn = act.object_dn
        if act.attr == "serviceprincipalname" and act.object_class.lower() == "computer":
            key = _rdn(dn).lower()
            if not key or self.ctx.inventory.is_dc(key):
                return ()
            if spns := rogue_spns(act.added):
                return self._raise(key, act, f"5136 SPN added to {_rdn(dn)}: {', '.join(spns)}")
            if spns := rogue_spns(act.removed):
                return self._grow(key, act, f"5136 SPN removed from {_rdn(dn)}: {', '.join(spns)}")
            return ()
        cls = act.object_class.lower()
        if cls not in _DSA_CLASSES or ",cn=sites,cn=configuration," not in dn.lower():
            return ()
        key = (_rdn(dn, 1) if cls == "ntdsdsa" else _rdn(dn)).lower()
        if not key or self.ctx.inventory.is_dc(key):
            return ()
        line = f"{act.event_ids[0] if act.event_ids else ''} {act.object_class} {act.operation}: {dn}".strip()
        if act.operation == "create":
            return self._raise(key, act, line)
        if act.operation == "delete":
            return self._grow(key, act, line)
        return ()

    def _access(self, act: DirectoryAccess) -> Iterable[Alert]:
        actor = act.actor.lower()
        if not actor or self.ctx.inventory.is_dc(act.actor):
            return ()
        if act.access_mask & 0x10000 and any(g in _CLASS_GUIDS for g in act.rights):  # DELETE of server/nTDSDSA
            hit = self._recent(actor, act)
            if hit is not None:
                cls = next(_CLASS_GUIDS[g] for g in act.rights if g in _CLASS_GUIDS)
                return self._grow(hit, act, f"4662 {cls} object deleted by {act.actor}")
            return ()
        if act.object_type.lower() not in (DOMAIN_DNS, "domaindns"):
            return ()
        rights = [TOPOLOGY_RIGHTS[g] for g in act.rights if g in TOPOLOGY_RIGHTS]
        if not rights:
            return ()
        line = f"4662 {', '.join(rights)} on the domain by {act.actor}"
        hit = self._recent(actor, act)
        if hit is not None:
            return self._grow(hit, act, line)
        if actor.endswith("$") and self._not_dc(act.actor, act.actor_sid):  # a known non-DC acting as one
            return self._raise(actor.rstrip("$"), act, line)
        waiting = self.pending.touch(actor, list)
        waiting[:] = [w for w in waiting if act.time.timestamp() - w[0] <= self.window][-20:]
        waiting.append((act.time.timestamp(), act.evidence, line))
        return ()

    def _not_dc(self, account: str, sid: str) -> bool:
        """A computer known not to be a DC: created in the stream, or absent from / not a DC in an
        imported inventory. An unknown computer account using topology rights is most often a DC
        whose own events are not collected (KCC, repadmin), so it only joins an alert."""
        inv = self.ctx.inventory
        if account.lower() in new_computers(self.ctx):
            return True
        acc = inv.get(account, sid)
        return inv.imported and (acc is None or not acc.dc)

    def _recent(self, actor: str, act: DcActivity) -> str | None:
        hit = self.by_actor.get(actor)
        if hit is not None and act.time.timestamp() - hit[0] <= self.window:
            return hit[1]
        return None

    # -- alerts -----------------------------------------------------------------------------------
    def _raise(self, key: str, act: DcActivity, line: str) -> Iterable[Alert]:
        a = self.incidents.raise_or_grow(TYPE, key, act.time, act.evidence)
        t = act.time.timestamp()
        self.raised.touch(key, lambda: t)
        a.count += 1
        note_actor(a, act)
        add_unique(a.accounts, key.upper() + "$")
        a.details.setdefault("computer", key.upper())
        a.details.setdefault("actor_text", actor_text(act))
        add_unique(a.details.setdefault("steps", []), line, cap=30)
        if act.actor:
            self.by_actor.put(act.actor.lower(), (t, key))
            for wt, ev, wline in self.pending.pop(act.actor.lower(), []):
                if t - wt <= self.window:
                    self._add(a, ev, wline)
        if not a.details.get("promoted"):
            a.severity = "high"
        a.description = self.describe(a)
        return (a,)

    def _grow(self, key: str, act: DcActivity, line: str) -> Iterable[Alert]:
        if self.incidents.current(TYPE, key, act.time) is None:
            return ()
        a = self.incidents.raise_or_grow(TYPE, key, act.time, act.evidence)
        a.count += 1
        if line:
            add_unique(a.details.setdefault("steps", []), line, cap=30)
        if "removed" in line or "delete" in line:
            a.details["removed"] = True
        a.description = self.describe(a)
        return (a,)

    def _add(self, a: Alert, evidence: list, line: str) -> None:
        for e in evidence:
            if len(a.evidence) < self.incidents.max_evidence:
                a.evidence.append(e)
        a.count += 1
        add_unique(a.details.setdefault("steps", []), line, cap=30)

    def _promoted(self, key: str, act: AccountChange) -> Iterable[Alert]:
        """The computer became a DC: a real promotion. An alert raised for it shortly before is lowered."""
        first = self.raised.get(key)
        if first is None or act.time.timestamp() - first > self.grace:
            return ()
        a = self.incidents.current(TYPE, key, act.time)
        if a is None:
            return ()
        a = self.incidents.raise_or_grow(TYPE, key, act.time, act.evidence)
        a.count += 1
        a.severity = "low"
        a.details["promoted"] = f"{act.time:%Y-%m-%d %H:%M:%S} by {act.actor}"
        a.description = self.describe(a)
        return (a,)

    def describe(self, a: Alert) -> str:
        d = a.details
        comp = d.get("computer", a.key.upper())
        text = (f"{d.get('actor_text', 'An account')} registered computer {comp}, which is not a known domain "
                f"controller, as a DC on {', '.join(a.dcs) or 'a DC'}: " + "; ".join(d.get("steps", [])) + ".")
        if d.get("promoted"):
            return text + (f" {comp} then became a domain controller (SERVER_TRUST set at {d['promoted']}): this "
                           "looks like a real DC promotion; close the alert if it was planned.")
        if d.get("removed"):
            text += " The registration was removed moments later, as DCShadow does after pushing its changes."
        return text + (" DCShadow lets the holder of these rights write any object through replication without "
                       "the usual change events. Isolate the computer, treat the acting account as compromised, "
                       "and review replication metadata (repadmin /showobjmeta) for objects changed from "
                       f"{comp}.")
