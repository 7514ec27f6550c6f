"""Events -> activities, with the NTLM join of 4776 and 8004 and de-duplication of two views.

A 4776 says "U from W was validated by DC"; the 8004 on the same DC says which server passed the
request on. They are matched on (DC, account, workstation) within `join_window` seconds of event
time, whichever comes first. A 4776 whose 8004 never comes is released without a server once the
stream's clock has moved past the window: nothing waits unbounded.
"""

from __future__ import annotations

from collections import OrderedDict, deque

from ..catalogue import GROUP_ADD_IDS, GROUP_REMOVE_IDS, GROUP_SCOPE, NTLM_CHANNEL, NTLM_DC_AUDIT_IDS
from ..lru import PERIOD, in_window
from ..model import WindowsEvent
from . import Activity, AuthActivity, GroupChange, ServiceCreation, evidence_of
from .context import DomainContext
from .keys import computer_key as _short
from .keys import host_key as _host
from .keys import ip_key as _ip
from .readers import Reader, default_readers
from .sensitive import SensitiveGroups
from .status import kerberos_result, ntstatus_result

_MAX_PENDING = 100_000
_KEEP = 60.0  # seconds an unmatched 8004 or a failure's first view is kept (DCs' events arrive out of order)
_RELEVANT = frozenset({4776, 4625, 4768, 4771, 7045, 4697} | GROUP_ADD_IDS | GROUP_REMOVE_IDS | NTLM_DC_AUDIT_IDS)


def _sid(sid: str) -> str:
    """An account SID, or "" for none (`-`, or the NULL SID a failed logon often carries)."""
    sid = (sid or "").strip().upper()
    return "" if sid in ("-", "S-1-0-0") else sid


class ActivityBuilder:
    """Feed events in (roughly) time order; get activities back, some a little later."""

    def __init__(self, sensitive: SensitiveGroups | None = None, join_window: float = 5.0,
                 ctx: DomainContext | None = None, readers: list[Reader] | None = None) -> None:
        self.ctx = ctx or DomainContext()
        self.readers = default_readers(self.ctx) if readers is None else readers
        self._readers_by_id: dict[int, list[Reader]] = {}
        for r in self.readers:
            for i in r.ids:
                self._readers_by_id.setdefault(i, []).append(r)
        self._relevant = _RELEVANT | frozenset(self._readers_by_id)
        self.sensitive = sensitive or SensitiveGroups()
        self.join_window = join_window
        # Per key a short list, not a deque: a deque is ~600 bytes empty and there is one key per
        # (DC, account, workstation) seen in the last minute (tens of thousands at wire speed).
        self._pending: dict[tuple, list[list]] = {}  # 4776 waiting for its 8004: key -> [t, act, done, key]
        self._order: deque[list] = deque()  # the same entries, oldest first
        self._servers: OrderedDict[tuple, list] = OrderedDict()  # 8004 waiting for its 4776
        self._ntlm_seen: OrderedDict[tuple, list] = OrderedDict()  # 4776 failures a 4625 may repeat
        self._services_seen: OrderedDict[tuple, list] = OrderedDict()  # 7045/4697 a twin may repeat
        self.clock: float = 0.0
        self._swept: float = 0.0
        self.joined = 0
        self.dcs: set[str] = self.ctx.inventory.dc_names  # one set: the inventory's DCs

    def feed(self, ev: WindowsEvent) -> list[Activity]:
        eid = ev.event_id
        if eid not in self._relevant:  # most of a DC's traffic (4634, 4672...): only the clock moves
            if self._order or self._holding():  # something waits (a 4776 for its 8004...): let the clock release it
                t = ev.time.timestamp()
                if t > self.clock:
                    self.clock = t
                if (self._order and self._order[0][0] < self.clock - self.join_window) or self._holding():
                    return self._release(self.clock - self.join_window)
            return []
        t = ev.time.timestamp()
        early: list[Activity] = []
        if t > self.clock:
            self.clock = t
        elif t < self.clock - PERIOD:  # another period (lru.PERIOD): what waits is handed on as at the end
            early = self._release(float("inf"))
            self.clock = self._swept = t
        out = self._release(self.clock - self.join_window)
        if early:
            out[:0] = early
        d = ev.data
        if eid == 4776 and ev.channel == "Security":
            self._on_4776(ev, t, out)
        elif eid in NTLM_DC_AUDIT_IDS and ev.channel == NTLM_CHANNEL:
            self._on_8004(ev, t, out)
        elif eid == 4625:
            act = self._auth_4625(ev)
            if act is not None:
                out.append(act)
        elif eid in (4768, 4771) and ev.channel == "Security":
            self.dcs.add(_short(ev.computer))
            result = kerberos_result(d.get("Status", ""))
            out.append(AuthActivity(ev.time, "Kerberos", d.get("TargetUserName", ""), d.get("TargetDomainName", ""),
                                    "", _ip(d.get("IpAddress", "")), _short(ev.computer), result,
                                    d.get("Status", ""), [evidence_of(ev)], account_sid=_sid(d.get("TargetSid", ""))))
        elif eid in GROUP_ADD_IDS or eid in GROUP_REMOVE_IDS:
            out.append(self._group(ev))
        elif eid == 7045 or (eid == 4697 and ev.channel == "Security"):
            svc = self._service(ev)
            # SCM's 7045 and the audit's 4697 tell of one install: its second view is not a new service.
            if not self._second_view(self._services_seen, (svc.host, svc.name.lower(), svc.image_path.strip().lower()),
                                     t, eid):
                out.append(svc)
            elif svc.session is not None:  # the 4697 twin after its 7045 knows the installer's session
                svc.twin = True
                out.append(svc)
        readers = self._readers_by_id.get(eid)
        if readers:
            self.ctx.clock = self.clock
            for r in readers:
                out.extend(r.feed(ev))
        return out

    def _holding(self) -> bool:
        for r in self.readers:
            if r.holding:
                return True
        return False

    def flush(self) -> list[Activity]:
        """End of input: release every 4776 still waiting for an 8004 (and what readers hold)."""
        return self._release(float("inf"))

    # -- NTLM ---------------------------------------------------------------------------------
    def _on_4776(self, ev: WindowsEvent, t: float, out: list[Activity]) -> None:
        d = ev.data
        dc = _short(ev.computer)
        act = AuthActivity(ev.time, "NTLM", d.get("TargetUserName", ""), "", _host(d.get("Workstation", "")), "",
                           dc, ntstatus_result(d.get("Status", "")), d.get("Status", ""), [evidence_of(ev)])
        if act.failed and self._repeats(act, t, 4776):
            return
        key = (dc, act.account_key, act.source_host)
        waiting = self._servers.get(key)
        while waiting and waiting[0][0] < t - self.join_window:
            del waiting[0]
        if waiting:
            _, server, evid = waiting.pop(0)
            act.server = server
            act.evidence.append(evid)
            self.joined += 1
            out.append(act)
            return
        entry = [t, act, False, key]
        waiting = self._pending.get(key)
        if waiting is None:
            self._pending[key] = [entry]
        else:
            waiting.append(entry)
        self._order.append(entry)
        while len(self._order) > _MAX_PENDING:
            self._emit(self._order.popleft(), out)

    def _on_8004(self, ev: WindowsEvent, t: float, out: list[Activity]) -> None:
        d = ev.data
        dc = _short(ev.computer)
        self.dcs.add(dc)
        server = _host(d.get("SChannelName", ""))
        key = (dc, d.get("UserName", "").lower(), _host(d.get("WorkstationName", "")))
        waiting = self._pending.get(key)
        if waiting:
            for entry in waiting:
                if not entry[2] and abs(t - entry[0]) <= self.join_window:
                    act = entry[1]
                    act.server = server
                    act.evidence.append(evidence_of(ev))
                    self.joined += 1
                    self._emit(entry, out)
                    return
        self._remember(self._servers, key, (t, server, evidence_of(ev)), t)

    def _remember(self, table: OrderedDict, key: tuple, item: tuple, t: float) -> None:
        """Keep `item` (its time first) under `key` for a minute: a key seen every few seconds (a
        phone retrying an old password) would otherwise hold its last 256 items for ever."""
        q = table.get(key)
        if q is None:
            table[key] = [item]
        else:
            while q and (not in_window(q[0][0], t, _KEEP) or len(q) >= 256):
                del q[0]
            q.append(item)
        if len(table) > _MAX_PENDING:
            table.popitem(last=False)

    def _emit(self, entry: list, out: list[Activity]) -> None:
        """Hand on a 4776 (joined, or its wait is over) and drop it from its key's waiting list:
        `_pending` holds only what still waits (done entries kept there grew without bound for a
        key seen at least once a minute, found by the memory soak)."""
        if not entry[2]:
            entry[2] = True
            out.append(entry[1])
            waiting = self._pending.get(entry[3])
            if waiting is not None:
                for i, e in enumerate(waiting):
                    if e is entry:
                        del waiting[i]
                        break
                if not waiting:
                    del self._pending[entry[3]]

    def _release(self, before: float) -> list[Activity]:
        out: list[Activity] = []
        for r in self.readers:
            if r.holding:
                out.extend(r.release(before))
        order = self._order
        while order and order[0][0] < before:
            self._emit(order.popleft(), out)
        if not order:
            self._pending.clear()
        if before - self._swept > 60 or before == float("inf"):
            self._swept = before
            for table in (self._servers, self._ntlm_seen, self._services_seen):
                for key in [k for k, q in table.items() if not q or q[-1][0] < before - _KEEP]:
                    del table[key]
        return out

    # -- other views --------------------------------------------------------------------------
    def _auth_4625(self, ev: WindowsEvent) -> AuthActivity | None:
        """A failed logon on the host accessed; dropped when it repeats a 4776 the DC logged."""
        d = ev.data
        package = d.get("AuthenticationPackageName", "") or d.get("LmPackageName", "")
        protocol = "Kerberos" if "kerberos" in package.lower() else "NTLM"
        act = AuthActivity(ev.time, protocol, d.get("TargetUserName", ""), d.get("TargetDomainName", ""),
                           _host(d.get("WorkstationName", "")), _ip(d.get("IpAddress", "")), _short(ev.computer),
                           ntstatus_result(d.get("Status", ""), d.get("SubStatus", "")), d.get("SubStatus", "")
                           or d.get("Status", ""), [evidence_of(ev)], account_sid=_sid(d.get("TargetUserSid", "")))
        try:
            act.logon_type = int(d.get("LogonType", ""))
        except ValueError:
            pass
        if act.failed and act.protocol == "NTLM" and self._repeats(act, ev.time.timestamp(), 4625):
            return None
        return act

    def _repeats(self, act: AuthActivity, t: float, eid: int) -> bool:
        """One NTLM failure is often logged twice: 4625 on the host accessed and 4776 on the DC.
        The second of the pair (either order, within 2 s) is not counted again."""
        return self._second_view(self._ntlm_seen, (act.account_key, act.source_host, act.result), t, eid)

    def _second_view(self, table: OrderedDict, key: tuple, t: float, eid: int) -> bool:
        """True for the second of a pair of events with different ids within 2 s (either order)."""
        seen = table.get(key)
        if seen:
            for i, (t0, other) in enumerate(seen):
                if other != eid and abs(t - t0) <= 2.0:
                    del seen[i]
                    return True
        self._remember(table, key, (t, eid), t)
        return False

    def _group(self, ev: WindowsEvent) -> GroupChange:
        d = ev.data
        if ev.event_id not in (4732, 4733):  # local-group changes are logged by members too
            self.dcs.add(_short(ev.computer))
        gc = GroupChange(ev.time, _short(ev.computer), ev.event_id in GROUP_ADD_IDS, d.get("TargetUserName", ""),
                         d.get("TargetSid", ""), d.get("TargetDomainName", ""), GROUP_SCOPE[ev.event_id],
                         d.get("MemberName", ""), d.get("MemberSid", ""), d.get("SubjectUserName", ""),
                         d.get("SubjectUserSid", ""), d.get("SubjectDomainName", ""), [evidence_of(ev)])
        gc.sensitive = self.sensitive.why(gc.group_sid, gc.group_name)
        return gc

    def _service(self, ev: WindowsEvent) -> ServiceCreation:
        d = ev.data
        if ev.event_id == 4697:
            host, logon_id = _short(ev.computer), d.get("SubjectLogonId", "")
            return ServiceCreation(ev.time, host, d.get("ServiceName", ""), d.get("ServiceFileName", ""),
                                   d.get("ServiceType", ""), d.get("ServiceStartType", ""), d.get("ServiceAccount", ""),
                                   d.get("SubjectUserSid"), d.get("SubjectUserName"), [evidence_of(ev)], logon_id,
                                   self.ctx.sessions.get(host, logon_id, ev.time.timestamp()))
        return ServiceCreation(ev.time, _short(ev.computer), d.get("ServiceName", ""), d.get("ImagePath", ""),
                               d.get("ServiceType", ""), d.get("StartType", ""), d.get("AccountName", ""),
                               ev.user_sid, None, [evidence_of(ev)])
