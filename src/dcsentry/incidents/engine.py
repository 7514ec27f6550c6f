"""Alerts in, incidents out. No sockets, no database: `hunt` feeds it the final alerts, the service's
single incident linker (runtime/linking.py) feeds it every alert as the store commits it.

`link(alert)` is idempotent and takes an alert again when it grows (a spray that later guesses an
account): the alert keeps its incident, and the new entities may pull other incidents in. When an alert
joins several incidents they merge into the oldest (by start, then id); the others are recorded in its
`merged` list and reported by `link` so a store can mark them.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field

from ..activities.context import DomainContext
from ..alerts import Alert
from ..config import Incidents as IncidentSettings
from ..model import iso_utc
from .entities import AlertEntities, Resolver, handed_on_at, of_alert, outputs
from .model import Incident, IncidentAlert, incident_id
from .rules import DOMINANCE, FEEDS, SEVERITY_ORDER, STEP_NAMES


@dataclass(slots=True)
class _Seen:
    id: str  # the alert's id, computed once (Alert.id hashes on each call)
    alert: Alert
    ents: AlertEntities
    start: float
    end: float
    incident: str


@dataclass(slots=True)
class LinkResult:
    incident: Incident
    merged: list[str] = field(default_factory=list)  # incident ids folded into `incident` just now


class IncidentEngine:
    def __init__(self, settings: IncidentSettings | None = None, ctx: DomainContext | None = None) -> None:
        self.settings = settings or IncidentSettings()
        self.resolver = Resolver(ctx)
        self.incidents: dict[str, Incident] = {}
        self.redirect: dict[str, str] = {}  # merged incident id -> the one it went into
        self._seen: dict[str, _Seen] = {}
        self._members: dict[str, set[str]] = defaultdict(set)  # incident id -> alert ids
        self._by: dict[tuple[str, str], set[str]] = defaultdict(set)  # ("host"|"actor"|"target", key) -> alert ids
        self._offers: dict[str, set[tuple[str, int]]] = defaultdict(set)  # account key -> (producer alert id, feed #)

    # -- linking ------------------------------------------------------------------------------
    def link_all(self, alerts: list[Alert]) -> list[Incident]:
        """`hunt`: every alert (oldest first), then the incidents, oldest first."""
        for a in sorted(alerts, key=lambda x: (x.start, x.end, x.id)):
            self.link(a)
        return sorted(self.incidents.values(), key=lambda i: (i.start, i.id))

    def link(self, a: Alert) -> LinkResult | None:
        """Put `a` into its incident (health alerts have none); sets `a.incident`."""
        if a.kind != "security":
            return None
        ents = of_alert(a, self.resolver)
        s, e = a.start.timestamp(), a.end.timestamp()
        aid = a.id
        old = self._seen.get(aid)
        why: dict[str, str] = {}  # incident id -> reason, for the record
        for other, reason in self._related(a, aid, ents, s, e):
            inc_id = self.resolve(self._seen[other].incident)
            why.setdefault(inc_id, f"{reason} (alert {other})")
        ids = set(why)
        if old is not None:
            ids.add(self.resolve(old.incident))
        if not ids:
            inc = Incident(incident_id(aid), a.start, a.end)
            self.incidents[inc.id] = inc
            ids = {inc.id}
        survivor = min(ids, key=lambda i: (self.incidents[i].start, i))
        merged = sorted(ids - {survivor})
        for m in merged:
            self._merge(m, survivor, a)
        inc = self.incidents[survivor]
        if old is None and survivor in why:
            inc.links.append({"alert": aid, "type": a.type, "via": why[survivor]})
        for m in merged:
            inc.links.append({"alert": aid, "type": a.type, "via": why.get(m, "")})
        self._index(a, aid, ents, s, e, survivor, old)
        a.incident = survivor
        self._summarise(inc)
        return LinkResult(inc, merged)

    def adopt(self, a: Alert, inc_id: str, record: dict | None = None) -> None:
        """A stored alert back into its stored incident (the service's restart), without linking;
        `record`: the stored incident (its links, merges and status are kept). Then `summarise_all`."""
        inc = self.incidents.get(inc_id)
        if inc is None:
            inc = self.incidents[inc_id] = Incident(inc_id, a.start, a.end)
            if record:
                inc.links, inc.merged = list(record.get("links", [])), list(record.get("merged", []))
                inc.status, inc.revision = record.get("status", "open"), int(record.get("revision", 0))
                for m in inc.merged:
                    self.redirect[m["id"]] = inc_id
        ents = of_alert(a, self.resolver)
        self._index(a, a.id, ents, a.start.timestamp(), a.end.timestamp(), inc_id, None)
        a.incident = inc_id

    def summarise_all(self) -> None:
        for inc in self.incidents.values():
            self._summarise(inc)

    def expire(self, before: float) -> int:
        """Forget incidents that ended before `before` (epoch seconds): no alert can join them any more
        (the service passes its newest alert's end less both windows). Returns how many went."""
        old = [i for i, inc in self.incidents.items() if inc.end.timestamp() < before]
        for inc_id in old:
            for aid in self._members.pop(inc_id, set()):
                sn = self._seen.pop(aid)
                for key in [("host", h) for h in sn.ents.sources] + [("actor", k) for k in sn.ents.actors] + \
                        [("target", k) for k in sn.ents.targets]:
                    self._by[key].discard(aid)
                    if not self._by[key]:
                        del self._by[key]
                for offers in self._offers.values():
                    offers -= {o for o in offers if o[0] == aid}
            del self.incidents[inc_id]
        self.redirect = {k: v for k, v in self.redirect.items() if self.resolve(v) in self.incidents}
        self._offers = defaultdict(set, {k: v for k, v in self._offers.items() if v})
        return len(old)

    def resolve(self, inc_id: str) -> str:
        while inc_id in self.redirect:
            inc_id = self.redirect[inc_id]
        return inc_id

    def _related(self, a: Alert, aid: str, ents: AlertEntities, s: float, e: float) -> list[tuple[str, str]]:
        win, feed_win = self.settings.window, self.settings.feed_window
        out: list[tuple[str, str]] = []
        for kind, key in sorted(ents.links()):
            slot = ("host" if kind == "host" else "actor", key)
            for other in self._by.get(slot, ()):
                o = self._seen[other]
                if other != aid and max(0.0, s - o.end, o.start - e) <= win:
                    out.append((other, f"same {'source host' if kind == 'host' else 'account'} {key}"))
        for role, keys in (("actor", ents.actors), ("target", ents.targets)):  # a as the consumer
            for key in sorted(keys):
                for other, n in self._offers.get(key, ()):
                    f, seen = FEEDS[n], self._seen.get(other)
                    if seen is None or other == aid or f.as_role != role or (f.consumers and a.type not in f.consumers):
                        continue
                    since = handed_on_at(seen.alert, f.output, key, self.resolver) or seen.start
                    if e >= since and s - seen.end <= feed_win:
                        out.append((other, f"{f.why}: {key}"))
        for f in FEEDS:  # a as the producer of what an earlier-seen alert used
            if f.producer != a.type:
                continue
            for key in sorted(outputs(a, ents, f.output, self.resolver)):
                for other in self._by.get((f.as_role, key), ()):
                    o = self._seen[other]
                    if other == aid or (f.consumers and o.alert.type not in f.consumers):
                        continue
                    since = handed_on_at(a, f.output, key, self.resolver) or s
                    if o.end >= since and o.start - e <= feed_win:
                        out.append((other, f"{f.why}: {key}"))
        return sorted(out)  # the reasons recorded do not depend on set order

    def _index(self, a: Alert, aid: str, ents: AlertEntities, s: float, e: float, inc: str, old: _Seen | None) -> None:
        if old is not None:
            self._members[self.resolve(old.incident)].discard(aid)
        self._seen[aid] = _Seen(aid, a, ents, s, e, inc)
        self._members[inc].add(aid)
        for h in ents.sources:
            self._by[("host", h)].add(aid)
        for k in ents.actors:
            self._by[("actor", k)].add(aid)
        for k in ents.targets:
            self._by[("target", k)].add(aid)
        for n, f in enumerate(FEEDS):
            if f.producer == a.type:
                for key in outputs(a, ents, f.output, self.resolver):
                    self._offers[key].add((aid, n))

    def _merge(self, gone: str, into: str, by: Alert) -> None:
        g, t = self.incidents.pop(gone), self.incidents[into]
        self.redirect[gone] = into
        for aid in self._members.pop(gone, set()):
            sn = self._seen[aid]
            sn.incident = into
            sn.alert.incident = into
            self._members[into].add(aid)
        t.merged.extend(g.merged)
        t.merged.append({"id": gone, "at": iso_utc(by.end), "by": by.id, "alerts": [x.id for x in g.alerts]})
        t.links.extend(g.links)

    # -- the story ----------------------------------------------------------------------------
    def _summarise(self, inc: Incident) -> None:
        mine = sorted((self._seen[x] for x in self._members[inc.id]), key=lambda x: (x.start, x.end, x.id))
        alerts = [sn.alert for sn in mine]
        inc.alerts = [IncidentAlert(sn.id, a.type, a.title, a.severity, _tactic(a), a.technique, a.start, a.end,
                                    _key_events(a)) for sn, a in zip(mine, alerts)]
        inc.start = min(a.start for a in alerts)
        inc.end = max(a.end for a in alerts)
        types = list(dict.fromkeys(a.type for a in alerts))
        sev = max((a.severity for a in alerts), key=_rank, default="low")
        inc.dominance = any(t in DOMINANCE for t in types)
        if inc.dominance and len(types) > 1:
            sev = "critical"
        inc.severity = sev
        inc.entities, inc.edges = _entities(mine, self.resolver)
        inc.title = _title(mine, types)
        inc.revision += 1


def _key_events(a: Alert) -> list[dict]:
    """The first and the last event behind the alert: where the step began and where it stood last."""
    ev = a.evidence
    picked = ev[:1] + ev[-1:] if len(ev) > 1 else ev
    return [e.to_dict() for e in picked]


def _rank(sev: str) -> int:
    return SEVERITY_ORDER.index(sev) if sev in SEVERITY_ORDER else 0


def _tactic(a: Alert) -> str:
    at = a.alert_type
    return at.tactic if at else str((a.details or {}).get("tactic") or "")


def _entities(mine: list[_Seen], r: Resolver) -> tuple[list[dict], list[dict]]:
    roles: dict[tuple[str, str], set[str]] = defaultdict(set)
    seen_as: dict[str, set[str]] = defaultdict(set)
    edges: dict[tuple[str, str, str], None] = {}
    for sn in mine:
        x = sn.ents
        for k in x.actors:
            roles[("account", k)].add("actor")
        for k in x.targets:
            roles[("account", k)].add("target")
        for h in x.sources:
            roles[("host", h)].add("source")
        for h in x.target_hosts:
            roles[("host", h)].add("target")
        for h in x.dcs:
            roles[("host", h)].add("dc")
        for h, names in x.seen_as.items():
            seen_as[h] |= names
        doers = [f"account:{k}" for k in sorted(x.actors)] or [f"host:{h}" for h in sorted(x.sources)]
        done = ([f"account:{k}" for k in sorted(x.targets)][:5] + [f"host:{h}" for h in sorted(x.target_hosts)]
                or [f"host:{h}" for h in sorted(x.dcs)])
        for h in sorted(x.sources):
            for d in doers:
                if d != f"host:{h}":
                    edges[(f"host:{h}", d, "from")] = None
        for d in doers:
            for t in done:
                if t != d:
                    edges[(d, t, sn.alert.type)] = None
    ctx = r.ctx
    out = []
    for (kind, name), rs in sorted(roles.items()):
        names = set(seen_as.get(name, set())) if kind == "host" else set()
        if kind == "host" and ctx is not None:
            names |= set(ctx.hosts.addresses_of(name))
        out.append({"kind": kind, "name": name, "roles": sorted(rs), "seen_as": sorted(names - {name})})
    return out, [{"from": f, "to": t, "type": ty} for f, t, ty in edges]


def _title(mine: list[_Seen], types: list[str]) -> str:
    """"Password spray from WS0019, then Kerberoasting and DCSync by jdoe"."""
    first = [sn for sn in mine if sn.alert.type == types[0]]
    head = STEP_NAMES.get(types[0], first[0].alert.title)
    src = sorted(first[0].ents.sources) or sorted({h for sn in first for h in sn.ents.sources})
    actors = Counter(k for sn in first for k in sn.ents.actors)
    head_by = f" by {actors.most_common(1)[0][0]}" if actors and not src else ""
    head += f" from {src[0]}" if src else head_by
    if len(types) == 1:
        return head
    segments: list[tuple[list[str], str]] = []  # consecutive steps by the same actor (or source) read as one
    for t in types[1:]:
        step = [sn for sn in mine if sn.alert.type == t]
        actors = Counter(k for sn in step for k in sn.ents.actors)
        srcs = sorted({h for sn in step for h in sn.ents.sources} - set(src))
        by = f" by {actors.most_common(1)[0][0]}" if actors else (f" from {srcs[0]}" if srcs else "")
        if segments and segments[-1][1] == by:
            segments[-1][0].append(STEP_NAMES.get(t, t))
        else:
            segments.append(([STEP_NAMES.get(t, t)], by))
    if head_by and segments[0][1] == head_by:  # "Log cleared, then DCShadow by x", not "... by x, then ... by x"
        head = head.removesuffix(head_by)
    return f"{head}, then " + ", ".join(_and(names) + who for names, who in segments)


def _and(names: list[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
