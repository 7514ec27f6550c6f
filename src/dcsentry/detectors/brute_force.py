"""Brute force (vertical): many wrong passwords against one account from one source.

Counts wrong-password failures per (source, account) in a sliding window; at `threshold` an
alert opens and then grows while the guessing goes on. A success for that account from that
source afterwards means the password may have been guessed: the alert says so and turns high.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable

from ..activities import Activity, AuthActivity
from ..activities.status import PASSWORD_RIGHT
from ..alerts import Alert
from ..config import Detection
from .base import Incidents, Lru, add_unique, note_auth, plural, trim
from .baseline import Baseline

BAD_PASSWORD = frozenset({"wrong-password", "bad-credentials"})
# Guessing goes on after the account locks: those answers count as attempts too.
GUESSES = BAD_PASSWORD | {"locked", "revoked"}
TYPE = "brute-force"


class BruteForceDetector:
    def __init__(self, cfg: Detection, incidents: Incidents, baseline: Baseline) -> None:
        self.cfg = cfg.brute_force
        self.exclude = {s.upper() for s in cfg.exclude_sources}
        self.incidents = incidents
        self.baseline = baseline
        self.windows: Lru = Lru()

    def on_activity(self, act: Activity) -> Iterable[Alert]:
        if not isinstance(act, AuthActivity) or act.source.upper() in self.exclude:
            return ()
        key = f"{act.source}|{act.account_key}"
        if act.result in PASSWORD_RIGHT:  # expired/must-change/... answers also prove the password right
            a = self.incidents.current(TYPE, key, act.time)
            if a is None or a.outcome == "Success":
                return ()
            a.outcome = "Success"
            a.details["guessed_with"] = act.result
            a.severity = "high"
            a.revision += 1
            a.end = max(a.end, act.time)
            a.evidence.extend(act.evidence[:max(0, self.incidents.max_evidence - len(a.evidence))])
            return (a,)
        if act.result not in GUESSES:
            return ()
        t = act.time.timestamp()
        win: deque = self.windows.touch(key, deque)  # type: ignore[assignment]
        win.append((t, act.evidence))
        trim(win, t, self.cfg.window)
        open_ = self.incidents.current(TYPE, key, act.time)
        if open_ is None and len(win) < self.cfg.threshold:
            return ()
        learning = self.baseline.clock.learning("domain", act.time, self.cfg.learning_period)
        # a new alert carries the evidence of every attempt it counts, not only the last one
        evidence = act.evidence if open_ is not None else [e for _, evs in win for e in evs]
        a = self.incidents.raise_or_grow(TYPE, key, act.time, evidence, learning=learning)
        if open_ is None:  # the attempts that crossed the threshold belong to the alert
            a.start = act.time.fromtimestamp(win[0][0], act.time.tzinfo)
            a.count = len(win)
        else:
            a.count += 1
        add_unique(a.accounts, act.account)
        note_auth(a, act, act.source)
        if act.server:
            add_unique(a.hosts, act.server)
            a.details.setdefault("servers", [])
            add_unique(a.details["servers"], act.server)
        usual = self.baseline.learned_auth(act.account_key, act.source)
        a.details["account_normally_used_from_source"] = usual
        if usual and a.outcome != "Success":
            a.severity = "low"
        return (a,)

    def describe(self, a: Alert) -> str:
        src = a.details.get("source", "?")
        account = a.accounts[0] if a.accounts else "?"
        via = a.protocol or "NTLM"
        text = (f"{plural(a.count, 'wrong password')} tried against {account} from {src} over {via} "
                f"between {a.start:%Y-%m-%d %H:%M:%S} and {a.end:%H:%M:%S} UTC")
        servers = a.details.get("servers")
        if servers:
            text += f", targeting {', '.join(servers)}"
        text += "."
        if a.outcome == "Success":
            result = a.details.get("guessed_with", "success")
            how = "" if result == "success" else f" ({result})"
            text += (f" A logon of {account} from {src} with the right password followed{how}: the password may "
                     f"have been guessed; reset it and investigate {src}.")
        elif a.details.get("account_normally_used_from_source"):
            text += f" {account} normally authenticates from {src}: check for a stale saved credential."
        else:
            text += f" Investigate {src} and the tool running there."
        if a.learning:
            text += " (Raised during the learning period.)"
        return text
