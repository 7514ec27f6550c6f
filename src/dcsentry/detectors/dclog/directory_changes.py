"""Directory backdoors (reference/dc-log-alerts.md B8): every `DirectoryChange` (5136 values
assembled per operation) against the rule table of directory_rules.py.

The table says what; directory_checks.py knows how to look (the named tests of a row, the
security-descriptor diff behind "which ACE was added, for whom"); this file matches, raises and
describes. Of the rows of one alert type that match a change, the most severe sets the severity
and all of them add their words. Two follow-ups are not 5136: a PKINIT TGT (4768 PreAuthType 16)
for an account that just got shadow credentials ("...and used"), and the 4738 `PrimaryGroupId`
view of a primaryGroupID change (same alert key as the 5136 view, so both make one alert).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from ...activities import Activity
from ...activities.context import DomainContext, account_name
from ...activities.dclog import sddl
from ...activities.dclog.access import DirectoryAccess
from ...activities.dclog.accounts import AccountChange
from ...activities.dclog.directory import DirectoryChange
from ...activities.dclog.kerberos import TicketRequest
from ...alerts import Alert
from ...config import Detection
from ..base import Incidents, Lru, add_unique, plural
from ..baseline import Baseline
from .directory_checks import LEARNED, ChangeView, Checks, short_value
from .directory_rules import DEFAULT_GPOS, PLAIN_PRIMARY, PRIVILEGED_PRIMARY, RULES, Rule

_RANK = {"low": 0, "medium": 1, "high": 2}
WRITE_DAC, WRITE_OWNER = 0x40000, 0x80000
ADVICE = {
    "dcsync-rights": "Remove the ACE from the domain root's permissions, check whether the trustee already replicated "
                     "(DCSync alerts, 4662 on the domain root), and treat the writer as compromised; after a "
                     "PrivExchange-style relay, patch Exchange and remove its WriteDacl on the domain.",
    "shadow-credentials": "Remove the unknown key from the target's msDS-KeyCredentialLink, reset its password, look "
                          "for PKINIT TGTs (4768 PreAuthType 16) for it, and treat the writer as compromised.",
    "rbcd-change": "Clear msDS-AllowedToActOnBehalfOfOtherIdentity on the target unless the delegation is planned; "
                   "check the accounts it names (often a computer just created under MachineAccountQuota) and "
                   "service tickets obtained by S4U2Proxy for the target.",
    "spn-added-to-user": "Remove the SPN unless a service owner asked for it; a user keeping an SPN needs a long "
                         "random password (better: a gMSA). Watch service-ticket requests for it (Kerberoasting).",
    "primary-group-change": "Set primaryGroupID back to 513 (Domain Users) and review what the account did with the "
                            "group's rights.",
    "adminsdholder-change": "Restore the AdminSDHolder permissions from a known-good copy before SDProp spreads them "
                            "(every 60 minutes), then check the adminCount=1 objects for the same ACE.",
    "acl-change": "Remove the ACE (or restore the owner) unless the delegation is planned, and review what the "
                  "trustee did with the rights.",
    "gpo-change": "Review the GPO's files in SYSVOL (Policies\\{GUID}) for new scheduled tasks, scripts, services or "
                  "group changes and who may edit it; revert what was not planned.",
}


class DirectoryChangeDetector:
    accepts = (DirectoryChange, DirectoryAccess, TicketRequest, AccountChange)  # the engine hands it nothing else

    def __init__(self, cfg: Detection, incidents: Incidents, baseline: Baseline, ctx: DomainContext) -> None:
        self.cfg = cfg.directory_changes
        self.incidents = incidents
        self.ctx = ctx
        self.checks = Checks(cfg, baseline, ctx)
        self.by_attr: dict[str, list[Rule]] = {}
        for r in RULES:
            for attr in r.attributes or ("*",):
                self.by_attr.setdefault(attr, []).append(r)
        self.shadowed: Lru[str, tuple[float, Alert]] = Lru(50_000)  # account -> (time, alert) of shadow credentials
        # account -> (time, request) of its last PKINIT TGT (a TGT seen before its 5136)
        self.pkinit: Lru[str, tuple[float, TicketRequest]] = Lru(50_000)
        # (account, rid) -> time: the 4738 and 5136 views of one change
        self.pgid_seen: Lru[tuple[str, int], float] = Lru(50_000)
        # (DC, objectGUID) -> the 4662 WRITE_DAC/WRITE_OWNER before an SD write
        self.dac_access: Lru[tuple[str, str], DirectoryAccess] = Lru(20_000)

    def configure(self, cfg: Detection) -> None:
        """Run-time lists changed in the console (settings_watch): allowed writers, sensitive objects."""
        self.checks.configure(cfg)

    def on_activity(self, act: Activity) -> Iterable[Alert]:
        kind = getattr(act, "kind", "")
        if kind == "directory" and isinstance(act, DirectoryChange):
            return self._change(act)
        if kind == "access" and isinstance(act, DirectoryAccess) and act.access_mask & (WRITE_DAC | WRITE_OWNER):
            self.dac_access.put((act.host, act.object_name), act)
            return ()
        if kind == "ticket" and isinstance(act, TicketRequest) and act.tgt:
            return self._tgt(act)
        if kind == "account" and isinstance(act, AccountChange) and act.event_id == 4738 and not act.machine:
            return self._pgid_4738(act)
        return ()

    # -- 5136 against the table ---------------------------------------------------------------------
    def _change(self, ch: DirectoryChange) -> list[Alert]:
        if ch.operation != "modify":
            if ch.operation == "create":
                self.checks.created(ch)
            return []
        v = ChangeView(ch)
        if v.gpo and ch.attr == "displayname" and ch.added:
            self.checks.gpo_names[v.gpo] = ch.added[-1]
        best: dict[str, tuple[Rule, list[str], list[Rule]]] = {}  # type -> (most severe row, words, rows matched)
        for r in (*self.by_attr.get(ch.attr, ()), *self.by_attr.get("*", ())):
            if r.classes and v.cls not in r.classes:
                continue
            if r.dn and not re.search(r.dn, v.dn):
                continue
            if not self.checks.targets[r.target](v) or not self.checks.writers[r.writer](v):
                continue
            words = self.checks.changes[r.change](v)
            if not words:
                continue
            held = best.get(r.type)
            if held is None:
                best[r.type] = (r, list(words), [r])
                continue
            held[1].extend(words)
            held[2].append(r)
            if _RANK[r.severity] > _RANK[held[0].severity]:
                best[r.type] = (r, held[1], held[2])
        return [self._raise(t, rule, v, list(dict.fromkeys(words)), rows) for t, (rule, words, rows) in best.items()]

    def _raise(self, type_: str, rule: Rule, v: ChangeView, words: list[str], rows: list[Rule]) -> Alert:
        ch = v.ch
        target = self.checks.account_of(v)
        key = {"dcsync-rights": v.dn, "adminsdholder-change": v.dn, "acl-change": v.dn,
               "gpo-change": v.gpo or v.dn}.get(type_, target or v.dn)
        twin = type_ == "primary-group-change" and self._pgid_twin(target, ch)
        learning = v.learning and all(r.change in LEARNED for r in rows)
        a = self.incidents.raise_or_grow(type_, key, ch.time, () if twin else ch.evidence[:2], learning=learning)
        if not twin:
            a.count += 1
        if not learning:
            a.learning = False  # something beyond the learned tables: the alert stands on its own
        a.severity = rule.severity if a.revision == 0 else max(a.severity, rule.severity, key=_RANK.__getitem__)
        self._note(a, ch)
        if type_ in ("shadow-credentials", "rbcd-change", "spn-added-to-user", "primary-group-change") and target:
            add_unique(a.accounts, target)
        d = a.details
        d.update(object_dn=ch.object_dn, object_class=ch.object_class, object_guid=ch.object_guid,
                 attribute=ch.attribute)
        whys = d.setdefault("why", [])
        for r in rows:
            add_unique(d.setdefault("rules", []), r.name)
            add_unique(whys, r.why)
        for w in words:
            add_unique(d.setdefault("written", []), w, cap=30)
        for t in v.trustees:
            sid = sddl.sid_of(t)
            add_unique(d.setdefault("trustees", []), sid)
            add_unique(a.accounts, self.checks.name(sid) or sid)
        if ch.attr == "ntsecuritydescriptor":
            self._corroborate(a, ch)
        if ch.removed:
            d["old"] = [short_value(x, 400) for x in ch.removed[:3]]
        if ch.added:
            d["new"] = [short_value(x, 400) for x in ch.added[:5]]
        if v.gpo:
            d["gpo"] = v.gpo
            name = self.checks.gpo_names.get(v.gpo) or DEFAULT_GPOS.get(v.gpo)
            if name:
                d["gpo_name"] = name
        if type_ == "shadow-credentials" and target:
            self.shadowed.put(target, (ch.time.timestamp(), a))
            seen = self.pkinit.get(target)
            if seen is not None and ch.time.timestamp() - 5 <= seen[0] <= ch.time.timestamp() + self.cfg.pkinit_window:
                self._used(a, seen[1])
        a.description = self._describe(a, target)
        return a

    def _corroborate(self, a: Alert, ch: DirectoryChange) -> None:
        """The 4662 in which the writer opened the object for WRITE_DAC / WRITE_OWNER (reference B8:
        it corroborates the descriptor write; with the 5136 alone an audit gap cannot be told apart)."""
        acc = self.dac_access.get((ch.host, ch.object_guid))
        if acc is None or abs(ch.time.timestamp() - acc.time.timestamp()) > 300 or acc.logon_id != ch.logon_id:
            return
        ev = acc.evidence[0] if acc.evidence else None
        a.details["access_4662"] = {"time": acc.time.isoformat(), "access_mask": f"0x{acc.access_mask:x}",
                                    "record_id": ev.record_id if ev else None}

    def _note(self, a: Alert, act: DirectoryChange | AccountChange) -> None:
        actor = f"{act.actor_domain}\\{act.actor}" if act.actor_domain and act.actor_domain != "-" else act.actor
        add_unique(a.accounts, actor)
        add_unique(a.hosts, act.source)
        add_unique(a.dcs, act.host)
        d = a.details
        d["actor"] = actor
        if act.actor_sid:
            d["actor_sid"] = act.actor_sid
        if act.logon_id:
            d["logon_id"] = act.logon_id
        if act.session is not None:
            s = act.session
            d["session"] = {"source_ip": s.source_ip, "source_host": s.source_host, "package": s.package,
                            "logon_type": s.logon_type, "logon_time": s.time.isoformat()}
            a.protocol = s.package or a.protocol

    def _describe(self, a: Alert, target: str) -> str:
        d = a.details
        who = d.get("actor", "?")
        src = f" from {', '.join(a.hosts)}" if a.hosts else " (source unknown: its logon session was not in the stream)"
        what = "; ".join(d.get("written", [])[:6])
        obj = d.get("object_dn") or target
        if d.get("gpo"):
            obj = f"GPO {d.get('gpo_name', '')} {{{d['gpo']}}} ({obj})".replace("GPO  ", "GPO ")
        attr = d.get("attribute", "")
        used = d.get("used")
        acc = d.get("access_4662")
        seen = (f" The writer's 4662 (access {acc['access_mask']}, {acc['time'][11:19]}) on the same logon "
                "corroborates it." if acc else "")
        tail = seen + (f" The key was then used: a PKINIT TGT for {target} was issued at {used['time']}"
                f"{' to ' + used['source'] if used.get('source') else ''}." if used else "")
        return (f"{who}{src} changed {attr} of {obj} on {', '.join(a.dcs)} ({plural(a.count, 'change')}): {what}. "
                f"{'. '.join(w.rstrip('.') for w in d.get('why', []))}.{tail} {ADVICE[a.type]}")

    # -- change tests: what was written, in words ("" / [] = no match) -------------------------------
    def _pgid_twin(self, target: str, ch: DirectoryChange) -> bool:
        """The 4738 of this same primaryGroupID change was seen (or will be): count the change once."""
        try:
            key = (target, int(ch.added[-1].strip()))
        except (IndexError, ValueError):
            return False
        t = ch.time.timestamp()
        seen = self.pgid_seen.get(key)
        self.pgid_seen.put(key, t)
        return seen is not None and abs(t - seen) <= 60


    # -- follow-ups: PKINIT after shadow credentials; the 4738 view of primaryGroupID ---------------
    def _tgt(self, act: TicketRequest) -> list[Alert]:
        if act.preauth.strip() != "16" or act.status not in (0, None):
            return []
        name = account_name(act.account)
        t = act.time.timestamp()
        self.pkinit.put(name, (t, act))
        got = self.shadowed.get(name)
        if got is None or not 0 <= t - got[0] <= self.cfg.pkinit_window:
            return []
        a: Alert = got[1]
        a = self.incidents.raise_or_grow(a.type, a.key, act.time, act.evidence, start=a.start)
        self._used(a, act)
        a.description = self._describe(a, name)
        return [a]

    def _used(self, a: Alert, act: TicketRequest) -> None:
        if "used" not in a.details:
            a.count += 1
        a.details["used"] = {"time": act.time.isoformat(), "source": act.source_ip, "dc": act.host,
                             "cert_issuer": act.cert_issuer}
        a.severity = "high"
        add_unique(a.hosts, act.source_ip)
        add_unique(a.dcs, act.host)
        add_unique(a.details.setdefault("rules", []), "key-credential-used")

    def _pgid_4738(self, act: AccountChange) -> list[Alert]:
        raw = act.changed.get("PrimaryGroupId", "")
        try:
            new = int(raw)
        except ValueError:
            return []
        if new in PLAIN_PRIMARY:
            return []
        name = account_name(act.target)
        privileged = new in PRIVILEGED_PRIMARY
        t = act.time.timestamp()
        twin = self.pgid_seen.get((name, new))
        a = self.incidents.raise_or_grow("primary-group-change", name, act.time,
                                         act.evidence if twin is None or abs(t - twin) > 60 else ())
        if twin is None or abs(t - twin) > 60:
            a.count += 1
            self.pgid_seen.put((name, new), t)
        level = "high" if privileged else "medium"
        a.severity = level if a.revision == 0 else max(a.severity, level, key=_RANK.__getitem__)
        self._note(a, act)
        add_unique(a.accounts, name)
        d = a.details
        d.setdefault("attribute", "primaryGroupID")
        d.setdefault("object_dn", act.target)
        add_unique(d.setdefault("rules", []), "primary-group-4738")
        add_unique(d.setdefault("written", []), f"PrimaryGroupId -> {new}"
                   + (f" ({PRIVILEGED_PRIMARY[new]})" if privileged else ""))
        add_unique(d.setdefault("why", []), "a privileged primary group grants its rights without a member entry"
                   if privileged else "users keep Domain Users (513) as primary group; another one hides a membership")
        a.description = self._describe(a, name)
        return [a]
