"""Brute force: many wrong passwords from one source, against one account or a few.

Two rules, one alert type (reference/dc-log-alerts.md B6, MDI counts the source):
- per account (vertical): `threshold` wrong passwords for one (source, account) within `window`;
- per source over a few accounts: `source_threshold` wrong passwords from one source within
  `window`, over two or more accounts, with more tries per account on average than a spray makes
  (`password_spray.max_per_account`). Each account stays under the per-account threshold and there
  are too few of them (or too many tries each) for a spray: e.g. 3 accounts x 8 guesses.
An alert opens at the threshold and grows while the guessing goes on; a source-wide alert takes
every later guess from its source (no per-account twin). A success afterwards for an attacked
account from that source means the password may have been guessed: the alert says so, turns high.

Quiet on purpose: a few failures then a success of the same account (a typo) are taken out of the
source's count; an account that normally signs in from the source (a stale saved credential, a
shared terminal server) is not counted per source and makes a per-account alert low.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable

from ..activities import Activity, AuthActivity
from ..activities.status import PASSWORD_RIGHT
from ..alerts import Alert, Evidence
from ..config import Detection
from ..model import iso_utc
from .base import Incidents, Lru, add_unique, in_window, last_time, note_auth, plural, trim
from .baseline import Baseline

BAD_PASSWORD = frozenset({"wrong-password", "bad-credentials"})
# Guessing goes on after the account locks: those answers count as attempts too.
GUESSES = BAD_PASSWORD | {"locked", "revoked"}
TYPE = "brute-force"
ANY = "*"  # the account part of a source-wide incident's key
_MAX_HELD = 5000  # failures held per source window (a flood keeps the newest)
_MAX_LISTED = 100  # accounts listed with their counts in one alert


class SourceWindow:
    """The wrong passwords of one source within the window: (t, account key, name, evidence,
    protocol), with the count per account and the total kept as they come and go."""

    __slots__ = ("items", "counts", "total")

    def __init__(self) -> None:
        self.items: deque = deque()
        self.counts: dict[str, int] = {}
        self.total = 0

    def add(self, t: float, key: str, name: str, evidence: list, protocol: str) -> None:
        self.items.append((t, key, name, evidence, protocol))
        self.counts[key] = self.counts.get(key, 0) + 1
        self.total += 1
        if len(self.items) > _MAX_HELD:
            self._drop(self.items.popleft())

    def trim(self, now: float, span: float) -> None:
        items = self.items
        while items and not in_window(items[0][0], now, span):  # as base.trim, keeping the counts
            self._drop(items.popleft())

    def purge(self, key: str) -> None:
        """Forget one account's failures (a typo that ended in success, or its own alert took them)."""
        if key in self.counts:
            self.items = deque(i for i in self.items if i[1] != key)
            self.total -= self.counts.pop(key)

    def _drop(self, item: tuple) -> None:
        key = item[1]
        n = self.counts[key] - 1
        self.total -= 1
        if n:
            self.counts[key] = n
        else:
            del self.counts[key]


def _last_of(src: SourceWindow) -> float:
    return last_time(src.items)


class BruteForceDetector:
    accepts = (AuthActivity,)  # the engine hands it nothing else

    def __init__(self, cfg: Detection, incidents: Incidents, baseline: Baseline) -> None:
        self.cfg = cfg.brute_force
        self.spray_max = cfg.password_spray.max_per_account
        self.configure(cfg)
        self.incidents = incidents
        self.baseline = baseline
        self.windows: Lru[str, deque[tuple[float, list[Evidence]]]] = Lru()  # "source|account" -> (t, evidence)
        self.sources: Lru[str, SourceWindow] = Lru()  # source -> its wrong passwords in the window

    def configure(self, cfg: Detection) -> None:
        """Sources never alerted on (`exclude_sources`, also changed at run time)."""
        self.exclude = {s.upper() for s in cfg.exclude_sources}

    def on_activity(self, act: Activity) -> Iterable[Alert]:
        if not isinstance(act, AuthActivity) or act.source.upper() in self.exclude:
            return ()
        key = f"{act.source}|{act.account_key}"
        if act.result in PASSWORD_RIGHT:  # expired/must-change/... answers also prove the password right
            return self._success(act, key)
        if act.result not in GUESSES:
            return ()
        usual = self.baseline.learned_auth(act.account_key, act.source)
        if not usual:
            wide = self.incidents.current(TYPE, f"{act.source}|{ANY}", act.time)
            if wide is not None:  # the source's guessing is one incident already: it grows
                return (self._grow_source(wide, act),)
        out = self._per_account(act, key, usual)
        if out or usual:
            return out
        return self._per_source(act)

    # -- one account ----------------------------------------------------------------------------
    def _per_account(self, act: AuthActivity, key: str, usual: bool) -> tuple[Alert, ...]:
        t = act.time.timestamp()
        win = self.windows.touch(key, deque)
        win.append((t, act.evidence))
        trim(win, t, self.cfg.window)
        self.windows.drop_idle(t - self.cfg.window, last_time)  # pairs that failed once, long ago
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
            src = self.sources.get(act.source)
            if src is not None:  # ... and no longer to the source's count
                src.purge(act.account_key)
        else:
            a.count += 1
        add_unique(a.accounts, act.account)
        note_auth(a, act, act.source)
        self._server(a, act)
        a.details["account_normally_used_from_source"] = usual
        if usual and a.outcome != "Success":
            a.severity = "low"
        return (a,)

    # -- a few accounts, one source ---------------------------------------------------------------
    def _per_source(self, act: AuthActivity) -> tuple[Alert, ...]:
        t = act.time.timestamp()
        src = self.sources.touch(act.source, SourceWindow)
        src.add(t, act.account_key, act.account, act.evidence, act.protocol)
        src.trim(t, self.cfg.window)
        self.sources.drop_idle(t - self.cfg.window, _last_of)
        accounts = len(src.counts)
        if src.total < self.cfg.source_threshold or accounts < 2 or src.total <= self.spray_max * accounts:
            return ()
        learning = self.baseline.clock.learning("domain", act.time, self.cfg.learning_period)
        first = src.items[0][0]
        a = self.incidents.raise_or_grow(TYPE, f"{act.source}|{ANY}", act.time,
                                         [e for item in src.items for e in item[3]],
                                         start=act.time.fromtimestamp(first, act.time.tzinfo), learning=learning)
        a.count = src.total
        a.details["scope"] = "source"
        per = a.details.setdefault("per_account", {})
        names: dict[str, str] = {}
        protocols = set()
        for _, k, name, _, protocol in src.items:
            names.setdefault(k, name)
            protocols.add(protocol)
        for k, n in sorted(src.counts.items(), key=lambda kv: -kv[1]):
            if len(per) < _MAX_LISTED:
                per[names[k]] = n
            add_unique(a.accounts, names[k])
        note_auth(a, act, act.source)
        if len(protocols) > 1:
            a.protocol = "Kerberos, NTLM"
        self._server(a, act)
        self.sources.pop(act.source, None)  # the incident holds them now; later guesses grow it
        return (a,)

    def _grow_source(self, a: Alert, act: AuthActivity) -> Alert:
        a = self.incidents.raise_or_grow(TYPE, a.key, act.time, act.evidence)
        a.count += 1
        per = a.details.setdefault("per_account", {})
        if act.account in per or len(per) < _MAX_LISTED:
            per[act.account] = per.get(act.account, 0) + 1
        add_unique(a.accounts, act.account)
        note_auth(a, act, act.source)
        self._server(a, act)
        return a

    # -- a right password ---------------------------------------------------------------------------
    def _success(self, act: AuthActivity, key: str) -> tuple[Alert, ...]:
        a = self.incidents.current(TYPE, key, act.time)
        if a is None:
            wide = self.incidents.current(TYPE, f"{act.source}|{ANY}", act.time)
            if wide is not None and act.account_key in {x.lower() for x in wide.accounts}:
                a = wide
        if a is None:
            src = self.sources.get(act.source)
            if src is not None and 0 < src.counts.get(act.account_key, 0) <= self.spray_max:
                src.purge(act.account_key)  # a user who mistyped, then got it right: not guessing
            return ()
        guessed = a.details.setdefault("guessed_accounts", [])
        if act.account in guessed:
            return ()
        add_unique(guessed, act.account)
        a.details.setdefault("guessed_at", {})[act.account] = iso_utc(act.time)  # incidents: used only after
        if a.outcome == "Success" and a.details.get("scope") != "source":
            return ()
        a.outcome = "Success"
        a.details.setdefault("guessed_with", act.result)
        a.severity = "high"
        a.revision += 1
        a.end = max(a.end, act.time)
        a.evidence.extend(act.evidence[:max(0, self.incidents.max_evidence - len(a.evidence))])
        return (a,)

    @staticmethod
    def _server(a: Alert, act: AuthActivity) -> None:
        if act.server:
            add_unique(a.hosts, act.server)
            a.details.setdefault("servers", [])
            add_unique(a.details["servers"], act.server)

    # -- text -----------------------------------------------------------------------------------------
    def describe(self, a: Alert) -> str:
        src = a.details.get("source", "?")
        via = a.protocol or "NTLM"
        if a.details.get("scope") == "source":
            per = a.details.get("per_account", {})
            listed = ", ".join(f"{name} ({n})" for name, n in per.items())
            text = (f"{plural(a.count, 'wrong password')} tried against {plural(len(a.accounts), 'account')} from "
                    f"{src} over {via} between {a.start:%Y-%m-%d %H:%M:%S} and {a.end:%H:%M:%S} UTC: {listed}. "
                    "Each account stays under the per-account threshold, but the source keeps guessing")
        else:
            account = a.accounts[0] if a.accounts else "?"
            text = (f"{plural(a.count, 'wrong password')} tried against {account} from {src} over {via} "
                    f"between {a.start:%Y-%m-%d %H:%M:%S} and {a.end:%H:%M:%S} UTC")
        servers = a.details.get("servers")
        if servers:
            text += f", targeting {', '.join(servers)}"
        text += "."
        if a.outcome == "Success":
            result = a.details.get("guessed_with", "success")
            how = "" if result == "success" else f" ({result})"
            who = ", ".join(a.details.get("guessed_accounts", [])) or (a.accounts[0] if a.accounts else "?")
            text += (f" A logon of {who} from {src} with the right password followed{how}: the password may "
                     f"have been guessed; reset it and investigate {src}.")
        elif a.details.get("account_normally_used_from_source"):
            text += f" {a.accounts[0]} normally authenticates from {src}: check for a stale saved credential."
        else:
            text += f" Investigate {src} and the tool running there."
        if a.learning:
            text += " (Raised during the learning period.)"
        return text
