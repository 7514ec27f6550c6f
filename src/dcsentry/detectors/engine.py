"""Runs the whole detection chain: events -> activities -> every detector -> alert updates."""

from __future__ import annotations

import dataclasses
import sys
from typing import TYPE_CHECKING

from ..activities import Activity
from ..activities.builder import ActivityBuilder
from ..activities.context import Account, DomainContext, Inventory
from ..activities.sensitive import SensitiveGroups
from ..alerts import SIGMA_PREFIX, Alert
from ..config import Detection
from ..model import WindowsEvent
from .account_enumeration import AccountEnumerationDetector
from .base import Configurable, Detector, Incidents
from .baseline import Baseline
from .brute_force import BruteForceDetector
from .dclog import dc_log_detectors
from .exclusions import Exclusions
from .honeytoken import HoneytokenDetector
from .password_spray import PasswordSprayDetector
from .remote_code_execution import RemoteCodeExecutionDetector
from .sensitive_group import SensitiveGroupDetector
from .suspicious_service import SuspiciousServiceDetector

if TYPE_CHECKING:
    from .sigma import SigmaRuleset

# the lists the console and API change while the service runs (store/settings.py)
RUNTIME_LISTS = ("honeytokens", "sensitive_groups", "exclude_sources", "replication_allowed",
                 "directory_writers_allowed", "sensitive_objects", "alert_exclusions")


class DetectionEngine:
    """Feed events; each call returns the alerts created or grown by it (same object = same alert)."""

    def __init__(self, cfg: Detection | None = None, baseline: Baseline | None = None, keep_alerts: bool = True,
                 sigma: SigmaRuleset | None = None, inventory: Inventory | None = None) -> None:
        cfg = cfg or Detection()
        self.cfg = cfg
        self.baseline = baseline or Baseline()
        self.ctx = DomainContext(inventory)
        self.builder = ActivityBuilder(SensitiveGroups(cfg.sensitive_groups), ctx=self.ctx)
        incidents = Incidents(cfg)
        dcs = self.builder.dcs
        self.detectors: list[Detector] = [
            BruteForceDetector(cfg, incidents, self.baseline),
            PasswordSprayDetector(cfg, incidents, self.baseline),
            AccountEnumerationDetector(cfg, incidents),
            HoneytokenDetector(cfg, incidents, self.ctx),
            SensitiveGroupDetector(cfg, incidents, self.baseline),
            SuspiciousServiceDetector(cfg, incidents, dcs),
            RemoteCodeExecutionDetector(cfg, incidents, dcs),
            *dc_log_detectors(cfg, incidents, self.baseline, self.ctx),
        ]
        self._routes: dict[type, list[Detector]] = {}  # activity kind -> the detectors that read it
        self.keep_alerts = keep_alerts  # `hunt` keeps every alert for its report; the service stores them instead
        self.alerts: dict[str, Alert] = {}  # every alert raised, by id
        self._kept: set[int] = set()  # id() of the alerts in self.alerts
        # Descriptions are written when an alert is handed on, not at each of its thousands of events.
        self._describe = {_type_of(d): d.describe for d in self.detectors if hasattr(d, "describe")}
        self._stale: dict[int, Alert] = {}
        self._exclusions: tuple[tuple[str, ...], Exclusions] = ((), Exclusions([]))
        self.activities = 0
        self.last_activities: list[Activity] = []  # those of the latest feed(), for the store
        self.sigma = None  # Sigma rules see every event, beside the detectors (detectors/sigma/)
        if sigma is None and cfg.sigma:
            from .sigma import load_rules

            sigma = load_rules(cfg.sigma)
        if sigma is not None:
            from .sigma import SigmaMatcher

            self.sigma = SigmaMatcher(sigma, cfg)

    def update_lists(self, eff: Detection) -> None:
        """Take the run-time lists of `eff` (honeytokens, sensitive groups, excluded sources, allow-
        lists, alert exclusions) while running: detectors are updated in place, so their counting
        windows and open incidents carry on across the change."""
        for name in RUNTIME_LISTS:
            setattr(self.cfg, name, list(getattr(eff, name)))
        self.builder.sensitive = SensitiveGroups(self.cfg.sensitive_groups)
        for det in self.detectors:
            if isinstance(det, Configurable):
                det.configure(self.cfg)

    def replace_inventory(self, accounts: list[Account]) -> int:
        """A new imported inventory (`dcsentry inventory import`): this engine's own copies, as
        readers update the accounts they see. What the stream taught the inventory stays."""
        return self.ctx.inventory.replace_imported([dataclasses.replace(a, spns=list(a.spns)) for a in accounts])

    def _run(self, acts: list[Activity]) -> list[Alert]:
        self.last_activities = acts
        if not acts:
            return acts  # type: ignore[return-value]  # the same empty list
        out: list[Alert] = []
        routes = self._routes
        for act in acts:
            self.activities += 1
            kind = type(act)
            dets = routes.get(kind)
            if dets is None:
                dets = routes[kind] = self._readers_of(kind)
            for det in dets:
                for alert in det.on_activity(act):
                    if self.keep_alerts and id(alert) not in self._kept:
                        self._keep(alert)
                    self._stale[id(alert)] = alert  # described and checked against the exclusions
                    out.append(alert)
            if getattr(act, "result", None) == "success":  # learn after detecting, so the success counts
                self.baseline.learn_auth(act.account_key, act.source, act.time.timestamp())  # type: ignore[union-attr]
        return out

    def _keep(self, alert: Alert) -> None:
        """Record an alert once, when it is new: its id hashes type, key and start, which was 8 % of
        `hunt` on the corpus when done at each of the thousands of events that grow it."""
        self._kept.add(id(alert))  # the alert stays in self.alerts, so its id() is never reused
        self.alerts.setdefault(alert.id, alert)

    def _readers_of(self, kind: type) -> list[Detector]:
        """The detectors an activity of this kind is handed to: those that say which kinds they read
        (`accepts`) and read it, and every detector that does not say (docs/performance.md: handing
        each ticket and logon to all detectors was the engine's largest cost)."""
        return [d for d in self.detectors
                if (acc := getattr(d, "accepts", None)) is None or issubclass(kind, acc)]

    def feed(self, ev: WindowsEvent) -> list[Alert]:
        out = self._run(self.builder.feed(ev))
        if self.sigma is not None:
            hits = self.sigma.feed(ev)
            if hits:
                for alert in hits:
                    if self.keep_alerts and id(alert) not in self._kept:
                        self._keep(alert)
                    self._stale[id(alert)] = alert
                out = out + hits
        return out

    def finish(self) -> list[Alert]:
        out = self._run(self.builder.flush())
        self.describe_pending()
        return out

    def describe_pending(self) -> None:
        """Bring the description of every alert that changed since the last call up to date, and
        suppress those the alert exclusions cover (detectors/exclusions.py)."""
        rules = tuple(self.cfg.alert_exclusions)
        if rules != self._exclusions[0]:  # the run-time list changed (runtime/settings.py)
            self._exclusions = (rules, Exclusions(list(rules)))
        for alert in self._stale.values():
            describe = self._describe.get(alert.type)
            if describe is not None:
                alert.description = describe(alert)
            elif self.sigma is not None and alert.type.startswith(SIGMA_PREFIX):
                alert.description = self.sigma.describe(alert)
            self._exclusions[1].mark(alert)
        self._stale.clear()


def _type_of(detector: object) -> str | None:
    return getattr(sys.modules[type(detector).__module__], "TYPE", None)
