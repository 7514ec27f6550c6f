"""Directory Services Restore Mode password change (reference/dc-log-alerts.md B12; MDI 2438).

The DSRM account is a local administrator of the DC; with `DsrmAdminLogonBehavior` = 2 its
password is a network logon to the DC that survives every domain password reset. Any 4794 is an
alert: Medium when set (`Status 0x0`), Low for a failed attempt. Planned rotations by a known
account can be allow-listed (`account_changes.dsrm_allowed`). One alert per DC per incident.
"""

from __future__ import annotations

from collections.abc import Iterable

from ...activities import Activity
from ...activities.context import DomainContext
from ...activities.dclog.accounts import AccountChange
from ...alerts import Alert
from ...config import Detection
from ..base import Incidents, add_unique
from .accountkit import actor_text, allow_set, listed, note_actor

TYPE = "dsrm-password-change"


class DsrmPasswordDetector:
    accepts = (AccountChange,)  # the engine hands it nothing else

    def __init__(self, cfg: Detection, incidents: Incidents, ctx: DomainContext) -> None:
        self.incidents = incidents
        self.allowed = allow_set(cfg.account_changes.dsrm_allowed)

    def on_activity(self, act: Activity) -> Iterable[Alert]:
        if not isinstance(act, AccountChange) or act.event_id != 4794:
            return ()
        if listed(self.allowed, act.actor, act.actor_sid):
            return ()
        a = self.incidents.raise_or_grow(TYPE, act.host.lower(), act.time, act.evidence)
        a.count += 1
        note_actor(a, act)
        add_unique(a.hosts, act.workstation)
        d = a.details
        d.setdefault("actor_text", actor_text(act))
        d["workstation"] = act.workstation
        status = (act.status or "0x0").lower()
        ok = status in ("0x0", "0")
        d["set"] = d.get("set", 0) + ok
        d["failed"] = d.get("failed", 0) + (not ok)
        if not ok:
            d["status"] = act.status
        a.severity = "medium" if d["set"] else "low"
        a.description = self.describe(a)
        return (a,)

    def describe(self, a: Alert) -> str:
        d = a.details
        what = "set the DSRM administrator password" if d.get("set") else \
            f"tried to set the DSRM administrator password (failed, status {d.get('status', '?')})"
        ws = f" from workstation {d['workstation']}" if d.get("workstation") else ""
        return (f"{d.get('actor_text', 'An account')} {what} of domain controller {', '.join(a.dcs) or a.key}{ws}. "
                "The DSRM account is a local administrator of the DC that domain password resets do not touch; with "
                "DsrmAdminLogonBehavior=2 it allows network logons. Confirm this was a planned rotation or DC "
                "promotion; otherwise set a new DSRM password (ntdsutil 'set dsrm password'), check "
                "HKLM\\System\\CurrentControlSet\\Control\\Lsa\\DsrmAdminLogonBehavior and investigate the actor.")
