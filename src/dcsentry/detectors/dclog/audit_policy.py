"""Audit policy weakened (4719; reference/dc-log-alerts.md B13, audit-policy.md).

4719 is always logged. An alert when success (`%%8448`) or failure (`%%8450`) auditing is removed
from a subcategory dcsentry's detections need (Sigma's list, plus DS Access, DS Changes and
Certification Services, plus Kerberos and Authentication Policy Change); quiet when a change only
adds auditing. High when a subcategory the detections are built on lost auditing, else medium.
On a DC it is also a health alert, closed when the same subcategories are audited again
(`%%8449`/`%%8451`). A GPO refresh by the DC's own account is reported too: the GPO now says so.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from ...activities import Activity
from ...activities.context import DomainContext
from ...activities.dclog.system import AuditPolicyChange
from ...alerts import Alert, Evidence
from ...config import Detection
from ...subcategories import SUBCATEGORIES
from ..base import Incidents, Lru, add_unique
from .blind import BlindSpots, link
from .log_cleared import actor_of

TYPE = "audit-policy-disabled"
CHECK = "audit-policy-disabled"
_SUFFIX = "-69ae-11d9-bed3-505054503030"

# Subcategory GUID prefix -> (what goes blind, core: a removal is high, success-only).
NEEDED: dict[str, tuple[str, bool, bool]] = {
    "0cce923f": ("4776 NTLM validation: brute force, password spray, honeytokens", True, False),
    "0cce9237": ("4728/4732/4756 group changes: sensitive group additions", True, False),
    "0cce9238": ("distribution group changes", False, False),
    "0cce9235": ("4720/4738/4765 account changes: SID history, pre-auth, DSRM", True, False),
    "0cce9236": ("4741/4742 computer accounts: noPac, DCShadow", True, False),
    "0cce923b": ("4662 directory access: DCSync, DPAPI backup key", True, False),
    "0cce923c": ("5136 directory changes: ACL, shadow credential, RBCD and GPO backdoors", True, False),
    "0cce9242": ("4768/4771 Kerberos AS: AS-REP roasting, brute force, golden ticket", True, False),
    "0cce9240": ("4769 Kerberos service tickets: Kerberoasting", True, False),
    "0cce9215": ("4624/4625 logons: remote execution, pass-the-hash", True, False),
    "0cce9211": ("4697 service installs", True, False),
    "0cce922f": ("4719/4713 policy changes", True, False),
    "0cce9230": ("4706/4865 trusts", False, False),
    "0cce9221": ("4886/4887 AD CS requests on a CA", True, False),
    "0cce9210": ("4608/4616 start-up and time changes", False, False),
    "0cce9212": ("system integrity events", False, False),
    "0cce9217": ("4740 lockouts", False, True),
    "0cce921b": ("4672 special logons", False, False),
    "0cce922b": ("4688 process creation", False, False),
}


def _prefix(guid: str) -> str:
    return guid.lower().strip("{}").split("-", 1)[0]


def _kinds(kinds: Iterable[str]) -> str:
    return " and ".join(k.capitalize() for k in ("success", "failure") if k in kinds)


def subcategory_name(act: AuditPolicyChange) -> str:
    s = SUBCATEGORIES.get("{" + act.subcategory_guid + "}")
    if s is not None:
        return s.name
    return act.subcategory if act.subcategory and not act.subcategory.startswith("%%") else \
        (act.subcategory_guid or act.subcategory or "unknown subcategory")


class AuditPolicyDetector:
    def __init__(self, cfg: Detection, incidents: Incidents, ctx: DomainContext) -> None:
        self.needed = dict(NEEDED)
        for g in cfg.tampering.audit_subcategories:
            self.needed.setdefault(_prefix(g), ("events an admin asked to watch", False, False))
        self.incidents = incidents
        self.ctx = ctx
        self.blind = BlindSpots(cfg.max_evidence)
        # host -> {subcategory name: {"success", "failure"}} not audited now
        self.missing: Lru[str, dict[str, set[str]]] = Lru(10_000)
        self.pending: Lru[str, Alert] = Lru(1000)  # host not (yet) known as a DC -> its alert
        self._known_dcs = 0

    def on_activity(self, act: Activity) -> Iterable[Alert]:
        if self.pending and len(self.ctx.dcs) != self._known_dcs:  # a host that lost auditing turned out a DC
            self._known_dcs = len(self.ctx.dcs)
            return self._promote() + list(self._change(act))
        return self._change(act)

    def _change(self, act: Activity) -> Iterable[Alert]:
        if not isinstance(act, AuditPolicyChange):
            return ()
        need = self.needed.get(_prefix(act.subcategory_guid)) if act.subcategory_guid else None
        if need is None:
            return ()
        name = subcategory_name(act)
        missing = self.missing.touch(act.host, dict)
        removed = [k for k in act.removed if k == "success" or not need[2]]
        if not removed:
            return self._restored(act, name, missing) if act.added else ()
        missing.setdefault(name, set()).update(removed)
        for k in act.added:
            missing[name].discard(k)
        a = self.incidents.raise_or_grow(TYPE, act.host, act.time, act.evidence)
        a.count += 1
        if need[1]:
            a.severity = "high"
        actor = actor_of(act.actor, act.actor_domain)
        add_unique(a.accounts, actor)
        add_unique(a.hosts, act.source if act.session is not None and act.session.remote else act.host)
        add_unique(a.dcs, act.host)
        changes: dict[str, list[str]] = a.details.setdefault("removed", {})
        for k in removed:
            add_unique(changes.setdefault(name, []), k)
        add_unique(a.details.setdefault("blind", []), need[0], cap=50)
        add_unique(a.details.setdefault("subcategory_guids", []), act.subcategory_guid, cap=100)
        a.details.pop("restored", None)
        out = [a]
        dc = self.ctx.inventory.is_dc(act.host)
        if dc:
            out.append(self._health(a, act.host, act.time, act.evidence, missing))
        else:
            self.pending.put(act.host, a)
            self._known_dcs = len(self.ctx.dcs)
        if act.actor.endswith("$"):
            a.details["by_gpo"] = True
        a.details["dc"] = dc
        a.description = self._text(act.host, a)
        return out

    def _health(self, a: Alert, host: str, t: datetime, evidence: list[Evidence],
                missing: dict[str, set[str]]) -> Alert:
        h = self.blind.raise_or_grow(CHECK, host, t, evidence, technique=a.technique,
                                     title=f"dcsentry is going blind on {host}: audit policy weakened")
        link(a, h)
        h.details["missing"] = {k: sorted(v) for k, v in missing.items() if v}
        h.description = self._health_text(host, h.details["missing"], a.id)
        return h

    def _promote(self) -> list[Alert]:
        """Hosts whose auditing went down before the stream showed they are DCs (only DCs log 4768...)."""
        out: list[Alert] = []
        for host, a in list(self.pending.items()):
            if not self.ctx.inventory.is_dc(host):
                continue
            del self.pending[host]
            missing = self.missing.get(host)
            if not missing or not any(missing.values()):
                continue
            out.append(self._health(a, host, a.start, a.evidence[:1], missing))
            a.details["dc"] = True
            a.description = self._text(host, a)
            a.revision += 1
            out.append(a)
        return out

    def _restored(self, act: AuditPolicyChange, name: str, missing: dict[str, set[str]]) -> list[Alert]:
        """Auditing added back: once nothing watched is missing any more, the health alert closes."""
        if name not in missing:
            return []
        for k in act.added:
            missing[name].discard(k)
        out: list[Alert] = []
        if missing[name]:
            return self._still_off(act.host, missing)
        del missing[name]
        a = self.incidents.current(TYPE, act.host, act.time)
        if a is not None:
            add_unique(a.details.setdefault("restored_subcategories", []), name)
            if not missing:
                a.details["restored"] = act.time.isoformat()
            a.description = self._text(act.host, a)
            a.revision += 1
            out.append(a)
        if missing:
            return out + self._still_off(act.host, missing)
        h = self.blind.close(CHECK, act.host, act.time, act.evidence)
        if h is not None:
            h.details["missing"] = {}
            h.description = (f"Auditing on {act.host} is back for every subcategory dcsentry needs "
                             f"(restored at {act.time:%Y-%m-%d %H:%M:%S} UTC by "
                             f"{actor_of(act.actor, act.actor_domain) or 'an unknown account'}). Events from the "
                             "period without auditing were never logged: review the security alert for what "
                             "happened meanwhile.")
            h.count += 1
            out.append(h)
        return out

    def _still_off(self, host: str, missing: dict[str, set[str]]) -> list[Alert]:
        """Auditing partly back: the open health alert says what is still off."""
        h = self.blind.get(CHECK, host)
        if h is None or h.status != "open":
            return []
        h.details["missing"] = {k: sorted(v) for k, v in missing.items() if v}
        h.description = self._health_text(host, h.details["missing"], h.details.get("security_alert", ""))
        h.revision += 1
        return [h]

    def _text(self, host: str, a: Alert) -> str:
        changes: dict[str, list[str]] = a.details["removed"]
        items = [f"{n} ({_kinds(ks)})" for n, ks in changes.items()]
        shown = "; ".join(items[:10]) + (f"; and {len(items) - 10} more" if len(items) > 10 else "")
        who = ", ".join(a.accounts) or "an unknown account"
        machine, dc = a.details.get("by_gpo", False), a.details.get("dc", False)
        n = len(changes)
        text = (f"{who} removed auditing of {n} {'subcategory' if n == 1 else 'subcategories'} on "
                f"{'domain controller ' if dc else ''}{host}: {shown}. Without it these events are no longer "
                f"logged: {'; '.join(a.details['blind'][:8])}.")
        if machine:
            text += (f" The change was applied by {host}'s own account, i.e. by a Group Policy refresh: a GPO linked "
                     f"to {host} now turns this auditing off; find and fix that GPO (gpresult /h on {host}).")
        else:
            text += (f" Confirm the change with {who}; if it was not planned, restore the policy "
                     f"(auditpol /set /subcategory:{{GUID}} /success:enable /failure:enable, or the GPO), and treat "
                     "the account as compromised: attackers lower auditing before acting.")
        if a.details.get("restored"):
            text += f" Auditing was restored at {a.details['restored']}."
        return text

    @staticmethod
    def _health_text(host: str, missing: dict[str, list[str]], alert_id: str) -> str:
        items = "; ".join(f"{n} ({_kinds(ks)})" for n, ks in missing.items())
        return (f"{host} no longer audits: {items} (security alert {alert_id}). The detections that need these events "
                f"are blind for {host} until auditing is back. Fix: Advanced Audit Policy Configuration > Audit "
                "Policies, Success and Failure for each (Default Domain Controllers Policy), then gpupdate /force. "
                "This alert closes when the DC logs the auditing re-enabled.")
