"""What the account-management detectors (preauth-disabled, nopac, sid-history, dcshadow,
dsrm-password-change) share: who acted from where, and how an alert records it."""

from __future__ import annotations

from ...activities import DcActivity
from ...alerts import Alert
from ..base import add_unique

PRIVILEGED_RIDS = frozenset({"500", "502", "512", "516", "518", "519", "498", "521"})
PRIVILEGED_SIDS = frozenset({"S-1-5-32-544", "S-1-5-32-548", "S-1-5-32-549", "S-1-5-32-551"})


def actor_text(act: DcActivity) -> str:
    """`CORP\\hack1 (from 10.0.0.5)`: the account that acted and where its logon came from."""
    name = f"{act.actor_domain}\\{act.actor}" if act.actor_domain and act.actor else act.actor or "an unknown account"
    return f"{name} (from {act.source})" if act.source else name


def note_actor(a: Alert, act: DcActivity) -> None:
    """The actor as an account, its source as a host, the logging DC as a DC."""
    add_unique(a.accounts, act.actor)
    add_unique(a.hosts, act.source)
    add_unique(a.dcs, act.host)
    if act.actor:
        a.details.setdefault("actor", act.actor)
    if act.source:
        a.details.setdefault("source", act.source)


def domain_of(sid: str) -> str:
    """`S-1-5-21-a-b-c-1104` -> `S-1-5-21-a-b-c`; other SIDs have no domain part."""
    parts = (sid or "").upper().split("-")
    return "-".join(parts[:7]) if len(parts) == 8 and parts[3] == "21" else ""


def privileged_sid(sid: str) -> bool:
    """Administrator, krbtgt, Domain/Schema/Enterprise Admins, DCs, RODCs, Administrators, operators."""
    s = (sid or "").upper()
    return s in PRIVILEGED_SIDS or (bool(domain_of(s)) and s.rsplit("-", 1)[-1] in PRIVILEGED_RIDS)


def listed(names: set[str], account: str, sid: str = "") -> bool:
    """An allow-list entry (name, `DOM\\name` or SID) matching the account."""
    if not names:
        return False
    bare = (account or "").split("\\")[-1].split("@")[0].lower()
    return bare in names or (bool(sid) and sid.upper() in names)


def allow_set(entries: list[str]) -> set[str]:
    out = set()
    for e in entries:
        e = e.strip()
        if e:
            out.add(e.upper() if e.upper().startswith("S-1-") else e.split("\\")[-1].split("@")[0].lower())
    return out
