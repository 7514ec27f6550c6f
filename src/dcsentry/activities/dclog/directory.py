"""5136/5137/5139/5141 (Directory Service Changes) -> `DirectoryChange` (reference A6).

A 5136 tells of ONE value: a replace of `nTSecurityDescriptor` is a Value Deleted event (old SD)
plus a Value Added event (new SD), and two SPNs written at once are two Value Added events, all
tied by one `OpCorrelationID`. Detectors want the change whole (old -> new), so this reader holds
the values of one (DC, OpCorrelationID, object, attribute) and emits them as one change when the
stream's clock has moved a little past them, when that DC starts a new correlation id, or at the
end of input. 5137 (created), 5139 (moved) and 5141 (deleted) are one event each.
"""

from __future__ import annotations

from ...model import WindowsEvent
from .. import Activity, DcActivity, evidence_of
from ..context import DomainContext
from .fields import guid, short, sid

_WINDOW = 2.0  # seconds after the last value of a change before it is emitted while the stream runs
_MAX_HELD = 20_000  # changes held at once; past it the oldest goes out early (a burst, not a stall)

ADDED, DELETED = "%%14674", "%%14675"


class DirectoryChange(DcActivity, kw_only=True):
    """One directory change: the values one operation added to / removed from one attribute of
    one object (5136), or an object created (5137), moved (5139) or deleted (5141)."""

    operation: str = "modify"  # modify | create | delete | move
    object_dn: str = ""
    object_guid: str = ""  # lower case, no braces
    object_class: str = ""
    attribute: str = ""  # AttributeLDAPDisplayName as logged; "" for 5137/5139/5141
    syntax: str = ""  # AttributeSyntaxOID (2.5.5.15 = security descriptor)
    added: list[str] = []
    removed: list[str] = []
    correlation: str = ""  # OpCorrelationID
    event_ids: list[int] = []
    new_dn: str = ""  # 5139: where the object went (object_dn is where it was)
    tree_delete: bool = False  # 5141 TreeDelete

    kind = "directory"

    @property
    def subject(self) -> str:
        return self.object_dn

    @property
    def attr(self) -> str:
        """The attribute name, lower case, for rule matching."""
        return self.attribute.lower()

    @property
    def actor_key(self) -> str:
        return self.actor.lower()


def operation_of(value: str) -> str:
    """`added` or `deleted` from OperationType, raw code or rendered words."""
    v = (value or "").strip()
    if v == DELETED or "delete" in v.lower() or "14675" in v:
        return "deleted"
    return "added"


class DirectoryReader:
    """Assembles 5136 values into changes (see the module docstring); holds them meanwhile."""

    ids = frozenset({5136, 5137, 5139, 5141})

    def __init__(self, ctx: DomainContext, window: float = _WINDOW) -> None:
        self.ctx = ctx
        self.window = window
        self._held: dict[tuple[str, str, str, str], tuple[float, DirectoryChange]] = {}  # key -> (last t, change)
        self._current: dict[str, str] = {}  # DC -> its latest OpCorrelationID
        self._clock = 0.0
        self._oldest = float("inf")  # smallest "last t" of the held changes (a lower bound)

    @property
    def holding(self) -> bool:
        return bool(self._held)

    def feed(self, ev: WindowsEvent) -> list[Activity]:
        if ev.channel != "Security":
            return []
        t = ev.time.timestamp()
        if t > self._clock:
            self._clock = t
        out: list[Activity] = []
        if self._held and self._oldest < self._clock - self.window:
            out.extend(self.release(self._clock - self.window))
        if ev.event_id == 5136:
            self._value(ev, t, out)
        else:
            out.append(self._whole(ev))
        return out

    def release(self, before: float) -> list[Activity]:
        """Emit the changes whose last value is older than `before` (+inf: all of them)."""
        if self._oldest >= before:  # a lower bound of what is held: nothing is old enough
            return []
        out: list[Activity] = []
        oldest = float("inf")
        for key, (last, change) in list(self._held.items()):
            if last < before:
                del self._held[key]
                out.append(change)
            elif last < oldest:
                oldest = last
        self._oldest = oldest
        out.sort(key=lambda c: c.time)
        return out

    # -- events ---------------------------------------------------------------------------------
    def _base(self, ev: WindowsEvent, operation: str) -> DirectoryChange:
        d = ev.data
        dc = short(ev.computer)
        logon_id = d.get("SubjectLogonId", "")
        return DirectoryChange(
            time=ev.time, host=dc, actor=d.get("SubjectUserName", ""), actor_sid=sid(d.get("SubjectUserSid")),
            actor_domain=d.get("SubjectDomainName", ""), logon_id=logon_id,
            session=self.ctx.sessions.get(dc, logon_id, ev.time.timestamp()), evidence=[evidence_of(ev)],
            operation=operation, object_dn=d.get("ObjectDN", "") or d.get("OldObjectDN", ""),
            object_guid=guid(d.get("ObjectGUID")), object_class=d.get("ObjectClass", ""),
            correlation=d.get("OpCorrelationID", ""), event_ids=[ev.event_id], added=[], removed=[])

    def _whole(self, ev: WindowsEvent) -> DirectoryChange:
        eid = ev.event_id
        op = {5137: "create", 5139: "move", 5141: "delete"}[eid]
        ch = self._base(ev, op)
        d = ev.data
        if eid == 5139:
            ch.new_dn = d.get("NewObjectDN", "")
            ch.removed = [ch.object_dn] if ch.object_dn else []
            ch.added = [ch.new_dn] if ch.new_dn else []
        elif eid == 5141:
            td = (d.get("TreeDelete") or "").strip().lower()
            ch.tree_delete = td in ("%%1842", "yes", "true")  # %%1842 = Yes in the MS message table
        return ch

    def _value(self, ev: WindowsEvent, t: float, out: list[Activity]) -> None:
        d = ev.data
        dc = short(ev.computer)
        corr = d.get("OpCorrelationID", "")
        if self._current.get(dc) != corr:
            if self._held and dc in self._current:  # the DC moved on to another operation
                for key in [k for k in self._held if k[0] == dc and k[1] != corr]:
                    out.append(self._held.pop(key)[1])
            self._current[dc] = corr
        obj = guid(d.get("ObjectGUID")) or d.get("ObjectDN", "").lower()
        attr = d.get("AttributeLDAPDisplayName", "")
        key = (dc, corr, obj, attr.lower())
        value = d.get("AttributeValue", "")
        held = self._held.get(key)
        if held is None:
            ch = self._base(ev, "modify")
            ch.attribute = attr
            ch.syntax = d.get("AttributeSyntaxOID", "")
            if len(self._held) >= _MAX_HELD:
                first = next(iter(self._held))
                out.append(self._held.pop(first)[1])
        else:
            ch = held[1]
            ch.evidence.append(evidence_of(ev))
            if 5136 not in ch.event_ids:
                ch.event_ids.append(5136)
            if ch.session is None:
                ch.session = self.ctx.sessions.get(dc, ch.logon_id, t)
        (ch.removed if operation_of(d.get("OperationType", "")) == "deleted" else ch.added).append(value)
        self._held[key] = (t, ch)
        if t < self._oldest:
            self._oldest = t
