"""Overpass-the-hash (reference/dc-log-alerts.md B4; MDI 2002/2008, XDR `xdr_PossibleOverPassTheHash`,
T1550.002).

With only an account's NT hash, a tool (Rubeus `asktgt /rc4`, mimikatz `sekurlsa::pth`) asks a
TGT with RC4 pre-authentication: the NT hash *is* the RC4 key. Windows clients of accounts with
AES keys pre-authenticate with AES. MDI reads the AS-REQ's etype list; the events show the issued
etype (`TicketEncryptionType`) and, since the 2025 updates (v2), the pre-auth etype, the client's
advertised etypes and the account's keys. A successful 4768 with RC4 (etype or
`PreAuthEncryptionType` 0x17) and password pre-authentication (`PreAuthType 2`) is a candidate; it
alerts when one of these says the account did not need RC4:

- **forced** (High): v2 `ClientAdvertizedEncryptionTypes` lists no AES while `AccountAvailableKeys`
  has AES (Rubeus `/rc4` offers RC4-HMAC-NT alone): MDI 2008 "forced encryption type".
- **aes-keys** (Medium): v2 `AccountAvailableKeys` has AES, yet the TGT is RC4.
- **profile** (Medium): the account's TGTs were AES until now (`opth_learning`, 30 days like MDI,
  from the account's first TGT; an alert while that profile is younger says so, and its RC4 use
  is then learned: a user's second, RC4-only device is told once, not forever).
- **tool realm** (Medium): without v2 fields or an AES profile, the AS-REQ named the realm in lower
  case. Windows' own Kerberos client always sends the canonical upper-case realm (obs. in every
  Windows 4768 of the corpus: `THESHIRE.LOCAL`, `OFFSEC.LAN`, `THREEBEESCO.COM`); Rubeus sends the
  DNS name as typed (obs. `theshire.local` in `asktgt /rc4`, `offsec.lan` in `asreproast`). An RC4
  password pre-authentication from a non-Windows client is the hash being used, seen without a
  month of learning.

Severity goes to High for sensitive and honeytoken accounts. Quiet: accounts whose keys are RC4
only (`AccountAvailableKeys` without AES: never re-keyed for AES), accounts whose profile already
has RC4 TGTs (RC4-only devices, keytabs), PKINIT and pre-auth-less requests (AS-REP roasting).
"""

from __future__ import annotations

from collections.abc import Iterable

import msgspec

from ...activities import Activity
from ...activities.context import DomainContext
from ...activities.dclog.kerberos import AES_ETYPES, RC4, TicketRequest, etype_name, lists_aes
from ...alerts import Alert
from ...config import Detection
from ..base import Incidents, add_unique
from ..baseline import Baseline
from .kerberos_base import KerberosDetector, note_ticket

TYPE = "overpass-the-hash"
_TELLS = {
    "forced": "the client offered only RC4 although the account has AES keys (forced encryption type)",
    "aes-keys": "the account has AES keys, yet its TGT was RC4",
    "profile": "the account's TGTs were AES until now",
    "tool-realm": "the request named the realm in lower case, which Windows' own Kerberos client never does",
}


class TgtProfile(msgspec.Struct, array_like=True):
    """An account's TGTs so far (saved as `[first, aes, rc4, last_aes]`)."""

    first: float  # epoch of the first TGT profiled
    aes: int  # AES TGTs
    rc4: int  # RC4 TGTs nothing flagged (a legacy device, a keytab)
    last_aes: float  # epoch of the latest AES TGT (0: none)


class OverpassTheHashDetector(KerberosDetector):
    accepts = (TicketRequest,)  # the engine hands it nothing else

    def __init__(self, cfg: Detection, incidents: Incidents, baseline: Baseline, ctx: DomainContext) -> None:
        super().__init__(cfg, incidents, baseline, ctx)
        self.profile = baseline.rows("overpass-the-hash.tgts", TgtProfile)  # account -> its TGTs

    def on_activity(self, act: Activity) -> Iterable[Alert]:
        if not isinstance(act, TicketRequest) or not act.tgt or act.status != 0:
            return ()
        rc4 = act.etype == RC4 or act.preauth_etype == RC4
        row = self.profile.get(act.account_key)
        if not rc4:
            if act.etype in AES_ETYPES:
                t = act.time.timestamp()
                row = self.profile.touch(act.account_key, lambda: TgtProfile(t, 0, 0, t))
                row.aes += 1
                row.last_aes = t
            return ()
        if act.preauth != "2" or act.source_ip.upper() in self.allowed:
            return ()
        tell = self._tell(act, row)
        learning = row is None or act.time.timestamp() - row.first < self.cfg.opth_learning  # the account's profile
        if not tell:
            t = act.time.timestamp()  # an RC4 TGT nothing flagged: the account uses RC4 (legacy device, keytab)
            row = self.profile.touch(act.account_key, lambda: TgtProfile(t, 0, 0, 0))
            row.rc4 += 1
            return ()
        if tell == "profile" and learning and row is not None:  # told once while learning: a second RC4 device
            row.rc4 += 1  # is then known
        key = f"{act.account_key}|{act.source_ip}"
        open_ = self.incidents.current(TYPE, key, act.time)
        a = self.incidents.raise_or_grow(TYPE, key, act.time, act.evidence,
                                         learning=tell == "profile" and learning and open_ is None)
        a.count += 1
        note_ticket(a, act, act.source_ip)
        d = a.details
        d.update(account=act.account, etype=etype_name(act.etype), realm=act.realm, preauth_type=act.preauth)
        add_unique(d.setdefault("tells", []), tell)
        if act.v2:
            d["v2"] = act.v2
        if row is not None and row.aes:
            d["aes_tgts_before"] = row.aes
        honey = act.account_key in self.honey or (act.account_sid and act.account_sid in self.honey)
        sensitive = honey or self.ctx.inventory.is_sensitive(act.account, act.account_sid)
        d["sensitive"] = bool(sensitive)
        a.severity = "high" if (sensitive or "forced" in d["tells"]) else "medium"
        a.description = self.describe(a)
        return (a,)

    def _tell(self, act: TicketRequest, row: TgtProfile | None) -> str:
        keys = act.v2.get("AccountAvailableKeys")
        offered = act.v2.get("ClientAdvertizedEncryptionTypes")
        if keys is not None:
            if not lists_aes(keys):
                return ""  # the account has no AES key: RC4 is all it can do
            if offered is not None and not lists_aes(offered):
                return "forced"
            return "aes-keys"
        if row is not None and row.aes and not row.rc4:
            return "profile"
        if act.canonical_realm is False:
            return "tool-realm"
        return ""

    def describe(self, a: Alert) -> str:
        d = a.details
        tells = "; ".join(_TELLS[x] for x in d.get("tells", []) if x in _TELLS)
        text = (f"Suspected overpass-the-hash: {d.get('account', a.key)} obtained "
                f"{'a TGT' if a.count == 1 else str(a.count) + ' TGTs'} with {d.get('etype', 'RC4')} encryption "
                f"(password pre-authentication with the RC4 key, which is the account's NT hash) from "
                f"{d.get('source') or 'an unknown address'} via {', '.join(a.dcs)}: {tells}.")
        if d.get("aes_tgts_before"):
            text += f" {d['aes_tgts_before']} AES TGTs for it were seen before."
        if d.get("sensitive"):
            text += " The account is sensitive."
        if a.learning:
            text += " (Raised while the account's encryption profile is still being learned.)"
        return text + (" Find the process on the source host that requested the ticket (Rubeus, mimikatz); treat the "
                       "account's NT hash as stolen: reset its password (twice for privileged accounts), look for "
                       "where the hash was taken, and require AES (disable RC4) for the account.")
