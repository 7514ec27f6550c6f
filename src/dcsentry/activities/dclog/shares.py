"""5145 "A network share object was checked" (reference A9): only the write to the service control
manager's pipe (`\\\\*\\IPC$`, `svcctl`, WriteData) becomes an activity. That is how PsExec-style tools
and `sc \\\\host create` reach a remote host's SCM; a 7045 on the host seconds later is then a remote
install (B7 B). Detailed File Share auditing logs every file touched: everything else is dropped
after two dictionary reads.
"""

from __future__ import annotations

from ...model import WindowsEvent
from .. import Activity, DcActivity, evidence_of
from ..readers import Stateless
from .fields import ip, number, short, sid

WRITE_DATA = 0x2  # %%4417 WriteData (or AddFile)


class PipeWrite(DcActivity, kw_only=True):
    """A client wrote to a named pipe of a host's IPC$ share (only `svcctl` is kept)."""

    share: str = ""
    pipe: str = ""  # RelativeTargetName, lower case
    source_ip: str = ""  # IpAddress of the SMB client
    access_mask: int = 0

    kind = "share"

    @property
    def subject(self) -> str:
        return f"{self.share}\\{self.pipe}"

    @property
    def source(self) -> str:
        return self.source_ip or super().source


class ShareReader(Stateless):
    ids = frozenset({5145})
    pipes = frozenset({"svcctl"})

    def feed(self, ev: WindowsEvent) -> list[Activity]:
        d = ev.data
        pipe = d.get("RelativeTargetName", "").strip().lower()
        if pipe not in self.pipes or not d.get("ShareName", "").upper().endswith("IPC$"):
            return []
        mask = number(d.get("AccessMask")) or 0
        rights = d.get("AccessList", "")
        if not mask & WRITE_DATA and "%%4417" not in rights and "WriteData" not in rights:
            return []
        host = short(ev.computer)
        logon_id = d.get("SubjectLogonId", "")
        return [PipeWrite(
            time=ev.time, host=host, actor=d.get("SubjectUserName", ""), actor_sid=sid(d.get("SubjectUserSid")),
            actor_domain=d.get("SubjectDomainName", ""), logon_id=logon_id,
            session=self.ctx.sessions.get(host, logon_id, ev.time.timestamp()), evidence=[evidence_of(ev)],
            share=d.get("ShareName", "").strip(), pipe=pipe, source_ip=ip(d.get("IpAddress")), access_mask=mask)]
