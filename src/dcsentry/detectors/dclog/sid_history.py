"""SID-History injection (reference/dc-log-alerts.md B10; MDI 1106).

A SID in an account's sIDHistory grants that SID's access: an attacker who adds Domain Admins'
SID to a plain user owns the domain without touching a group. Triggers: any 4765 (added), 4766
(attempt failed), and 4738 whose `SidHistory` holds a value (not `-`/`%%1793`/empty).
Severity: High when an added SID is privileged (-500/-512/-518/-519/..., S-1-5-32-544) or of the
target's own domain (migrations bring foreign SIDs); Medium otherwise and for failed attempts.
Allow-list: `account_changes.sid_history_allowed` (the migration account that acts, e.g. ADMT's).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from ...activities import Activity
from ...activities.context import DomainContext
from ...activities.dclog.accounts import AccountChange
from ...alerts import Alert
from ...config import Detection
from ..base import Incidents, add_unique
from .accountkit import actor_text, allow_set, domain_of, listed, note_actor, privileged_sid

TYPE = "sid-history"
_SID = re.compile(r"S-1-[0-9-]+", re.I)


class SidHistoryDetector:
    accepts = (AccountChange,)  # the engine hands it nothing else

    def __init__(self, cfg: Detection, incidents: Incidents, ctx: DomainContext) -> None:
        self.incidents = incidents
        self.ctx = ctx
        self.allowed = allow_set(cfg.account_changes.sid_history_allowed)

    def _sids(self, act: AccountChange) -> list[str]:
        if act.event_id == 4738:
            raw = act.changed.get("SidHistory", "")
            return [s.upper() for s in _SID.findall(raw)] if raw and raw != "%%1793" else []
        listed_sids = [x.upper() for x in act.sid_list if x.upper().startswith("S-1-")]
        return list(dict.fromkeys(s for s in [act.source_sid, *listed_sids] if s))

    def on_activity(self, act: Activity) -> Iterable[Alert]:
        if not isinstance(act, AccountChange) or act.event_id not in (4765, 4766, 4738):
            return ()
        sids = self._sids(act)
        if act.event_id == 4738 and not sids:
            raw = act.changed.get("SidHistory", "")
            if not raw or raw == "%%1793" or "value not set" in raw.lower():
                return ()
        if listed(self.allowed, act.actor, act.actor_sid):
            return ()
        key = (act.target_sid or act.target).lower()
        a = self.incidents.raise_or_grow(TYPE, key, act.time, act.evidence)
        a.count += 1
        note_actor(a, act)
        add_unique(a.accounts, act.target)
        d = a.details
        d["account"], d["account_sid"] = act.target, act.target_sid
        d.setdefault("actor_text", actor_text(act))
        for s in sids:
            add_unique(d.setdefault("sids", []), s)
        if act.source_account:
            add_unique(d.setdefault("sources", []), act.source_account)
        own = domain_of(act.target_sid)
        privileged = any(privileged_sid(s) for s in sids) or "admins" in act.source_account.lower()
        same_domain = bool(own) and any(domain_of(s) == own for s in sids)
        d["privileged"] = d.get("privileged", False) or privileged
        d["same_domain"] = d.get("same_domain", False) or same_domain
        if act.event_id == 4766:
            d["failed"] = d.get("failed", 0) + 1
        else:
            d["added"] = d.get("added", 0) + 1
        high = d["privileged"] if not d.get("added") else d["privileged"] or d["same_domain"]
        a.severity = "high" if high else "medium"
        a.description = self.describe(a)
        return (a,)

    def describe(self, a: Alert) -> str:
        d = a.details
        what = ("added" if d.get("added") else "tried to add (failed)")
        sids = ", ".join(d.get("sids", [])) or "a SID"
        src = f" ({', '.join(d['sources'])})" if d.get("sources") else ""
        text = (f"{d.get('actor_text', 'An account')} {what} {sids}{src} to the SID history of "
                f"{d.get('account', a.key)} on {', '.join(a.dcs) or 'a DC'}.")
        if d.get("privileged"):
            text += " The SID is privileged: the account now holds that group's rights without being a member."
        if d.get("same_domain"):
            text += " The SID belongs to the account's own domain, which no migration does."
        return text + (" Unless this is a planned ADMT migration, remove the sIDHistory value, reset the account's "
                       "password, treat the acting account as compromised and enable SID filtering on trusts.")
