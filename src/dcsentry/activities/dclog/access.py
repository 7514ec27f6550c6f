"""4662 "An operation was performed on an object": a `DirectoryAccess` (reference A1).

Logged where a SACL matches: by the DC's directory service (ObjectServer `DS`, so the logging
computer is a DC: DCSync's Control Access on the domain root, honeytoken reads), for LSA secrets
(the DPAPI backup key) and for WMI namespaces (any host). `AccessMask 0x0` events are plain reads
that a SACL on "any access" logs by the thousand: dropped before any other parsing.
"""

from __future__ import annotations

from ...model import WindowsEvent
from .. import Activity, DcActivity, evidence_of
from ..readers import Stateless
from .fields import guid, items, number, short, sid


class DirectoryAccess(DcActivity, kw_only=True):
    """One access to a directory object (or LSA secret) by an account, on a DC."""

    object_server: str = ""  # DS, or "Security Account Manager" / LSA for secrets
    object_type: str = ""  # class schemaIDGUID (lower case, no braces) or the rendered class name
    object_name: str = ""  # objectGUID (lower case, no braces), DN when rendered, or the secret's path
    access_mask: int = 0
    rights: list[str] = []  # Properties: right / property / class GUIDs (lower case) and %%77xx codes
    operation: str = ""  # OperationType (Object Access)

    kind = "access"

    @property
    def subject(self) -> str:
        return self.object_name


def _token(t: str) -> str:
    """A Properties item as a key: GUIDs without braces/`%`, lower case; codes (`%%7688`) kept."""
    if t.startswith("%%"):
        return t
    return guid(t)


class AccessReader(Stateless):
    ids = frozenset({4662})

    def feed(self, ev: WindowsEvent) -> list[Activity]:
        d = ev.data
        mask = number(d.get("AccessMask"))
        if not mask:  # 0x0 (a read the SACL logged), missing or garbage: not an access right exercised
            return []
        host = short(ev.computer)
        server = d.get("ObjectServer", "").strip()
        if server == "DS" and host not in self.ctx.inventory.dc_names:  # only a DC's directory logs DS access
            self.ctx.inventory.add_dc(host)  # (WMI and LSA 4662s come from any host)
        logon_id = d.get("SubjectLogonId", "")
        otype = d.get("ObjectType", "")
        oname = d.get("ObjectName", "")
        return [DirectoryAccess(
            time=ev.time, host=host, actor=d.get("SubjectUserName", ""), actor_sid=sid(d.get("SubjectUserSid")),
            actor_domain=d.get("SubjectDomainName", ""), logon_id=logon_id,
            session=self.ctx.sessions.get(host, logon_id, ev.time.timestamp()), evidence=[evidence_of(ev)],
            object_server=server,
            object_type=guid(otype) if "{" in otype else otype.strip(),
            object_name=guid(oname) if oname.strip().startswith(("%{", "{")) else oname.strip(),
            access_mask=mask, rights=[_token(t) for t in items(d.get("Properties"))],
            operation=d.get("OperationType", "").strip())]
