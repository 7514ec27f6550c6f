"""Kerberos pre-authentication disabled on an account (reference/dc-log-alerts.md B3 companion).

4738/4720 (and 4742/4741 for computers) whose `UserAccountControl` sets DONT_REQUIRE_PREAUTH
(`%%2096`, SAM bit 16; obs. 0x210 -> 0x10210): anyone may now ask a TGT for the account and crack
the AS-REP offline (AS-REP roasting). One alert per account while the incident is open; putting
pre-authentication back (`%%2064`) only notes it on that alert. Other UAC flags (not delegated,
password not required, never expires, DES only, reversible encryption) are not this alert.
The account is marked roastable for the AS-REP detector by the reader (accounts.roastable).
"""

from __future__ import annotations

from collections.abc import Iterable

from ...activities import Activity
from ...activities.context import DomainContext
from ...activities.dclog.accounts import DONT_REQUIRE_PREAUTH, AccountChange
from ...alerts import Alert
from ...config import Detection
from ..base import Incidents, add_unique
from .accountkit import actor_text, note_actor, privileged_sid

TYPE = "preauth-disabled"
_EVENTS = frozenset({4720, 4738, 4741, 4742})


class PreauthDisabledDetector:
    accepts = (AccountChange,)  # the engine hands it nothing else

    def __init__(self, cfg: Detection, incidents: Incidents, ctx: DomainContext) -> None:
        self.incidents = incidents
        self.ctx = ctx

    def on_activity(self, act: Activity) -> Iterable[Alert]:
        if not isinstance(act, AccountChange) or act.event_id not in _EVENTS or not act.target:
            return ()
        key = (act.target_sid or act.target).lower()
        if DONT_REQUIRE_PREAUTH in act.uac_cleared:
            a = self.incidents.current(TYPE, key, act.time)
            if a is None:
                return ()
            a = self.incidents.raise_or_grow(TYPE, key, act.time, act.evidence)
            a.count += 1
            a.details["restored"] = f"{act.time:%Y-%m-%d %H:%M:%S} by {act.actor}"
            a.description = self.describe(a)
            return (a,)
        if DONT_REQUIRE_PREAUTH not in act.uac_set:
            return ()
        a = self.incidents.raise_or_grow(TYPE, key, act.time, act.evidence)
        a.count += 1
        note_actor(a, act)
        add_unique(a.accounts, act.target)
        a.details.update(account=act.target, account_sid=act.target_sid, event_id=act.event_id,
                         uac=" -> ".join(v for v in (act.changed.get("OldUacValue", ""),
                                                     act.changed.get("NewUacValue", "")) if v),
                         changes=act.uac_words, actor_text=actor_text(act))
        sensitive = privileged_sid(act.target_sid) or self.ctx.inventory.is_sensitive(act.target, act.target_sid)
        a.details["sensitive"] = sensitive
        a.severity = "high" if sensitive else "medium"
        a.description = self.describe(a)
        return (a,)

    def describe(self, a: Alert) -> str:
        d = a.details
        what = "created without" if d.get("event_id") in (4720, 4741) else "changed to not require"
        uac = f" (UAC {d['uac']})" if d.get("uac") else ""
        text = (f"{d.get('actor_text', 'An account')} {what} Kerberos pre-authentication for "
                f"{d.get('account', a.key)}{uac} on {', '.join(a.dcs) or 'a DC'}. Anyone can now request an AS-REP "
                "for this account and crack its password offline (AS-REP roasting).")
        if d.get("sensitive"):
            text += " The account is privileged."
        if d.get("restored"):
            text += f" Pre-authentication was required again at {d['restored']}."
        return text + (" Confirm the change with its owner; if it is not needed, clear 'Do not require Kerberos "
                       "preauthentication', reset the account's password and look for AS-REP requests (4768 "
                       "PreAuthType 0) for it.")
