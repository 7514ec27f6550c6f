"""AS-REP roasting (reference/dc-log-alerts.md B3; MDI 2412, XDR `xdr_AsrepRoastingAttack`).

A successful 4768 with `PreAuthType 0` for `krbtgt` means the KDC handed out a TGT without the
client proving it knows the password: the AS-REP's encrypted part is keyed with the account's
password hash and can be cracked offline. Only user accounts (a `$` account never lacks
pre-authentication legitimately, but its random password makes roasting it pointless).

- **High**: >= `asrep_accounts` accounts answered without pre-authentication for one source within
  `asrep_window` (tools roast every roastable account in one go), or a sensitive/honeytoken account.
- **Medium**: one account with an RC4 reply (what roasting tools ask for); **Low** with AES only.
  One alert per source, growing with every account roasted.
- Learning (`asrep_learning`): an (account, source) pair first seen during the domain's first
  learning period (alerted once, marked as learning), or seen over that span since, is a legacy
  client kept without pre-authentication; a new source for that account still alerts. Pairs that
  took part in a High alert after the learning period are never learned.
- A recent 4738 that disabled pre-authentication on the account (preauth-disabled) is noted.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable

import msgspec

from ...activities import Activity
from ...activities.context import DomainContext
from ...activities.dclog.accounts import roastable
from ...activities.dclog.kerberos import RC4, TicketRequest, etype_name
from ...alerts import Alert
from ...config import Detection
from ..base import Incidents, Lru, add_unique, last_time, plural, trim
from ..baseline import Baseline
from .kerberos_base import KerberosDetector, note_ticket

TYPE = "asrep-roasting"


class PairSeen(msgspec.Struct, array_like=True):
    """An (account, source) pair's TGTs without pre-authentication (saved as
    `[first, last, alerted, learning]`; the flags as 0/1, as they always were)."""

    first: float  # epoch of its first one
    last: float  # epoch of its latest one
    alerted: int  # 1: part of a roasting alert, never a legacy client
    learning: int  # 1: first seen while learning


class AsRepRoastingDetector(KerberosDetector):
    accepts = (TicketRequest,)  # the engine hands it nothing else

    def __init__(self, cfg: Detection, incidents: Incidents, baseline: Baseline, ctx: DomainContext) -> None:
        super().__init__(cfg, incidents, baseline, ctx)
        self.pairs = baseline.rows("asrep-roasting.pairs", PairSeen)  # (account, source) -> when seen
        self.windows: Lru[str, deque[tuple[float, str]]] = Lru()  # source -> deque of (time, account)

    def _benign(self, pair: tuple[str, str], t: float) -> bool:
        row = self.pairs.get(pair)
        if row is None or row.alerted:
            return False
        return bool(row.learning) or t - row.first >= self.cfg.asrep_learning

    def on_activity(self, act: Activity) -> Iterable[Alert]:
        if not isinstance(act, TicketRequest) or not act.tgt or act.status != 0 or act.preauth != "0":
            return ()
        if act.machine or not (act.service_key in ("krbtgt", "") or act.service_key.startswith("krbtgt/")):
            return ()
        source = act.source_ip or "unknown"
        if source.upper() in self.allowed:
            return ()
        t = act.time.timestamp()
        acct = act.account_key
        pair = (acct, source)
        learning = self.baseline.clock.learning(TYPE, act.time, self.cfg.asrep_learning)
        benign = self._benign(pair, t)
        row = self.pairs.touch(pair, lambda: PairSeen(t, t, 0, int(learning)))
        row.last = t
        open_ = self.incidents.current(TYPE, source, act.time)
        if benign and open_ is None:
            return ()
        win = self.windows.touch(source, deque)
        win.append((t, acct))
        trim(win, t, self.cfg.asrep_window)
        self.windows.drop_idle(t - self.cfg.asrep_window, last_time)
        a = self.incidents.raise_or_grow(TYPE, source, act.time, act.evidence, learning=learning and open_ is None)
        a.count += 1
        note_ticket(a, act, source)
        d = a.details
        etypes: dict = d.setdefault("etypes", {})
        etypes[act.account] = etype_name(act.etype)
        honey = acct in self.honey or (act.account_sid and act.account_sid in self.honey)
        if honey or self.ctx.inventory.is_sensitive(act.account, act.account_sid):
            add_unique(d.setdefault("sensitive", []), act.account)
        disabled = roastable(self.ctx).get(acct)
        if disabled is not None:
            add_unique(d.setdefault("preauth_disabled", []), act.account)
        rc4 = act.etype == RC4 or bool(d.get("rc4"))
        d["rc4"] = rc4
        in_window = len({x for _, x in win})
        d["max_accounts_in_window"] = max(in_window, d.get("max_accounts_in_window", 0))
        if d["max_accounts_in_window"] >= self.cfg.asrep_accounts or d.get("sensitive"):
            d["roasting"] = True
        a.severity = "high" if d.get("roasting") else "medium" if rc4 else "low"
        if a.severity == "high" and not learning:  # roasting: none of its pairs is ever a legacy client
            for x in a.accounts:
                r = self.pairs.get((x.lower(), source))
                if r is not None:
                    r.alerted = 1
        a.description = self.describe(a)
        return (a,)

    def describe(self, a: Alert) -> str:
        d = a.details
        n = len(a.accounts)
        listed = ", ".join(f"{x} ({e})" for x, e in list(d.get("etypes", {}).items())[:10])
        text = (f"{'AS-REP roasting' if d.get('roasting') else 'Possible AS-REP roasting'}: {d.get('source', a.key)} "
                f"received {plural(a.count, 'TGT')} without Kerberos pre-authentication for "
                f"{plural(n, 'account')} ({listed}) from {', '.join(a.dcs)}. The reply is encrypted with the "
                "account's password hash and can be cracked offline.")
        if d.get("rc4"):
            text += " RC4 replies were issued (what roasting tools request)."
        if d.get("sensitive"):
            text += f" Sensitive or honeytoken accounts: {', '.join(d['sensitive'])}."
        if d.get("preauth_disabled"):
            text += f" Pre-authentication was recently disabled on {', '.join(d['preauth_disabled'])}."
        if a.learning:
            text += " (Raised during the learning period.)"
        return text + (" Require Kerberos pre-authentication on these accounts (clear 'Do not require Kerberos "
                       "preauthentication') unless a legacy client needs it, reset their passwords to long random "
                       "ones, enforce AES, and check the source host for roasting tools (Rubeus, GetNPUsers).")
