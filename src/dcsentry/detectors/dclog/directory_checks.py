"""The named tests of the directory rule table (directory_rules.py): what a row's `change`, `target`
and `writer` mean, on a view of one `DirectoryChange` that parses its security descriptors once.

A change test returns what was written, in words (empty: no match); target and writer tests say
yes or no. Two change tests learn what is usual (a GPO's editors, a target's RBCD delegates): a
finding while they learn marks the view `learning`, and its alert says so.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from fnmatch import fnmatch

from ...activities.context import DomainContext, account_name
from ...activities.dclog import sddl
from ...activities.dclog.accounts import AccountChange
from ...activities.dclog.directory import DirectoryChange
from ...activities.dclog.fields import is_machine
from ...activities.sensitive import BUILTIN, BY_NAME, DOMAIN_RIDS
from ...config import Detection
from ..base import Lru
from ..baseline import Baseline
from .directory_rules import (
    CSE_NAMES,
    CSE_RISKY,
    DEFAULT_GPOS,
    DEFAULT_RIDS,
    DEFAULT_TRUSTEES,
    PLAIN_PRIMARY,
    PRIVILEGED_PRIMARY,
)

LEARNED = frozenset({"new-editor", "new-delegate"})  # tests that learn what is usual: their alerts may say learning
_CONTROL = frozenset({"GA", "GW", "WD", "WO", "WP", "CR", "CC", "DC", "SW", "DT", "SD"})
_GUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_PRIVILEGED_NAMES = frozenset(n.lower() for n in [*BUILTIN.values(), *DOMAIN_RIDS.values(), *BY_NAME,
                                                  "Administrator", "krbtgt", "AZUREADSSOACC"])
_DEFAULT_OWNERS = frozenset({"DA", "BA", "EA", "SY", "S-1-5-18", "S-1-5-32-544"})
_SENSITIVE_CLASSES = frozenset({"domaindns", "organizationalunit", "grouppolicycontainer", "pkicertificatetemplate",
                                "certificationauthority", "pkienrollmentservice", "mspki-enterprise-oid",
                                "trusteddomain", "dmd", "crossrefcontainer"})
_SENSITIVE_DN = re.compile(r",ou=domain controllers,|cn=public key services,cn=services,cn=configuration,"
                           r"|^cn=(policies|system|users|computers|builtin),|^cn=azureadssoacc,")


class ChangeView:
    """One change, with what the tests ask computed once (the SD diff above all)."""

    __slots__ = ("ch", "dn", "cn", "cls", "learning", "trustees", "_sds", "_new_aces")

    def __init__(self, ch: DirectoryChange) -> None:
        self.ch = ch
        self.dn = ch.object_dn.lower()
        first = self.dn.split(",", 1)[0]
        self.cn = first.split("=", 1)[1] if "=" in first else first
        self.cls = ch.object_class.lower()
        self.learning = False  # set by a learned test (LEARNED) while its table is being learned
        self.trustees: list[str] = []  # who the written ACEs / delegations are for (SIDs or aliases)
        self._sds: tuple[sddl.SecurityDescriptor | None, sddl.SecurityDescriptor] | None = None
        self._new_aces: list[sddl.Ace] | None = None

    @property
    def sds(self) -> tuple[sddl.SecurityDescriptor | None, sddl.SecurityDescriptor]:
        if self._sds is None:
            ch = self.ch
            old = sddl.parse(ch.removed[0]) if ch.removed else None
            self._sds = (old if old is not None and old.valid else None,
                         sddl.parse(ch.added[-1] if ch.added else ""))
        return self._sds

    @property
    def new_aces(self) -> list[sddl.Ace]:
        """ACEs of the new DACL absent from the old; without an old SD, its explicit ACEs."""
        if self._new_aces is None:
            old, new = self.sds
            self._new_aces = (sddl.added_aces(old, new) if old is not None
                              else [a for a in new.dacl if not a.inherited])
        return self._new_aces

    @property
    def gpo(self) -> str:
        """The GPO GUID of a groupPolicyContainer DN (`CN={GUID},CN=Policies,...`), else ""."""
        m = _GUID.search(self.cn) if self.cls == "grouppolicycontainer" else None
        return m.group(0) if m else ""


def _default_trustee(trustee: str) -> bool:
    t = trustee.upper()
    if t in DEFAULT_TRUSTEES:
        return True
    r = sddl.rid(t)
    return r is not None and r in DEFAULT_RIDS


def short_value(v: str, n: int = 120) -> str:
    return v if len(v) <= n else v[:n] + "..."


class Checks:
    """The tests, with what they need: settings, the inventory, and the tables they learn."""

    def __init__(self, cfg: Detection, baseline: Baseline, ctx: DomainContext) -> None:
        self.baseline = baseline
        self.ctx = ctx
        self.configure(cfg)
        self.gpo_editors = baseline.table("gpo_editors")  # "gpo|actor" -> first edit time
        self.gpo_editor_accounts: Lru[str, float] = baseline.table("gpo_editor_accounts")  # actor -> first GPO edit
        self.rbcd_known: Lru[str, float] = baseline.table("rbcd_delegates")  # "target dn|delegate" -> first seen
        self.gpo_names: Lru[str, str] = Lru(50_000)  # GPO GUID -> displayName seen in the stream
        self.changes: dict[str, Callable[[ChangeView], list[str]]] = {
            "added": self._added, "replication-ace": self._replication, "control-ace": self._control,
            "owner": self._owner, "sd-changed": self._sd_changed, "privileged-group": self._pgid_privileged,
            "unusual-group": self._pgid_unusual, "cse-risky": lambda v: self._cse(v, True),
            "cse-added": lambda v: self._cse(v, False), "any": self._any, "new-editor": self._new_editor,
            "new-delegate": self._new_delegate, "gpo-linked": self._linked, "replaced": self._replaced}
        self.targets: dict[str, Callable[[ChangeView], bool]] = {
            "": lambda v: True, "krbtgt": lambda v: v.dn.startswith("cn=krbtgt,"), "dc": self._is_dc,
            "sensitive": self._sensitive_object, "sensitive-account": self._sensitive_account,
            "default-gpo": lambda v: v.gpo in DEFAULT_GPOS}
        self.writers: dict[str, Callable[[ChangeView], bool]] = {
            "any": lambda v: True, "machine": self._machine_writer, "self": self._self_writer,
            "other-unlisted": lambda v: not self._self_writer(v) and not self._key_writer(v),
            "unplanned": lambda v: not self.planned(v)}

    def configure(self, cfg: Detection) -> None:
        """The file's lists plus the console's run-time ones (`directory_writers_allowed`: planned
        ACL/GPO editors and key provisioning accounts; `sensitive_objects`: extra sensitive DNs)."""
        self.cfg = cfg.directory_changes
        self.honeytokens = {account_name(h) for h in cfg.honeytokens if h.strip()}
        self.key_writers = [p.lower() for p in (*self.cfg.key_writers, *cfg.directory_writers_allowed)]
        self.allowed = {account_name(a) if not a.upper().startswith("S-1-") else a.upper()
                        for a in (*self.cfg.allowed_writers, *cfg.directory_writers_allowed)}
        self.repl_ok = {a.strip().lower() for a in self.cfg.replication_trustees}
        self.sensitive_dns = [d.strip().lower() for d in (*self.cfg.sensitive_dns, *cfg.sensitive_objects) if d.strip()]

    def _added(self, v: ChangeView) -> list[str]:
        ch = v.ch
        if not ch.added:
            return []
        if ch.syntax == "2.5.5.15" or ch.attr == "msds-allowedtoactonbehalfofotheridentity":
            return self._delegates(v)
        if ch.attr == "msds-keycredentiallink":
            return [f"key credential added ({short_value(x, 48)})" for x in ch.added]
        return [f"{ch.attribute} + {short_value(x)}" for x in ch.added]

    def _delegates(self, v: ChangeView) -> list[str]:
        """RBCD: the accounts the new descriptor lets act on behalf of others that the old one did not
        (re-applying a known delegation writes the same value again: nothing new, no alert)."""
        ch = v.ch
        if not ch.added:
            return []
        old, new = v.sds
        if not new.valid:
            if ch.removed and ch.removed[-1] == ch.added[-1]:
                return []
            return [f"{ch.attribute} set ({short_value(ch.added[-1], 60)!r}: not rendered)"]
        before = {a.trustee.upper() for a in old.dacl if a.allow} if old is not None else set()
        fresh = [a.trustee.upper() for a in new.dacl if a.allow and a.trustee.upper() not in before]
        return self._delegate_words(v, fresh)

    def _delegate_words(self, v: ChangeView, trustees: list[str]) -> list[str]:
        if not trustees:
            return []
        v.trustees.extend(trustees)
        who = ", ".join(dict.fromkeys(sddl.trustee_words(t, self.name) for t in trustees))
        return [f"{v.ch.attribute} now lets {who} act on behalf of other users"]

    def _new_delegate(self, v: ChangeView) -> list[str]:
        """RBCD with a delegate this target has not had before. (target, delegate) pairs seen while
        the detector learns are the known service delegations (the alert says learning)."""
        words = self._delegates(v)
        old, new = v.sds
        if not words or not new.valid:
            return words
        before = {a.trustee.upper() for a in old.dacl if a.allow} if old is not None else set()
        learning = self.baseline.clock.learning("rbcd-delegates", v.ch.time, self.cfg.rbcd_learning)
        fresh = []
        for t in dict.fromkeys(a.trustee.upper() for a in new.dacl if a.allow and a.trustee.upper() not in before):
            key = f"{v.dn}|{t}"
            if key in self.rbcd_known:
                self.rbcd_known.move_to_end(key)
                continue
            self.rbcd_known.put(key, v.ch.time.timestamp())
            fresh.append(t)
        v.learning = learning
        return self._delegate_words(v, fresh)

    def _replication(self, v: ChangeView) -> list[str]:
        out = []
        for ace in v.new_aces:
            if sddl.grants_replication(ace) and not self._replication_allowed(ace.trustee):
                v.trustees.append(ace.trustee)
                out.append(sddl.ace_words(ace, self.name))
        return out

    def _control(self, v: ChangeView) -> list[str]:
        out = []
        root = v.cls == "domaindns"
        for ace in v.new_aces:
            if not ace.allow or ace.inherited or not (ace.rights & _CONTROL) or _default_trustee(ace.trustee):
                continue
            if root and sddl.grants_replication(ace) and ace.object_guid:
                continue  # a replication ACE on the root is dcsync-rights's
            v.trustees.append(ace.trustee)
            out.append(sddl.ace_words(ace, self.name))
        return out

    def _owner(self, v: ChangeView) -> list[str]:
        old, new = v.sds
        if old is None or not new.valid or not new.owner or old.owner.upper() == new.owner.upper():
            return []
        if new.owner.upper() in _DEFAULT_OWNERS or sddl.rid(new.owner) in (512, 519):
            return []
        v.trustees.append(new.owner)
        return [f"owner {sddl.trustee_words(old.owner, self.name)} -> {sddl.trustee_words(new.owner, self.name)}"]

    def _sd_changed(self, v: ChangeView) -> list[str]:
        old, new = v.sds
        out = [f"added: {sddl.ace_words(a, self.name)}" for a in v.new_aces]
        v.trustees.extend(a.trustee for a in v.new_aces if a.allow)
        if old is not None:
            out += [f"removed: {sddl.ace_words(a, self.name)}" for a in sddl.removed_aces(old, new)]
            if new.owner and old.owner.upper() != new.owner.upper():
                out.append(f"owner {old.owner} -> {new.owner}")
        return out

    def _rid_change(self, v: ChangeView) -> tuple[str, int] | None:
        ch = v.ch
        if not ch.added:
            return None
        try:
            new = int(ch.added[-1].strip())
        except ValueError:
            return None
        old = ch.removed[0].strip() if ch.removed else "?"
        return old, new

    def _pgid_privileged(self, v: ChangeView) -> list[str]:
        got = self._rid_change(v)
        if got is None or got[1] not in PRIVILEGED_PRIMARY:
            return []
        return [f"primaryGroupID {got[0]} -> {got[1]} ({PRIVILEGED_PRIMARY[got[1]]})"]

    def _pgid_unusual(self, v: ChangeView) -> list[str]:
        got = self._rid_change(v)
        if got is None or got[1] in PRIVILEGED_PRIMARY or got[1] in PLAIN_PRIMARY:
            return []
        return [f"primaryGroupID {got[0]} -> {got[1]}"]

    def _cse(self, v: ChangeView, risky: bool) -> list[str]:
        before = set(_GUID.findall(" ".join(v.ch.removed).lower()))
        new = [g for g in dict.fromkeys(_GUID.findall(" ".join(v.ch.added).lower())) if g not in before]
        if risky:
            new = [g for g in new if g in CSE_RISKY]
        return [f"{v.ch.attribute} + {CSE_NAMES.get(g, 'extension')} {{{g.upper()}}}" for g in new]

    def _any(self, v: ChangeView) -> list[str]:
        ch = v.ch
        old = ", ".join(short_value(x, 60) for x in ch.removed) or "(none)"
        new = ", ".join(short_value(x, 60) for x in ch.added) or "(none)"
        return [f"{ch.attribute} {old} -> {new}"]

    def _replaced(self, v: ChangeView) -> list[str]:
        """A value that existed changed to another (not set for the first time, as at creation)."""
        ch = v.ch
        if not ch.added or not ch.removed or ch.added[-1].lower() == ch.removed[0].lower():
            return []
        return self._any(v)

    def created(self, ch: DirectoryChange) -> None:
        """A GPO created in the stream (5137): its creator is one of its editors."""
        v = ChangeView(ch)
        if v.gpo:
            creator = account_name(ch.actor) or ch.actor_sid.lower()
            self.gpo_editors[f"{v.gpo}|{creator}"] = ch.time.timestamp()
            self.gpo_editor_accounts[creator] = self.gpo_editor_accounts.get(creator) or ch.time.timestamp()

    def _new_editor(self, v: ChangeView) -> list[str]:
        """An account editing group policy that was never seen editing any GPO. Version bumps by the
        usual GPO editors are normal (reference B8), whichever GPO they touch: the (GPO, editor) pairs
        are kept for the alert text, the editors themselves decide. Accounts seen while the detector
        learns are editors (the alert says learning); after that, a new editor alerts."""
        if not v.gpo:
            return []
        actor = account_name(v.ch.actor) or v.ch.actor_sid.lower()
        key = f"{v.gpo}|{actor}"
        self.gpo_editors[key] = self.gpo_editors.get(key) or v.ch.time.timestamp()
        if actor in self.gpo_editor_accounts:
            self.gpo_editor_accounts.move_to_end(actor)
            return []
        self.gpo_editor_accounts.put(actor, v.ch.time.timestamp())
        v.learning = self.baseline.clock.learning("gpo-editors", v.ch.time, self.cfg.gpo_learning)
        return self._any(v)

    def _linked(self, v: ChangeView) -> list[str]:
        before = set(_GUID.findall(" ".join(v.ch.removed).lower()))
        new = [g for g in dict.fromkeys(_GUID.findall(" ".join(v.ch.added).lower())) if g not in before]
        names = {g: self.gpo_names.get(g) or DEFAULT_GPOS.get(g, "") for g in new}
        return [f"GPO {names[g]} {{{g.upper()}}} linked".replace("GPO  ", "GPO ") for g in new]

    # -- target and writer tests --------------------------------------------------------------------
    def account_of(self, v: ChangeView) -> str:
        """The target's account name (lower case): the inventory's for that DN, else the CN (+$ for
        a computer, as its sAMAccountName ends)."""
        known = self.ctx.inventory.by_dn.get(v.dn)
        if known:
            return known
        if v.cls in ("computer", "msds-groupmanagedserviceaccount", "msds-managedserviceaccount"):
            return v.cn + "$"
        return v.cn if v.cls in ("user", "inetorgperson") else ""

    def _is_dc(self, v: ChangeView) -> bool:
        return ",ou=domain controllers," in v.dn or (v.cls == "computer" and self.ctx.inventory.is_dc(v.cn))

    def _sensitive_account(self, v: ChangeView) -> bool:
        name = self.account_of(v) or v.cn
        if name in self.honeytokens or v.cn in _PRIVILEGED_NAMES:
            return True
        return self.ctx.inventory.is_sensitive(name) or any(fnmatch(v.dn, p) for p in self.sensitive_dns)

    def _sensitive_object(self, v: ChangeView) -> bool:
        if v.dn.startswith("cn=adminsdholder,cn=system,"):
            return False  # its own alert type
        if v.cls in _SENSITIVE_CLASSES or _SENSITIVE_DN.search(v.dn):
            return True
        return self._is_dc(v) or self._sensitive_account(v)

    def _machine_writer(self, v: ChangeView) -> bool:
        return is_machine(v.ch.actor) and not self.ctx.inventory.is_dc(v.ch.actor)

    def _self_writer(self, v: ChangeView) -> bool:
        return is_machine(v.ch.actor) and v.ch.actor.lower() == self.account_of(v)

    def _key_writer(self, v: ChangeView) -> bool:
        actor = v.ch.actor.lower()
        return any(fnmatch(actor, p) for p in self.key_writers) or v.ch.actor_sid.lower() in self.key_writers \
            or self.planned(v)

    def planned(self, v: ChangeView | AccountChange) -> bool:
        ch = v.ch if isinstance(v, ChangeView) else v
        return bool(self.allowed) and (account_name(ch.actor) in self.allowed or ch.actor_sid in self.allowed)

    def _replication_allowed(self, trustee: str) -> bool:
        t = trustee.upper()
        if t in ("ED", "DD", "RO", "BA", "S-1-5-9", "S-1-5-32-544") or sddl.rid(t) in (498, 516, 521):
            return True
        if t.lower() in self.repl_ok:
            return True
        name = self.name(t)
        return bool(name and (name.lower() in self.repl_ok or name.lower().startswith("msol_")))

    def name(self, sid: str) -> str | None:
        acc = self.ctx.inventory.get("", sid) if sid.startswith("S-1-") else None
        return acc.name if acc is not None else None
