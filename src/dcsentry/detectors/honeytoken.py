"""Honeytoken activity: any sign-in by, ticket for, or change to a decoy account.

Decoys are never used legitimately, so there is no threshold and no learning period
(reference/dc-log-alerts.md B5). Every event that names the decoy counts, whatever its outcome:
- sign-ins: 4776 (+8004), 4768/4771, 4625 (`AuthActivity`), 4624 (`Logon`), 4769 as the requester
  (`TicketRequest.account`) and 4769 for the decoy's SPN (`TicketRequest.service`: Kerberoasting);
- changes to the decoy: group membership (47xx), 4738/4722/4724/4725/4726/4781 (`AccountChange`),
  5136/5137/5139/5141 on its object (`DirectoryChange`, by DN);
- the decoy acting: the subject of an account or directory change.
All of them grow one alert per decoy, High (XDR xdr_HoneytokenSignInAttempt; MDI 2427/2428).
"""

from __future__ import annotations

from collections.abc import Iterable

from ..activities import Activity, AuthActivity, DcActivity, GroupChange, Logon
from ..activities.context import DomainContext
from ..activities.dclog.accounts import AccountChange
from ..activities.dclog.directory import DirectoryChange
from ..activities.dclog.kerberos import TicketRequest
from ..activities.keys import Honeytokens, token_name
from ..alerts import Alert
from ..config import Detection
from .base import Incidents, add_unique

TYPE = "honeytoken-activity"


class HoneytokenDetector:
    def __init__(self, cfg: Detection, incidents: Incidents, ctx: DomainContext | None = None) -> None:
        self.incidents = incidents
        self.ctx = ctx  # its inventory maps an object's DN to the account (imported exports carry DNs)
        self.configure(cfg)

    def configure(self, cfg: Detection) -> None:
        """Take a (new) honeytoken list: names, SIDs, or distinguished names (`CN=...,DC=...`)."""
        self.tokens = Honeytokens(cfg.honeytokens)
        self.names, self.sids = self.tokens.names, self.tokens.sids

    def _match(self, name: str, sid: str = "") -> str | None:
        return self.tokens.match(name, sid)

    def match_dn(self, dn: str) -> str | None:
        """A directory object that is a honeytoken: its DN listed, its CN a listed name, or the
        inventory's account with that DN listed by name or SID."""
        token = self.tokens.match_dn(dn)
        if token is not None or self.ctx is None:
            return token
        inv = self.ctx.inventory
        acc = inv.accounts.get(inv.by_dn.get((dn or "").strip().lower(), ""))
        return self._match(acc.name, acc.sid) if acc is not None else None

    def on_activity(self, act: Activity) -> Iterable[Alert]:
        if not self.names and not self.sids:
            return ()
        found = self._find(act)
        if found is None:
            return ()
        token, line, accounts, hosts = found
        a = self.incidents.raise_or_grow(TYPE, token, act.time, act.evidence)
        for acc in accounts:
            add_unique(a.accounts, acc)
        for h in hosts:
            add_unique(a.hosts, h)
        if isinstance(act, AuthActivity):
            add_unique(a.dcs, act.reporter)
            a.protocol = act.protocol if a.protocol in (None, act.protocol) else "Kerberos, NTLM"
        elif isinstance(act, GroupChange):
            add_unique(a.dcs, act.dc)
        elif isinstance(act, Logon):  # a 4624 on a DC, or on a server whose log is forwarded
            dc = self.ctx is not None and self.ctx.inventory.is_dc(act.host)
            add_unique(a.dcs if dc else a.hosts, act.host)
        elif isinstance(act, DcActivity):
            add_unique(a.dcs, act.host)
            if isinstance(act, TicketRequest):
                a.protocol = "Kerberos" if a.protocol in (None, "Kerberos") else "Kerberos, NTLM"
        a.severity = "high"
        a.count += 1
        lines = a.details.setdefault("activities", [])
        add_unique(lines, f"{act.time:%Y-%m-%d %H:%M:%S} {line}", cap=50)
        kinds = a.details.setdefault("kinds", [])
        add_unique(kinds, _kind(act))
        a.description = (f"The honeytoken account {a.accounts[0] if a.accounts else token} was used or changed "
                         f"({a.count} {'activity' if a.count == 1 else 'activities'}); it is never used "
                         "legitimately. Find who holds its credentials or changed it, starting from the sources "
                         "listed:\n" + "\n".join(lines[-10:]))
        return (a,)

    # -- what an activity says about a honeytoken ---------------------------------------------------
    def _find(self, act: Activity) -> tuple[str, str, list[str], list[str]] | None:
        """(token, activity line, accounts, hosts) when the activity involves a honeytoken."""
        if isinstance(act, AuthActivity):
            token = self._match(act.account, act.account_sid)
            if token is None:
                return None
            line = (f"{'Authenticated' if not act.failed else 'Failed to authenticate (' + act.result + ')'} "
                    f"from {act.source} using {act.protocol}"
                    + (f" when accessing {act.server}" if act.server else "") + f" via {act.reporter}")
            return token, line, [act.account], [act.source] + ([act.server] if act.server else [])
        if isinstance(act, GroupChange):
            token = self._match(act.member_name, act.member_sid)
            if token is None:
                return None
            verb = "added to" if act.added else "removed from"
            return (token, f"Group membership changed: {verb} {act.group_name} by {act.actor} on {act.dc}",
                    [act.member, act.actor], [])
        if isinstance(act, Logon):
            token = self._match(act.account, act.account_sid)
            if token is None:
                return None
            src = act.source or "the computer itself"
            line = (f"Logged on to {act.host} from {src} (logon type {act.logon_type}, "
                    f"{act.package or act.process or 'unknown package'})")
            return token, line, [act.account], [act.source] if act.source and act.source != "localhost" else []
        if isinstance(act, TicketRequest):
            return self._ticket(act)
        if isinstance(act, AccountChange):
            return self._account_change(act)
        if isinstance(act, DirectoryChange):
            return self._directory_change(act)
        return None

    def _ticket(self, act: TicketRequest) -> tuple[str, str, list[str], list[str]] | None:
        if act.tgt:
            return None  # the same 4768 is an AuthActivity (builder.py): counted there
        src = [act.source_ip] if act.source_ip and act.source_ip != "localhost" else []
        outcome = "" if act.ok else f" (failed, status {hex(act.status) if act.status is not None else '?'})"
        token = self._match(act.service, act.service_sid)
        if token is not None:  # a ticket FOR the decoy's SPN: someone is Kerberoasting it
            line = (f"Service ticket for the honeytoken's SPN requested by {act.account} from "
                    f"{act.source_ip or '?'} on {act.host}{outcome}: Kerberoasting")
            return token, line, [act.service, act.account], src
        token = self._match(act.account)
        if token is None:
            return None
        line = f"Service ticket to {act.service or '?'} requested from {act.source_ip or '?'} on {act.host}{outcome}"
        return token, line, [act.account], src

    def _actor(self, act: DcActivity, what: str) -> tuple[str, str, list[str], list[str]] | None:
        token = self._match(act.actor, act.actor_sid)
        if token is None:
            return None
        src = act.source
        return (token, f"Acted on {act.host}: {what}" + (f" (session from {src})" if src else ""),
                [act.actor], [src] if src else [])

    def _account_change(self, act: AccountChange) -> tuple[str, str, list[str], list[str]] | None:
        token = self._match(act.target, act.target_sid) or (self._match(act.old_name) if act.old_name else None)
        if token is None:
            return self._actor(act, f"{act.action} account {act.target}")
        by = f"{act.actor_domain}\\{act.actor}" if act.actor_domain else act.actor
        what = {"changed": "attributes changed", "renamed": f"renamed from {act.old_name}"}.get(act.action, act.action)
        fields = [k for k in act.changed if k not in ("OldUacValue", "NewUacValue")]
        detail = f" ({', '.join(fields)})" if fields else ""
        if act.uac_words:
            detail += f" [{'; '.join(act.uac_words)}]"
        src = act.source
        line = f"Account {what}{detail} by {by or '?'} on {act.host} (event {act.event_id})" + (
            f", session from {src}" if src else "")
        return token, line, [act.target, act.actor], [src] if src else []

    def _directory_change(self, act: DirectoryChange) -> tuple[str, str, list[str], list[str]] | None:
        token = self.match_dn(act.object_dn) or (self.match_dn(act.new_dn) if act.new_dn else None)
        if token is None:
            return self._actor(act, f"directory {act.operation} of {act.object_dn}")
        if act.operation == "modify":
            what = f"attribute {act.attribute or '?'} modified"
        else:
            what = {"create": "object created", "delete": "object deleted", "move": f"object moved to {act.new_dn}"
                    }.get(act.operation, act.operation)
        src = act.source
        line = f"Directory {what} by {act.actor or '?'} on {act.host}" + (f", session from {src}" if src else "")
        return token, line, [token_name(act.object_dn) or act.object_dn, act.actor], [src] if src else []


def _kind(act: Activity) -> str:
    if isinstance(act, (AuthActivity, Logon, TicketRequest)):
        return "sign-in"
    if isinstance(act, GroupChange):
        return "group-membership"
    return "attribute-change"
