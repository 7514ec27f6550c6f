"""Password spray (horizontal): few passwords against many accounts from one source.

Per source, the accounts that got a wrong password in a fast window and in a slow one (a day:
sprays wait between rounds to stay under lockout). It is a spray when enough distinct accounts
are hit with only a few tries each; many tries on few accounts is brute force instead. A later
success from that source for a sprayed account is a guessed account.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass

from ..activities import Activity, AuthActivity
from ..activities.status import PASSWORD_RIGHT
from ..alerts import Alert, Evidence
from ..config import Detection
from ..model import iso_utc
from .base import Incidents, Lru, add_unique, last_time, note_auth, plural
from .baseline import Baseline
from .brute_force import BAD_PASSWORD

TYPE = "password-spray"
_MAX_ACCOUNTS = 20_000


@dataclass(slots=True)
class AccountTries:
    """The wrong passwords one source gave for one account."""

    first: float  # epoch of the first try of the current run (a pause over slow_window starts a new run)
    last: float  # epoch of the latest try
    tries: int  # tries in the current run
    name: str  # the account as the event spelt it


class PasswordSprayDetector:
    accepts = (AuthActivity,)  # the engine hands it nothing else

    def __init__(self, cfg: Detection, incidents: Incidents, baseline: Baseline) -> None:
        self.cfg = cfg.password_spray
        self.configure(cfg)
        self.incidents = incidents
        self.baseline = baseline
        self.attacked: Lru[str, set[str]] = Lru()  # source -> account keys of its open incident
        self.sources: Lru[str, dict[str, AccountTries]] = Lru()  # source -> account key -> its tries
        # source -> (t, evidence) of its latest tries: the evidence a new alert shows
        self.tried: Lru[str, deque[tuple[float, list[Evidence]]]] = Lru()
        self.max_evidence = cfg.max_evidence

    def configure(self, cfg: Detection) -> None:
        """Sources never alerted on (`exclude_sources`, also changed at run time)."""
        self.exclude = {s.upper() for s in cfg.exclude_sources}

    def _stats(self, hits: dict[str, AccountTries], now: float, span: float, prune: bool = False) -> tuple[int, int]:
        """Accounts tried within `span` and their tries; with `prune`, those tried before it are
        forgotten (nothing reads them again: a new try starts a new run)."""
        accounts = tries = 0
        stale: list[str] = []
        for k, h in hits.items():
            if h.last >= now - span:
                accounts += 1
                tries += h.tries
            elif prune:
                stale.append(k)
        for k in stale:
            del hits[k]
        return accounts, tries

    def on_activity(self, act: Activity) -> Iterable[Alert]:
        if not isinstance(act, AuthActivity) or act.source.upper() in self.exclude:
            return ()
        src = act.source
        if act.result in PASSWORD_RIGHT:  # expired/must-change/... answers also prove the password right
            a = self.incidents.current(TYPE, src, act.time)
            if a is None or act.account not in a.accounts:
                seen = self.sources.get(src)
                typo = seen.get(act.account_key) if seen else None
                if seen and typo is not None and act.time.timestamp() - typo.last <= self.cfg.typo_window:
                    del seen[act.account_key]  # the user mistyped, then got it right: not a sprayed account
                return ()
            guessed = a.details.setdefault("guessed_accounts", [])
            if act.account in guessed:
                return ()
            add_unique(guessed, act.account)
            a.details.setdefault("guessed_at", {})[act.account] = iso_utc(act.time)  # incidents: used only after
            a.outcome, a.severity, a.revision = "Success", "high", a.revision + 1
            return (a,)
        if act.result not in BAD_PASSWORD:
            return ()
        if self.baseline.learned_auth(act.account_key, src):
            return ()  # a typo by someone who normally logs on from here (a shared terminal server)
        t = act.time.timestamp()
        hits = self.sources.touch(src, dict)
        tried = self.tried.touch(src, lambda: deque(maxlen=self.max_evidence))
        tried.append((t, act.evidence))
        for idle in self.tried.drop_idle(t - self.cfg.slow_window, last_time):  # no try for a day
            self.sources.pop(idle, None)
            self.attacked.pop(idle, None)
        h = hits.get(act.account_key)
        if h is None:
            if len(hits) >= _MAX_ACCOUNTS:
                hits.pop(next(iter(hits)))
            hits[act.account_key] = AccountTries(t, t, 1, act.account)
        else:
            if t - h.last > self.cfg.slow_window:
                h.first, h.tries = t, 0
            h.last = t
            h.tries += 1
        open_ = self.incidents.current(TYPE, src, act.time)
        if open_ is None:
            fast, fast_tries = self._stats(hits, t, self.cfg.window)
            slow, slow_tries = self._stats(hits, t, self.cfg.slow_window, prune=True)
            hit_fast = fast >= self.cfg.accounts and fast_tries / fast <= self.cfg.max_per_account
            hit_slow = slow >= self.cfg.slow_accounts and slow_tries / slow <= self.cfg.max_per_account
            if not (hit_fast or hit_slow):
                return ()
            span = self.cfg.window if hit_fast else self.cfg.slow_window
            recent = [k for k, h in hits.items() if h.last >= t - span]
            start = min(hits[k].first for k in recent)
            learning = self.baseline.clock.learning("domain", act.time, self.cfg.learning_period)
            evidence = [e for tt, evs in tried if tt >= start for e in evs]  # the tries it counts, not the last
            a = self.incidents.raise_or_grow(TYPE, src, act.time, evidence,
                                             start=act.time.fromtimestamp(start, act.time.tzinfo), learning=learning)
            a.count = sum(hits[k].tries for k in recent)
            attacked = self.attacked.touch(src, set)
            attacked.clear()
            attacked.update(recent)
            a.details["attacked_accounts"] = len(recent)
            a.details["pace"] = "fast" if hit_fast else "slow"
            for k in recent:
                add_unique(a.accounts, hits[k].name, cap=500)
        else:
            a = self.incidents.raise_or_grow(TYPE, src, act.time, act.evidence)
            a.count += 1
            attacked = self.attacked.touch(src, set)
            attacked.add(act.account_key)
            a.details["attacked_accounts"] = len(attacked)
        add_unique(a.accounts, act.account, cap=500)
        note_auth(a, act, src)
        return (a,)

    def describe(self, a: Alert) -> str:
        src = a.details.get("source", "?")
        n = a.details.get("attacked_accounts", len(a.accounts))
        shown = ", ".join(a.accounts[:10]) + (", ..." if len(a.accounts) > 10 else "")
        text = (f"Password spray from {src} over {a.protocol or 'NTLM'}: {plural(a.count, 'wrong password')} "
                f"across {plural(n, 'account')} ({shown}) between {a.start:%Y-%m-%d %H:%M:%S} and "
                f"{a.end:%H:%M:%S} UTC ({a.details.get('pace', 'fast')} pace).")
        guessed = a.details.get("guessed_accounts")
        if guessed:
            text += (f" Guessed: {', '.join(guessed)} logged on successfully from {src} afterwards; "
                     "reset their passwords.")
        else:
            text += f" No attempt succeeded so far; contain {src} and look for the spraying tool."
        if a.learning:
            text += " (Raised during the learning period.)"
        return text
