"""What the activity readers and the detectors know about the domain beyond one event.

- `Inventory`: which accounts exist and which computers are domain controllers, learned from the
  stream (creations, deletions, successful authentications, DC-only events) and imported from an
  admin's export (`dcsentry inventory import`). An imported inventory is authoritative for
  "does this account exist"; a learned one only ever says "seen", never "does not exist".
- `LogonLogons`: the 4624 behind a logon id on a computer, so an action event (4662, 4697,
  5136) can say where its actor came from (reference/dc-log-alerts.md section 0, "Logon join").
- `DomainContext`: both, plus the DC set, handed to every reader and every DC-log detector.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field

from ..lru import Lru
from . import Logon

_SESSIONS_CAP = 200_000
_ACCOUNTS_CAP = 1_000_000


def short_host(name: str) -> str:
    """NetBIOS-style host key: no leading backslashes, no domain suffix, no `$`, upper case."""
    name = (name or "").strip().lstrip("\\")
    if name in ("-", "NULL", ""):
        return ""
    return name.split(".", 1)[0].rstrip("$").upper()


def account_name(name: str) -> str:
    """The bare sAMAccountName, lower case: `DOM\\u`, `u@realm` and `CN=u,...` all give `u`."""
    n = (name or "").strip()
    if n.upper().startswith("CN="):
        n = n[3:].split(",", 1)[0]
    n = n.split("\\")[-1].split("@")[0]
    return "" if n in ("-", "") else n.lower()


@dataclass(slots=True)
class Account:
    name: str  # sAMAccountName as first seen (case kept)
    sid: str = ""
    kind: str = "user"  # user | computer
    dn: str = ""
    upn: str = ""
    dns_host_name: str = ""
    sensitive: bool = False  # adminCount=1 or member of a privileged group (import)
    dc: bool = False
    source: str = "learned"  # learned | imported
    enc_types: int | None = None  # msDS-SupportedEncryptionTypes (import)
    spns: list[str] = field(default_factory=list)
    disabled: bool = False  # ACCOUNTDISABLE / Enabled=False (import)
    uac: int | None = None  # LDAP userAccountControl (import): DONT_REQ_PREAUTH 0x400000, TRUSTED_FOR_DELEGATION ...


class Inventory:
    """Accounts and domain controllers. Learned entries are capped (oldest forgotten); imported
    entries are kept whole."""

    def __init__(self) -> None:
        self.accounts: OrderedDict[str, Account] = OrderedDict()  # account_name() -> Account
        self.by_sid: dict[str, str] = {}
        self.by_dn: dict[str, str] = {}  # distinguishedName (lower case) -> key, from imports
        self.deleted: set[str] = set()
        self.imported = False  # an authoritative export was loaded
        self.dc_names: set[str] = set()  # short host names of DCs (upper case)

    # -- learning -----------------------------------------------------------------------------
    def learn(self, name: str, sid: str = "", *, kind: str | None = None, source: str = "learned") -> Account | None:
        key = account_name(name)
        if not key:
            return None
        acc = self.accounts.get(key)
        if acc is None:
            acc = Account(name=name.split("\\")[-1].split("@")[0],
                          kind=kind or ("computer" if key.endswith("$") else "user"), source=source)
            self.accounts[key] = acc
            if len(self.accounts) > _ACCOUNTS_CAP:
                old_key, old = self.accounts.popitem(last=False)
                if old.source == "imported":  # never forget an imported account: put it back
                    self.accounts[old_key] = old
        else:
            self.accounts.move_to_end(key)
        if sid and sid not in ("-", "S-1-0-0") and not acc.sid:
            acc.sid = sid.upper()
            self.by_sid[acc.sid] = key
        if kind:
            acc.kind = kind
        self.deleted.discard(key)
        return acc

    def index_dn(self, acc: Account) -> None:
        if acc.dn:
            self.by_dn[acc.dn.lower()] = account_name(acc.name)

    def load(self, accounts: list[Account]) -> int:
        """An admin's export (activities/inventory_import.py): authoritative from now on. Returns
        the number of accounts taken; what the stream learned before stays."""
        n = 0
        for imp in accounts:
            key = account_name(imp.name)
            if not key:
                continue
            imp.source = "imported"
            old = self.accounts.get(key)
            if old is not None and old.sid and old.sid in self.by_sid and old.sid != imp.sid:
                self.by_sid.pop(old.sid, None)
            self.accounts[key] = imp
            self.deleted.discard(key)
            if imp.sid:
                imp.sid = imp.sid.upper()
                self.by_sid[imp.sid] = key
            self.index_dn(imp)
            if imp.dc:
                self.add_dc(imp.dns_host_name or imp.name)
            n += 1
        self.imported = self.imported or n > 0
        return n

    def replace_imported(self, accounts: list[Account]) -> int:
        """A new import: the previous one's accounts go (a snapshot lacking an account means it is
        gone), the new ones come; learned accounts and DCs stay."""
        for key in [k for k, a in self.accounts.items() if a.source == "imported"]:
            acc = self.accounts.pop(key)
            if acc.sid and self.by_sid.get(acc.sid) == key:
                del self.by_sid[acc.sid]
        self.by_dn.clear()
        self.imported = False
        return self.load(accounts)

    def forget(self, name: str) -> None:
        """An account deleted (4726/4743): it no longer exists."""
        key = account_name(name)
        acc = self.accounts.pop(key, None)
        if acc is not None and acc.sid:
            self.by_sid.pop(acc.sid, None)
        if key:
            self.deleted.add(key)

    def add_dc(self, host: str) -> None:
        h = short_host(host)
        if h:
            self.dc_names.add(h)

    # -- questions ----------------------------------------------------------------------------
    def get(self, name: str = "", sid: str = "") -> Account | None:
        if sid:
            key = self.by_sid.get(sid.upper())
            if key is not None:
                return self.accounts.get(key)
        return self.accounts.get(account_name(name))

    def exists(self, name: str, sid: str = "") -> bool | None:
        """True when known, False only when an imported inventory lacks it (or it was deleted),
        None when nobody can tell (learning only sees accounts that act)."""
        key = account_name(name)
        if not key:
            return None
        if self.get(name, sid) is not None:
            return True
        if key in self.deleted or self.imported:
            return False
        return None

    def is_dc(self, host_or_account: str) -> bool:
        """A DC by host name (`DC01`, `dc01.corp.local`) or machine account (`DC01$`, `CORP\\DC01$`)."""
        raw = (host_or_account or "").split("\\")[-1]
        if short_host(raw) in self.dc_names:
            return True
        acc = self.accounts.get(account_name(raw))
        return bool(acc and acc.dc)

    def is_sensitive(self, name: str, sid: str = "") -> bool:
        acc = self.get(name, sid)
        return bool(acc and acc.sensitive)


class LogonLogons:
    """4624 by (computer, TargetLogonId), kept `keep` seconds of event time (DC sessions last
    hours: reference section 0 says at least 10 h), capped in count."""

    def __init__(self, keep: float = 12 * 3600.0) -> None:
        self.keep = keep
        self._by_id: Lru[tuple[str, str], tuple[float, Logon]] = Lru(_SESSIONS_CAP)
        self._expired = 0.0  # event time of the last expiry

    def add(self, s: Logon) -> None:
        t = s.time.timestamp()
        self._by_id.put((s.host, s.logon_id.lower()), (t, s))
        if t - self._expired > 60:  # sessions past `keep` go as time moves, not only at the cap
            self._expired = t
            self.expire(t)

    def get(self, host: str, logon_id: str, now: float | None = None) -> Logon | None:
        if not logon_id or logon_id in ("-", "0x0", "0x3e7", "0x3e4", "0x3e5"):
            return None  # no session, or SYSTEM / NETWORK SERVICE / LOCAL SERVICE: no 4624 to find
        hit = self._by_id.get((short_host(host), logon_id.lower()))
        if hit is None:
            return None
        t, s = hit
        if now is not None and now - t > self.keep:
            return None
        return s

    def expire(self, before: float) -> None:
        while self._by_id:
            key, (t, _) = next(iter(self._by_id.items()))
            if t >= before - self.keep:
                break
            del self._by_id[key]

    def __len__(self) -> int:
        return len(self._by_id)


class HostAliases:
    """Which addresses are which host, learned from events that carry both (a 4624's WorkstationName
    and IpAddress, a computer account's 4768/4769 from an address, a 5156 outbound connection in the
    host's own log). The latest name for an address wins (DHCP leases move); capped in count.
    Incidents (incidents/) link a spray named by host to a Kerberoast addressed by IP through it."""

    def __init__(self, cap: int = 100_000) -> None:
        self.cap = cap
        self.by_address: Lru[str, str] = Lru(cap)  # address -> short host name
        self.fresh: dict[str, str] = {}  # learned or changed since the service last stored them

    def link(self, name: str, address: str) -> None:
        h = short_host(name)
        a = (address or "").strip().lower()
        if not h or not a or a in ("localhost", "-") or a.startswith(("127.", "::1", "fe80:", "169.254.")):
            return
        if h[0].isdigit() and h.replace(".", "").isdigit():
            return  # an address logged as the name says nothing
        if self.by_address.get(a) != h and len(self.fresh) < self.cap:
            self.fresh[a] = h
        self.by_address.put(a, h)

    def name_of(self, host_or_address: str) -> str:
        """The host's short name: the learned name of an address, else the name given (short form)."""
        v = (host_or_address or "").strip()
        named = self.by_address.get(v.lower())
        if named:
            return named
        if ":" in v or v.replace(".", "").isdigit():
            return v.lower()
        return short_host(v)

    def addresses_of(self, name: str) -> list[str]:
        h = short_host(name)
        return sorted(a for a, n in self.by_address.items() if n == h)


class DomainContext:
    """Shared by the readers (which fill it) and the DC-log detectors (which ask it)."""

    def __init__(self, inventory: Inventory | None = None) -> None:
        self.inventory = inventory or Inventory()
        self.sessions = LogonLogons()
        self.hosts = HostAliases()
        self.clock = 0.0  # latest event time seen (epoch seconds)

    @property
    def dcs(self) -> set[str]:
        return self.inventory.dc_names
