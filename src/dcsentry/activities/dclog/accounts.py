"""User and computer account management (reference/dc-log-alerts.md A4, A5): 4720, 4722, 4724, 4725,
4726, 4738, 4741, 4742, 4743, 4781, 4765, 4766, 4794 -> `AccountChange`.

The reader also keeps the inventory current: creations learn an account, deletions forget it, a
rename moves it, and a computer that gains SERVER_TRUST (`%%2088`) becomes a domain controller.
`UserAccountControl` holds one message code per changed SAM flag: `%%(2080+n)` = bit n set,
`%%(2048+n)` = cleared; rendered text shows words instead (`'Don't Require Preauth' - Enabled`).
"""

from __future__ import annotations

import re
from typing import NamedTuple

from ...model import WindowsEvent
from .. import Activity, DcActivity, evidence_of
from ..context import DomainContext, account_name
from ..readers import Stateless
from .fields import is_machine, items, short, sid

ACTIONS: dict[int, str] = {
    4720: "created", 4741: "created", 4722: "enabled", 4725: "disabled", 4724: "password-reset",
    4726: "deleted", 4743: "deleted", 4738: "changed", 4742: "changed", 4781: "renamed",
    4765: "sid-history-added", 4766: "sid-history-failed", 4794: "dsrm-password-set",
}
COMPUTER_EVENTS = frozenset({4741, 4742, 4743})
DC_ONLY = frozenset({4741, 4742, 4743, 4765, 4766, 4794})  # domain-only objects: whoever logs them is a DC

# SAM USER_* flags (MS-SAMR 2.2.1.12) by bit, with the words of the rendered message.
UAC_BITS: dict[int, str] = {
    0: "Account Disabled", 1: "Home Directory Required", 2: "Password Not Required",
    3: "Temp Duplicate Account", 4: "Normal Account", 5: "MNS Logon Account",
    6: "Interdomain Trust Account", 7: "Workstation Trust Account", 8: "Server Trust Account",
    9: "Don't Expire Password", 10: "Account Locked Out", 11: "Encrypted Text Password Allowed",
    12: "Smartcard Required", 13: "Trusted For Delegation", 14: "Not Delegated",
    15: "Use DES Key Only", 16: "Don't Require Preauth", 17: "Password Expired",
    18: "Trusted To Authenticate For Delegation", 19: "No Authorization Data Required",
}
DISABLED, SERVER_TRUST, DONT_REQUIRE_PREAUTH = 0, 8, 16
_BY_WORDS = {re.sub(r"[^a-z]", "", w.lower()): b for b, w in UAC_BITS.items()}
_CODE = re.compile(r"%%(\d{4})")
_WORDED = re.compile(r"'(.+?)'\s*-\s*(Enabled|Disabled)", re.I)

# Fields of 4720/4738/4741/4742 that carry a new value when changed (`-` = unchanged).
_CHANGE_FIELDS = (
    "SamAccountName", "DisplayName", "UserPrincipalName", "HomeDirectory", "HomePath", "ScriptPath",
    "ProfilePath", "UserWorkstations", "PasswordLastSet", "AccountExpires", "PrimaryGroupId",
    "AllowedToDelegateTo", "OldUacValue", "NewUacValue", "UserAccountControl", "UserParameters",
    "SidHistory", "LogonHours", "DnsHostName", "ServicePrincipalNames",
)


_CHANGE_SET = frozenset(_CHANGE_FIELDS)


def decode_uac(value: str) -> tuple[list[int], list[int]]:
    """`%%2096 %%2050` -> ([16], [2]); rendered words (`'Don't Require Preauth' - Enabled`,
    `Account Disabled`/`Account Enabled`) give the same bits."""
    set_bits: list[int] = []
    cleared: list[int] = []
    for m in _CODE.finditer(value):
        code = int(m.group(1))
        if 2080 <= code < 2112:
            set_bits.append(code - 2080)
        elif 2048 <= code < 2080:
            cleared.append(code - 2048)
    if set_bits or cleared or "'" not in value and "Account" not in value:
        return set_bits, cleared
    for m in _WORDED.finditer(value):
        bit = _BY_WORDS.get(re.sub(r"[^a-z]", "", m.group(1).lower()))
        if bit is not None:
            (set_bits if m.group(2).lower() == "enabled" else cleared).append(bit)
    unquoted = _WORDED.sub(" ", value)
    if re.search(r"\bAccount Disabled\b", unquoted, re.I):
        set_bits.append(DISABLED)
    elif re.search(r"\bAccount Enabled\b", unquoted, re.I):
        cleared.append(DISABLED)
    return set_bits, cleared


def spn_items(value: str) -> list[str]:
    """ServicePrincipalNames: the full new set; `%%1793` (`<value not set>`) = cleared (empty)."""
    return [s for s in items(value) if not s.startswith("%%") and s not in ("<value", "not", "set>")]


def spns_cleared(value: str) -> bool:
    v = (value or "").strip()
    return v == "%%1793" or v.lower() == "<value not set>"


class AccountChange(DcActivity, kw_only=True):
    """One account-management event. `changed` holds only the fields with a new value."""

    event_id: int
    action: str  # ACTIONS values
    target: str = ""  # TargetUserName (the new name for 4781)
    old_name: str = ""  # 4781 OldTargetUserName
    target_sid: str = ""
    target_domain: str = ""
    machine: bool = False
    changed: dict[str, str] = {}
    uac_set: list[int] = []  # SAM bits set by this change
    uac_cleared: list[int] = []
    privileges: str = ""
    source_account: str = ""  # 4765/4766 SourceUserName (the account whose SID was added)
    source_sid: str = ""  # 4765 SourceSid
    sid_list: list[str] = []  # 4765 SidList
    workstation: str = ""  # 4794 Workstation
    status: str = ""  # 4794 Status (0x0 = set)

    kind = "account"

    @property
    def subject(self) -> str:
        return self.target

    @property
    def uac_words(self) -> list[str]:
        return ([f"{UAC_BITS.get(b, f'bit {b}')} set" for b in self.uac_set]
                + [f"{UAC_BITS.get(b, f'bit {b}')} cleared" for b in self.uac_cleared])

    @property
    def spns(self) -> list[str]:
        return spn_items(self.changed.get("ServicePrincipalNames", ""))


def _value(v: str | None) -> str:
    v = (v or "").strip()
    return "" if v in ("-", "") else v


def roastable(ctx: DomainContext) -> dict[str, float]:
    """Accounts (lower-case sAMAccountName) seen losing Kerberos pre-authentication, with when:
    AS-REP roasting of them needs no password guess (reference B3 companion)."""
    found = getattr(ctx, "roastable", None)
    if found is None:
        found = {}
        ctx.roastable = found  # type: ignore[attr-defined]
    return found


_CAP = 100_000
# Who may create computer accounts beyond MachineAccountQuota (reference B18): Administrator,
# Domain/Enterprise Admins, builtin Administrators and Account Operators.
_ADMIN_RIDS = ("-500", "-512", "-519")
_ADMIN_SIDS = frozenset({"S-1-5-32-544", "S-1-5-32-548", "S-1-5-18"})


class NewComputer(NamedTuple):
    """A computer account created in the stream (4741): by whom, and whether that was an admin."""

    time: float
    actor: str
    actor_sid: str
    by_admin: bool


def new_computers(ctx: DomainContext) -> dict[str, NewComputer]:
    """Computers created in the stream by lower-case name: one created by a non-admin (the
    MachineAccountQuota path of noPac / RBCD, reference B18) is what later changes are judged by."""
    found = getattr(ctx, "new_computers", None)
    if found is None:
        found = {}
        ctx.new_computers = found  # type: ignore[attr-defined]
    return found


def _capped(d: dict, key: str, value: object) -> None:
    d.pop(key, None)
    d[key] = value
    if len(d) > _CAP:
        del d[next(iter(d))]


class AccountReader(Stateless):
    ids = frozenset(ACTIONS)

    def __init__(self, ctx: DomainContext) -> None:
        super().__init__(ctx)
        self.roastable = roastable(ctx)
        self.new_computers = new_computers(ctx)

    def feed(self, ev: WindowsEvent) -> list[Activity]:
        if ev.channel != "Security":
            return []
        d = ev.data
        eid = ev.event_id
        host = short(ev.computer)
        logon_id = d.get("SubjectLogonId", "")
        target = d.get("NewTargetUserName", "") if eid == 4781 else d.get("TargetUserName", "")
        target = _value(target)
        old = _value(d.get("OldTargetUserName")) if eid == 4781 else ""
        changed = {k: s for k, v in d.items() if v != "-" and k in _CHANGE_SET and (s := v.strip()) and s != "-"}
        uac_set, uac_cleared = decode_uac(changed.get("UserAccountControl", ""))
        act = AccountChange(
            time=ev.time, host=host, actor=_value(d.get("SubjectUserName")),
            actor_sid=sid(d.get("SubjectUserSid")), actor_domain=_value(d.get("SubjectDomainName")),
            logon_id=logon_id, session=self.ctx.sessions.get(host, logon_id, ev.time.timestamp()),
            evidence=[evidence_of(ev)], event_id=eid, action=ACTIONS[eid], target=target, old_name=old,
            target_sid=sid(d.get("TargetSid")), target_domain=_value(d.get("TargetDomainName")),
            machine=eid in COMPUTER_EVENTS or is_machine(target) or is_machine(old),
            changed=changed, uac_set=uac_set, uac_cleared=uac_cleared,
            privileges=_value(d.get("PrivilegeList")), source_account=_value(d.get("SourceUserName")),
            source_sid=sid(d.get("SourceSid")),
            sid_list=[s.strip("%{}").upper() for s in items(d.get("SidList"))],
            workstation=_value(d.get("Workstation")), status=_value(d.get("Status")))
        if eid in DC_ONLY:
            self.ctx.inventory.add_dc(host)
        self._inventory(act)
        return [act]

    def _rename(self, old: str, new: str, target_sid: str) -> None:
        """The account keeps what is known of it (kind, DC, sensitive, imported) under its new name;
        the old name no longer exists. OS setup logs renames to the same name: nothing to do."""
        inv = self.ctx.inventory
        old_key, new_key = account_name(old), account_name(new)
        if not old_key or not new_key or old_key == new_key:
            return
        acc = inv.accounts.pop(old_key, None)
        if acc is None:
            inv.learn(new, target_sid)
        else:
            acc.name = new.split("\\")[-1]
            inv.accounts[new_key] = acc
            if acc.sid:
                inv.by_sid[acc.sid] = new_key
            inv.deleted.discard(new_key)
        inv.deleted.add(old_key)

    def _inventory(self, act: AccountChange) -> None:
        inv = self.ctx.inventory
        kind = "computer" if act.machine else None
        if DONT_REQUIRE_PREAUTH in act.uac_set and act.target:
            _capped(self.roastable, act.target.lower(), act.time.timestamp())
        elif DONT_REQUIRE_PREAUTH in act.uac_cleared and act.target:
            self.roastable.pop(act.target.lower(), None)
        if act.action == "created" and act.target:
            inv.learn(act.target, act.target_sid, kind=kind)
            if act.event_id == 4741:
                sid_ = act.actor_sid
                admin = (sid_ in _ADMIN_SIDS or sid_.endswith(_ADMIN_RIDS) and sid_.startswith("S-1-5-21-")
                         or inv.is_sensitive(act.actor, sid_) or inv.is_dc(act.actor))
                _capped(self.new_computers, act.target.lower(),
                        NewComputer(act.time.timestamp(), act.actor, sid_, admin))
        elif act.action == "deleted" and act.target:
            inv.forget(act.target)
        elif act.action == "renamed" and act.target and act.old_name:
            self._rename(act.old_name, act.target, act.target_sid)
        if SERVER_TRUST in act.uac_set and act.target and act.event_id in (4741, 4742):
            acc = inv.learn(act.target, act.target_sid, kind="computer")
            if acc is not None:
                acc.dc = True
            inv.add_dc(act.target)
        elif SERVER_TRUST in act.uac_cleared and act.target and act.event_id == 4742:
            acc = inv.get(act.target, act.target_sid)
            if acc is not None:
                acc.dc = False
            inv.dc_names.discard(act.target.split("\\")[-1].rstrip("$").upper())
