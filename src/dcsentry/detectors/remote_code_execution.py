"""Remote code execution attempt: a service created by a remote-execution tool (PsExec, PAExec,
RemCom, Impacket smbexec/psexec) — the event-side trace of remote execution against a host."""

from __future__ import annotations

from collections.abc import Iterable

from ..activities import Activity, ServiceCreation
from ..alerts import Alert
from ..config import Detection
from .base import Incidents, add_unique
from .service_indicators import remote_exec
from .suspicious_service import creator

TYPE = "remote-code-execution"


class RemoteCodeExecutionDetector:
    accepts = (ServiceCreation,)  # the engine hands it nothing else

    def __init__(self, cfg: Detection, incidents: Incidents, dcs: set[str]) -> None:
        self.incidents = incidents
        self.dcs = dcs

    def on_activity(self, act: Activity) -> Iterable[Alert]:
        if not isinstance(act, ServiceCreation) or act.twin:
            return ()
        if not remote_exec(act.name, act.image_path):
            return ()
        a = self.incidents.raise_or_grow(TYPE, act.host, act.time, act.evidence)
        a.count += 1
        a.outcome = "Success"
        add_unique(a.hosts, act.host)
        add_unique(a.accounts, creator(act))
        on_dc = act.host in self.dcs
        if on_dc:
            add_unique(a.dcs, act.host)
            a.severity = "high"
        lines = a.details.setdefault("activities", [])
        add_unique(lines, f"Successful remote creation of {act.name} ({act.image_path[:120]}) by {creator(act)}",
                   cap=50)
        a.description = (f"The following remote execution attempts were performed on "
                         f"{'the domain controller ' if on_dc else ''}{act.host}: " + "; ".join(lines[:5])
                         + ". If this account and its source are not allowed to run commands remotely here, "
                         "treat it as lateral movement.")
        return (a,)
