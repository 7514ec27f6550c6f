"""Suspicious service creation (7045, or 4697): a service whose command line or name scores as
malicious (see service_indicators). One alert per host grows while services keep coming."""

from __future__ import annotations

from collections.abc import Iterable

from ..activities import Activity, ServiceCreation
from ..alerts import Alert
from ..config import Detection
from .base import Incidents, add_unique
from .service_indicators import score

TYPE = "suspicious-service-creation"


def creator(act: ServiceCreation) -> str:
    return act.creator_name or act.creator_sid or "An unknown account"


class SuspiciousServiceDetector:
    accepts = (ServiceCreation,)  # the engine hands it nothing else

    def __init__(self, cfg: Detection, incidents: Incidents, dcs: set[str]) -> None:
        self.threshold = cfg.service_creation.score
        self.incidents = incidents
        self.dcs = dcs

    def on_activity(self, act: Activity) -> Iterable[Alert]:
        if not isinstance(act, ServiceCreation) or act.twin:
            return ()
        points, reasons = score(act.name, act.image_path)
        if points < self.threshold:
            return ()
        a = self.incidents.raise_or_grow(TYPE, act.host, act.time, act.evidence)
        a.count += 1
        add_unique(a.hosts, act.host)
        add_unique(a.accounts, creator(act))
        if act.host in self.dcs:
            add_unique(a.dcs, act.host)
        services = a.details.setdefault("services", [])
        if len(services) < 100:
            services.append({"name": act.name, "image_path": act.image_path, "account": act.account,
                             "start_type": act.start_type, "score": points, "reasons": reasons})
        if points >= 6 or a.count >= 10:
            a.severity = "high"
        first = services[0]
        more = f" and {a.count - 1} more service(s)" if a.count > 1 else ""
        a.description = (f"{creator(act)} created the service {first['name']} on {act.host} to run "
                         f"\"{first['image_path'][:200]}\"{more}, in order to execute potentially malicious "
                         f"commands ({'; '.join(first['reasons'])}). Check whether the service and the account "
                         "are expected on this host; if not, treat the host as compromised.")
        return (a,)
