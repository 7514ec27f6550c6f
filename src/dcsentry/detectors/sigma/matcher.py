"""Runs loaded Sigma rules on the event stream and turns matches into dcsentry alerts.

An event meets only the rules indexed under its (channel, event id), plus those that constrain
neither. A match raises an alert of type `sigma:<rule id>` keyed by the computer that logged the
event; further matches on that computer within `incident_gap` grow the same alert (count, end,
evidence), as the built-in detectors' incidents do. Correlations are keyed by their group-by
values and grow the same way once they fired.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from datetime import datetime

from ...activities import evidence_of
from ...alerts import Alert, Evidence
from ...catalogue import GROUP_ADD_IDS, GROUP_REMOVE_IDS
from ...config import Detection
from ...model import WindowsEvent
from ..base import Lru, add_unique, plural
from .correlation import Correlation
from .loader import CompiledRule, SigmaRuleset
from .meta import RuleMeta

HOST_FIELDS = frozenset({"Computer", "IpAddress", "Workstation", "WorkstationName", "SourceAddress", "ClientAddress",
                         "SourceNetworkAddress", "ClientName"})
ACCOUNT_FIELDS = frozenset({"TargetUserName", "SubjectUserName", "UserName", "AccountName", "MemberName", "MemberSid",
                            "TargetUserSid", "SamAccountName", "TargetOutboundUserName"})
_GROUP_IDS = GROUP_ADD_IDS | GROUP_REMOVE_IDS
_EMPTY = ("", "-", "NULL", "(null)")
_CACHE_CAP = 4096


def _account(ev: WindowsEvent) -> str | None:
    """Who the event is about: the member of a group change, else the target, else the subject."""
    d = ev.data
    names = ("MemberName", "MemberSid") if ev.event_id in _GROUP_IDS else ("TargetUserName", "AccountName",
                                                                           "SubjectUserName", "UserName")
    return next((v for n in names if (v := d.get(n)) and v not in _EMPTY), None)


class SigmaMatcher:
    def __init__(self, ruleset: SigmaRuleset, cfg: Detection | None = None) -> None:
        cfg = cfg or Detection()
        self.ruleset = ruleset
        self.gap = cfg.incident_gap
        self.max_evidence = cfg.max_evidence
        self._open: Lru[tuple[str, str], Alert] = Lru()
        self._index: dict[tuple[str | None, int | None], list[CompiledRule]] = {}
        for r in ruleset.rules:
            if not r.output and not r.correlations:
                continue
            for ch in (None,) if r.channels is None else r.channels:  # an empty set: can never match
                for eid in (None,) if r.event_ids is None else r.event_ids:
                    self._index.setdefault((ch, eid), []).append(r)
        self._cache: dict[tuple[str, int], list[CompiledRule]] = {}
        self._meta: dict[str, tuple[RuleMeta, Correlation | None]] = {r.meta.alert_type: (r.meta, None)
                                                                       for r in ruleset.rules}
        self._meta.update({c.meta.alert_type: (c.meta, c) for c in ruleset.correlations})
        self._state = {id(c): c.state() for c in ruleset.correlations}  # per-group windows, this matcher's own
        self.errors: Counter = Counter()  # rule id -> events its test raised on (counted, skipped)
        self.matches: Counter = Counter()  # rule id -> events matched

    def candidates(self, ev: WindowsEvent) -> list[CompiledRule]:
        key = (ev.channel, ev.event_id)
        rules = self._cache.get(key)
        if rules is None:
            ch, idx = ev.channel.lower(), self._index
            rules = [r for k in ((ch, ev.event_id), (ch, None), (None, ev.event_id), (None, None))
                     for r in idx.get(k, ())]
            if len(self._cache) >= _CACHE_CAP:
                self._cache.clear()
            self._cache[key] = rules
        return rules

    def feed(self, ev: WindowsEvent) -> list[Alert]:
        rules = self.candidates(ev)
        if not rules:
            return []
        out: list[Alert] = []
        for r in rules:
            try:
                hit = r.match(ev)
            except Exception:  # a value no test foresaw: count it, never stop the stream
                self.errors[r.meta.uid] += 1
                continue
            if hit:
                self.matches[r.meta.uid] += 1
                self._on_match(r, ev, out)
        return out

    # -- incidents ------------------------------------------------------------------------------
    def _current(self, type_: str, key: str, t: datetime) -> Alert | None:
        a = self._open.get((type_, key))
        if a is not None and (t - a.end).total_seconds() <= self.gap:
            return a
        return None

    def _new(self, meta: RuleMeta, key: str, start: datetime, end: datetime, kind: str) -> Alert:
        a = Alert(type=meta.alert_type, key=key, title=meta.title, description="", severity=meta.severity,
                  technique=meta.technique, start=start, end=end, count=0,
                  details={"sigma": {"id": meta.uid, "kind": kind, "level": meta.level, "tags": list(meta.tags),
                                     "file": meta.path}})
        old = self._open.get((meta.alert_type, key))
        if old is not None and old.start == start:  # same incident, same id: grow it, never a twin
            return old
        self._open.put((meta.alert_type, key), a)
        return a

    def _grow(self, a: Alert, t: datetime, evidence: Iterable[Evidence], n: int = 1) -> None:
        if a.count:
            a.revision += 1
        a.count += n
        if t > a.end:
            a.end = t
        for e in evidence:
            if len(a.evidence) < self.max_evidence:
                a.evidence.append(e)

    def _on_match(self, r: CompiledRule, ev: WindowsEvent, out: list[Alert]) -> None:
        t, evid = ev.time, evidence_of(ev)
        if r.output:
            a = self._current(r.meta.alert_type, ev.computer, t) or self._new(r.meta, ev.computer, t, t, "rule")
            self._grow(a, t, (evid,))
            add_unique(a.hosts, ev.computer)
            account = _account(ev)
            if account:
                add_unique(a.accounts, account)
            if "fields" not in a.details:  # the first matching event's data, for the analyst
                a.details["fields"] = {k: v[:300] for k, v in list(ev.data.items())[:30] if v}
            out.append(a)
        for corr, i in r.correlations:
            groups = self._state[id(corr)]
            key, value, holds = corr.observe(groups, i, ev, t.timestamp(), evid)
            akey = "|".join(key) or "-"
            grown = self._current(corr.meta.alert_type, akey, t)
            if grown is not None:
                self._grow(grown, t, (evid,))
                if value is not None:
                    self._note_value(grown, corr, i, value)
            elif holds:
                grown = self._fire(corr, akey, key, corr.window(groups, key), t)
            else:
                continue
            add_unique(grown.dcs, ev.computer)
            out.append(grown)

    def _fire(self, corr: Correlation, key: str, group_values: tuple[str, ...], window: list, t: datetime) -> Alert:
        """A new correlation alert, carrying every match in the window that made it fire."""
        start = datetime.fromtimestamp(window[0][0], t.tzinfo)
        a = self._new(corr.meta, key, start, t, corr.kind)
        self._grow(a, t, (e for _, _, _, e in window), n=len(window))
        group = {}
        for name, getter_field, value in zip(corr.group_by, corr.group_fields[window[-1][1]], group_values):
            group[name] = value
            if value and getter_field in HOST_FIELDS:
                add_unique(a.hosts, value)
            elif value and getter_field in ACCOUNT_FIELDS:
                add_unique(a.accounts, value)
        a.details["group"] = group
        for _, base, value, _ in window:
            if value is not None:
                self._note_value(a, corr, base, value)
        return a

    def _note_value(self, a: Alert, corr: Correlation, base: int, value: str) -> None:
        values = a.details.setdefault("values", [])
        add_unique(values, value, cap=500)
        a.details["distinct_values"] = len(values)
        if corr.value_fields[base] in ACCOUNT_FIELDS:
            add_unique(a.accounts, value, cap=500)

    # -- text -----------------------------------------------------------------------------------
    def describe(self, a: Alert) -> str:
        meta, corr = self._meta.get(a.type, (None, None))
        level = a.details.get("sigma", {}).get("level", "?")
        when = f"between {a.start:%Y-%m-%d %H:%M:%S} and {a.end:%H:%M:%S} UTC"
        if corr is None:
            text = (f"Sigma rule \"{a.title}\" ({level}) matched {plural(a.count, 'event')} on "
                    f"{a.hosts[0] if a.hosts else a.key} {when}.")
            if a.accounts:
                text += f" Account(s): {', '.join(a.accounts[:10])}."
        else:
            group = ", ".join(f"{k}={v}" for k, v in a.details.get("group", {}).items()) or "all events"
            text = (f"Sigma correlation \"{a.title}\" ({corr.kind}, {level}) for {group}: "
                    f"{plural(a.count, 'matching event')} {when}")
            values = a.details.get("values")
            if values:
                shown = ", ".join(values[:10]) + (", ..." if len(values) > 10 else "")
                text += f", {plural(len(values), 'distinct ' + (corr.value_field or 'value'))} ({shown})"
            text += "."
        if meta is not None and meta.description:
            text += f" Rule: {meta.description}"
        return text
