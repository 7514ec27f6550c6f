"""Account enumeration: many account names that do not exist, tried from one source.

NTLM answers an unknown name with 0xC0000064 instead of 0xC000006A; Kerberos with "principal
unknown" (0x6) instead of "pre-authentication required/failed". Names from the same source that
got any other answer exist: the alert lists them, since the attacker now knows them too.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable

from ..activities import Activity, AuthActivity
from ..alerts import Alert, Evidence
from ..config import Detection
from .base import Incidents, Lru, add_unique, last_time, note_auth, plural, trim

TYPE = "account-enumeration"
KNOWN_PER_SOURCE = 1_000  # existing names remembered per source (newest kept)


def _newest(names: Lru[str, float]) -> float:
    return names[next(reversed(names))] if names else float("-inf")


class AccountEnumerationDetector:
    accepts = (AuthActivity,)  # the engine hands it nothing else

    def __init__(self, cfg: Detection, incidents: Incidents) -> None:
        self.cfg = cfg.account_enumeration
        self.configure(cfg)
        self.incidents = incidents
        self.unknown: Lru[str, deque[tuple[float, str, list[Evidence]]]] = Lru()  # source -> (t, name, evidence)
        # source -> name -> when it was last told "you exist": distinct names, not every logon (a deque of
        # every success per source grew the processor by ~230 MB per 10 minutes in the memory soak)
        self.known: Lru[str, Lru[str, float]] = Lru()

    def configure(self, cfg: Detection) -> None:
        """Sources never alerted on (`exclude_sources`, also changed at run time)."""
        self.exclude = {s.upper() for s in cfg.exclude_sources}

    def on_activity(self, act: Activity) -> Iterable[Alert]:
        if not isinstance(act, AuthActivity) or act.source.upper() in self.exclude:
            return ()
        src, t = act.source, act.time.timestamp()
        if act.result != "no-such-user":
            # read only for names told "you exist" within two windows of an alert's first unknown name
            horizon = t - 2 * self.cfg.window
            existing = self.known.touch(src, lambda: Lru(KNOWN_PER_SOURCE))
            existing.put(act.account, t)
            existing.drop_idle(horizon, float)
            self.known.drop_idle(horizon, _newest)
            a = self.incidents.current(TYPE, src, act.time)
            if a is not None and act.account not in a.details.get("existing_names", []):
                add_unique(a.details.setdefault("existing_names", []), act.account)
                a.revision += 1
                return (a,)
            return ()
        win = self.unknown.touch(src, lambda: deque(maxlen=50_000))
        win.append((t, act.account_key, act.evidence))
        trim(win, t, self.cfg.window)
        self.unknown.drop_idle(t - self.cfg.window, last_time)
        open_ = self.incidents.current(TYPE, src, act.time)
        if open_ is None:
            names = {n for _, n, _ in win}
            if len(names) < self.cfg.names:
                return ()
            a = self.incidents.raise_or_grow(TYPE, src, act.time, [e for _, _, evs in win for e in evs],
                                             start=act.time.fromtimestamp(win[0][0], act.time.tzinfo))
            a.count = len(win)
            a.details["unknown_names"] = sorted(names)[:200]
            known: dict[str, float] = self.known.get(src) or {}
            for name, kt in known.items():
                if kt >= win[0][0] - self.cfg.window:
                    add_unique(a.details.setdefault("existing_names", []), name)
        else:
            a = self.incidents.raise_or_grow(TYPE, src, act.time, act.evidence)
            a.count += 1
            add_unique(a.details.setdefault("unknown_names", []), act.account_key, cap=200)
        note_auth(a, act, src)
        return (a,)

    def describe(self, a: Alert) -> str:
        src = a.details.get("source", "?")
        unknown = a.details.get("unknown_names", [])
        existing = a.details.get("existing_names", [])
        text = (f"{src} tried {plural(a.count, 'account name')} over {a.protocol or 'NTLM'} "
                f"({len(unknown)} distinct names that do not exist, e.g. {', '.join(unknown[:5])}) between "
                f"{a.start:%Y-%m-%d %H:%M:%S} and {a.end:%H:%M:%S} UTC.")
        if existing:
            text += (f" {plural(len(existing), 'guessed name')} exist: {', '.join(existing[:20])}; "
                     "expect password guessing against them next.")
        else:
            text += " None of the guessed names matched an existing account."
        return text
