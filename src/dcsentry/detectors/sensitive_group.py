"""Additions to sensitive groups by an actor who does not usually make them.

Every change (adds and removals) teaches the baseline who changes which group. During a DC's
learning period (four weeks from its first event, as Defender for Identity) every sensitive
addition is raised and marked as learning: `hunt` over one file has no history and must still
report it. After it, an addition is raised unless that actor has changed that group before.
"""

from __future__ import annotations

from collections.abc import Iterable

from ..activities import Activity, GroupChange
from ..alerts import Alert
from ..config import Detection
from .base import Incidents, add_unique
from .baseline import Baseline

TYPE = "sensitive-group-addition"


class SensitiveGroupDetector:
    accepts = (GroupChange,)  # the engine hands it nothing else

    def __init__(self, cfg: Detection, incidents: Incidents, baseline: Baseline) -> None:
        self.cfg = cfg.sensitive_group
        self.incidents = incidents
        self.baseline = baseline

    def on_activity(self, act: Activity) -> Iterable[Alert]:
        if not isinstance(act, GroupChange):
            return ()
        actor = (act.actor_sid or act.actor).upper()
        group = (act.group_sid or act.group_name).upper()
        learning = self.baseline.clock.learning(f"dc:{act.dc}", act.time, self.cfg.learning_period)
        usual = self.baseline.learned_group_change(actor, group)
        self.baseline.learn_group_change(actor, group)
        open_ = self.incidents.current(TYPE, actor, act.time)
        if not act.added:
            if open_ is not None and any(c["member_sid"] == act.member_sid and c["group_sid"] == act.group_sid
                                         for c in open_.details.get("changes", [])):
                add_unique(open_.details.setdefault("removed_again", []), f"{act.member} from {act.group_name}")
                open_.revision += 1
                return (open_,)
            return ()
        if act.sensitive is None or (usual and not learning):
            return ()
        a = self.incidents.raise_or_grow(TYPE, actor, act.time, act.evidence, learning=learning)
        a.count += 1
        a.learning = a.learning and learning
        add_unique(a.accounts, act.actor)
        add_unique(a.accounts, act.member)
        add_unique(a.dcs, act.dc)
        changes = a.details.setdefault("changes", [])
        if len(changes) < 100:
            changes.append({"member": act.member, "member_sid": act.member_sid, "group": act.group_name,
                            "group_sid": act.group_sid, "scope": act.scope, "why_sensitive": act.sensitive,
                            "time": f"{act.time:%Y-%m-%dT%H:%M:%SZ}"})
        if any("(RID 51" in c["why_sensitive"] or "RID 527" in c["why_sensitive"] for c in changes):
            a.severity = "high"  # Domain/Enterprise/Schema Admins, Enterprise Key Admins
        a.details["actor"] = act.actor
        a.details["usual_for_actor"] = usual
        return (a,)

    def describe(self, a: Alert) -> str:
        changes = a.details.get("changes", [])
        parts = [f"{c['member']} to {c['group']}" for c in changes[:10]]
        text = (f"{a.details.get('actor', '?')} added {', '.join(parts)}"
                f"{' and more' if len(changes) > 10 else ''} on {', '.join(a.dcs)}: "
                f"{'these are sensitive groups' if len(changes) > 1 else 'a sensitive group'} "
                f"({'; '.join(sorted({c['why_sensitive'] for c in changes}))}).")
        removed = a.details.get("removed_again")
        if removed:
            text += f" Removed again soon after: {', '.join(removed)} (a quick add-remove can hide a grant)."
        text += " Confirm the change was approved; if not, remove the member and reset the actor's password."
        if a.learning:
            text += " (Raised during the learning period: this actor's usual changes are not known yet.)"
        return text
