"""Suspicious remote service installation (reference B7; XDR xdr_SuspiciousRemoteServiceInstallation):
a service installed on a host by an account logged on to it over the network from another machine,
whatever the service runs (PsExec, Impacket, `sc \\\\host create` with stolen credentials).

- A (Security): the 4697's SubjectLogonId is a LogonType 3 logon from another address on that host
  (`ServiceCreation.session`, joined by the builder; a 4697 after its 7045 comes as `twin`).
- B (System): a 7045 within `window` seconds after a write to that host's `\\\\*\\IPC$\\svcctl` pipe
  (5145, `PipeWrite`) from another address; also a 4697 whose 4624 is missing, under the writing logon.

Deployment tools (SCCM, PDQ) install the same services from the same servers with the same accounts:
(installer, source, service) seen while learning are quiet afterwards; allow-listed sources never alert.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable

from ...activities import Activity, Logon, ServiceCreation
from ...activities.context import DomainContext, account_name
from ...activities.dclog.shares import PipeWrite
from ...alerts import Alert
from ...config import Detection
from ..base import Incidents, Lru, add_unique, last_time, trim
from ..baseline import Baseline

TYPE = "remote-service-installation"

_START = {"0": "boot start", "1": "system start", "2": "auto start", "3": "demand start", "4": "disabled"}


class RemoteServiceDetector:
    accepts = (PipeWrite, ServiceCreation)  # the engine hands it nothing else

    def __init__(self, cfg: Detection, incidents: Incidents, baseline: Baseline, ctx: DomainContext) -> None:
        self.cfg = cfg.remote_service
        self.allowed = {s.strip().lower() for s in [*self.cfg.allowed_sources, *cfg.exclude_sources] if s.strip()}
        self.incidents = incidents
        self.baseline = baseline
        self.ctx = ctx
        self.learned: Lru[tuple[str, str, str], float] = baseline.table("remote_services")  # -> last seen
        # host -> (t, pipe write) of its pipe writes within the window
        self.pipe_writes: Lru[str, deque[tuple[float, PipeWrite]]] = Lru(50_000)

    def on_activity(self, act: Activity) -> Iterable[Alert]:
        if type(act) is PipeWrite:
            if act.source_ip and act.source_ip != "localhost":
                q = self.pipe_writes.touch(act.host, deque)
                t = act.time.timestamp()
                q.append((t, act))
                trim(q, t, self.cfg.window)
                self.pipe_writes.drop_idle(t - self.cfg.window, last_time)
            return ()
        if type(act) is not ServiceCreation:
            return ()
        s = act.session
        if s is not None and s.remote:
            return self._alert(act, s.source, s.account or act.creator_name or "", s, "logon")
        if act.twin or s is not None:
            return ()  # a 4697 under a local session
        pw = self._pipe_write(act)
        if pw is None or (act.logon_id and pw.logon_id.lower() != act.logon_id.lower()):
            return ()  # a 4697 without its 4624 counts only under the logon that wrote to svcctl
        return self._alert(act, pw.source_ip, pw.actor, pw.session, "svcctl", pw)

    def _pipe_write(self, act: ServiceCreation) -> PipeWrite | None:
        q = self.pipe_writes.get(act.host)
        if not q:
            return None
        t = act.time.timestamp()
        for t0, pw in reversed(q):
            if t - self.cfg.window <= t0 <= t + 2.0:  # the 7045 follows the pipe write (2 s of clock skew)
                return pw
        return None

    def _alert(self, act: ServiceCreation, source: str, installer: str, session: Logon | None, how: str,
               pipe: PipeWrite | None = None) -> Iterable[Alert]:
        src = source.lower()
        if src in self.allowed or (session is not None and session.source_host.lower() in self.allowed):
            return ()
        triple = (account_name(installer) or installer.lower(), src, act.name.lower())
        learning = self.baseline.clock.learning("remote-service", act.time, self.cfg.learning_period)
        if triple in self.learned and not learning:
            self.learned[triple] = act.time.timestamp()
            return ()
        if learning:
            self.learned[triple] = act.time.timestamp()
        key = f"{act.host}|{src}|{act.name.lower()}"
        grown = self.incidents.current(TYPE, key, act.time) is not None
        twin = act.twin and grown  # a 4697 after its 7045 already alerted: the same install, not evidence again
        a = self.incidents.raise_or_grow(TYPE, key, act.time, () if twin else act.evidence, learning=learning)
        if not grown:  # what made it remote: the network logon (4624) or the svcctl write (5145)
            extra = pipe.evidence if pipe is not None else session.evidence if session is not None else []
            a.evidence.extend(extra[: max(0, self.incidents.max_evidence - len(a.evidence))])
        if not twin:
            a.count += 1
        add_unique(a.accounts, installer)
        add_unique(a.hosts, source)
        if act.host in self.ctx.dcs:
            add_unique(a.dcs, act.host)
        d = a.details
        d.update({"service": act.name, "image_path": act.image_path[:2000], "start_type": act.start_type,
                  "service_account": act.account, "target": act.host, "source": source, "installer": installer})
        d.setdefault("evidence_path", "4697 + 4624 logon session" if how == "logon"
                     else "5145 svcctl write + service install")
        if session is not None:
            d["session"] = {"source_ip": session.source_ip, "source_host": session.source_host,
                            "package": session.package, "logon_type": session.logon_type,
                            "key_length": session.key_length, "logon_id": session.logon_id}
            a.protocol = session.package or a.protocol
            if session.package.upper() == "NTLM" and session.key_length == "0":
                d["keyless_ntlm"] = True  # reference B7: the mark of a passed hash
        a.severity = "high" if act.host in self.ctx.dcs or d.get("keyless_ntlm") else "medium"
        if a.revision == 0:
            a.description = self.describe(a)
        return (a,)

    def describe(self, a: Alert) -> str:
        d = a.details
        s = d.get("session") or {}
        via = (f" over a {s.get('package')} network logon" if s.get("package") else "") + (
            " without a session key (NTLM KeyLength 0: a passed hash or a relay)" if d.get("keyless_ntlm") else "")
        how = ("its 4697 runs under that network logon" if d.get("evidence_path", "").startswith("4697")
               else "the service control manager's pipe (svcctl) was written to from there just before the install")
        on = f"the domain controller {d.get('target')}" if a.dcs else d.get("target")
        learn = (" dcsentry is still learning deployment tools (installer, source, service): a recurring "
                 "SCCM/PDQ install will be learned, or allow-list its source ([detection.remote_service] "
                 "allowed_sources)." if a.learning else "")
        return (f"{d.get('installer') or 'An unknown account'} installed the service {d.get('service')} on {on} "
                f"remotely from {d.get('source')}{via} ({how}; {a.count}x). It runs "
                f"\"{str(d.get('image_path'))[:200]}\" as {d.get('service_account') or 'LocalSystem'} "
                f"({_START.get(str(d.get('start_type')), d.get('start_type'))}). Remote service "
                f"creation is how PsExec and Impacket run code with stolen credentials: if {d.get('source')} is "
                f"not an admin workstation or deployment server, isolate it and {on}, and reset the installer's "
                f"password.{learn}")
