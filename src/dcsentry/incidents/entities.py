"""An alert's entities with their role (actor, target, source, target host, DC), read by the rules.

Names are keyed as the rest of dcsentry keys them (activities/context.py): accounts by bare lower-case
sAMAccountName (a SID resolved through the inventory when it can be), hosts by short upper-case name,
an address by the name the host alias table learned for it (else the address itself).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from ..activities.context import DomainContext, account_name, short_host
from ..alerts import Alert
from .rules import ACCOUNT_ROLE, HOST_TARGET_TYPES

Resolve = Callable[[str], str]


@dataclass(slots=True)
class AlertEntities:
    actors: set[str] = field(default_factory=set)
    targets: set[str] = field(default_factory=set)
    sources: set[str] = field(default_factory=set)
    target_hosts: set[str] = field(default_factory=set)
    dcs: set[str] = field(default_factory=set)
    seen_as: dict[str, set[str]] = field(default_factory=dict)  # host key -> the names/addresses it came as

    def links(self) -> set[tuple[str, str]]:
        """The entities that link alerts on their own (rules.py): source hosts and acting accounts."""
        return {("host", h) for h in self.sources} | {("account", a) for a in self.actors}


class Resolver:
    """Keys for names, through a DomainContext when there is one (inventory SIDs, host aliases)."""

    def __init__(self, ctx: DomainContext | None = None) -> None:
        self.ctx = ctx

    def account(self, name: str) -> str:
        n = (name or "").strip()
        if self.ctx is not None and n.upper().startswith("S-1-"):
            acc = self.ctx.inventory.get(sid=n)
            if acc is not None:
                return account_name(acc.name)
        return account_name(n)

    def host(self, name: str) -> str:
        if self.ctx is not None:
            return self.ctx.hosts.name_of(name)
        v = (name or "").strip()
        return v.lower() if ":" in v or v.replace(".", "").isdigit() else short_host(v)


def _names(value: object) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, (list, tuple, dict, set)):
        return [str(v) for v in value]
    return []


def of_alert(a: Alert, r: Resolver) -> AlertEntities:
    e = AlertEntities()
    d = a.details or {}
    role = ACCOUNT_ROLE.get(a.type, "actor")
    accounts = [x for x in a.accounts if x]
    actor = d.get("actor") if isinstance(d.get("actor"), str) else None
    if actor:
        e.actors.add(r.account(actor))
        e.targets.update(r.account(x) for x in accounts if r.account(x) != r.account(actor))
    elif role == "target":
        e.targets.update(r.account(x) for x in accounts)
    elif role == "actor-first" and accounts:
        e.actors.add(r.account(accounts[0]))
        e.targets.update(r.account(x) for x in accounts[1:])
    else:
        e.actors.update(r.account(x) for x in accounts)
    dcs = {short_host(x) for x in a.dcs if x}
    e.dcs = {x for x in dcs if x}
    named = {r.host(x) for k in ("source", "source_ip") for x in _names(d.get(k)) if x}
    for raw in a.hosts:
        key = r.host(raw)
        if not key or key == "localhost":
            continue
        e.seen_as.setdefault(key, set()).add(raw)
        if key in named:  # the detector said so: the source, even when it also logged the events
            e.sources.add(key)
        elif named or a.type in HOST_TARGET_TYPES or key in e.dcs or (r.ctx is not None and r.ctx.inventory.is_dc(key)):
            e.target_hosts.add(key)
        else:
            e.sources.add(key)
    e.dcs -= e.sources  # a workstation that logged its own 4625s is the source, not a DC
    for s in (e.actors, e.targets, e.sources, e.target_hosts):
        s.discard("")
    return e


def handed_on_at(a: Alert, output: str, key: str, r: Resolver) -> float | None:
    """When `a` handed the account `key` on, where it says (the guess of a spray or a brute force that
    grew for hours): an alert that ended before then cannot have used it."""
    if output != "guessed_accounts":
        return None
    for name, at in ((a.details or {}).get("guessed_at") or {}).items():
        if r.account(name) == key and isinstance(at, str):
            try:
                return datetime.fromisoformat(at).timestamp()
            except ValueError:
                return None
    return None


def outputs(a: Alert, e: AlertEntities, output: str, r: Resolver) -> set[str]:
    """What an alert hands on (rules.Feed.output), as account keys."""
    if output == "targets":
        return set(e.targets)
    return {k for k in (r.account(x) for x in _names((a.details or {}).get(output))) if k}
