"""Suspected identity theft (pass-the-hash), MDI 2017, from events (MDI reads NTLM on the wire):

1. Injected credentials: 4624 LogonType 9 (NewCredentials) by logon process `seclogo`. Mimikatz
   `sekurlsa::pth` starts a process with the stolen hash as its network identity this way. The look-alike
   `runas /user:` (password typed) is LogonType 2 with the same process and a 4648 (obs.); `runas /netonly`
   is also type 9 and cannot be told apart from the event: the description says so.
2. Keyless NTLM: 4624 LogonType 3 NTLM with `KeyLength 0` for a named account (Sigma "Pass the Hash
   Activity 2"; reference B7 "NTLM + KeyLength 0 -> PtH"). Windows clients always derive a session key;
   hash-passing tools (Invoke-TheHash, Impacket) and relays do not. ANONYMOUS LOGON and computer
   accounts (relays, Zerologon) are left to their own alerts. Keyless devices (scanners, NAS) are
   learned per (account, source) during the learning period or allow-listed; loopback always alerts.
3. Unusual NTLM (the DC's view): an account that authenticates with Kerberos (>= min_kerberos, NTLM at
   most max_ntlm_share) validates NTLM (4776) from a workstation never seen for it. Workstations are
   tied to addresses by their computer accounts' own Kerberos requests. Raised while learning, marked so.
"""

from __future__ import annotations

from collections.abc import Iterable

import msgspec

from ...activities import Activity, AuthActivity, Logon
from ...activities.context import DomainContext, short_host
from ...activities.dclog.fields import is_machine
from ...alerts import Alert
from ...config import Detection
from ..base import Incidents, add_unique
from ..baseline import Baseline

TYPE = "pass-the-hash"

_ANONYMOUS = ("anonymous logon", "")
_MAX_SOURCES = 32


def _remember(sources: list[str], value: str) -> None:
    """Most recent sources last; the oldest forgotten past _MAX_SOURCES."""
    if not value:
        return
    if value in sources:
        if sources[-1] != value:
            sources.remove(value)
            sources.append(value)
        return
    sources.append(value)
    if len(sources) > _MAX_SOURCES:
        del sources[0]


class AuthProfile(msgspec.Struct, array_like=True):
    """How an account authenticated so far (saved as `[kerberos, ntlm, [sources]]`)."""

    kerberos: int = 0  # Kerberos authentications
    ntlm: int = 0  # NTLM authentications
    sources: list[str] = msgspec.field(default_factory=list)  # the addresses and workstations it came from


class PassTheHashDetector:
    accepts = (Logon, AuthActivity)  # the engine hands it nothing else

    def __init__(self, cfg: Detection, incidents: Incidents, baseline: Baseline, ctx: DomainContext) -> None:
        self.cfg = cfg.pass_the_hash
        self.allowed = {s.strip().lower() for s in [*self.cfg.allowed_sources, *cfg.exclude_sources] if s.strip()}
        self.incidents = incidents
        self.baseline = baseline
        self.ctx = ctx
        self.keyless = baseline.table("pth_keyless_ntlm")  # (account, source) -> last seen, learned while learning
        self.profiles = baseline.rows("auth_profiles", AuthProfile)  # account -> how it authenticates
        self.host_ips = baseline.table("host_addresses", cap=200_000)  # computer -> address (its own TGT requests)

    def on_activity(self, act: Activity) -> Iterable[Alert]:
        if type(act) is Logon:
            if act.logon_type == 9 and act.process.lower() == "seclogo":
                return self._injected(act)
            if act.logon_type == 3 and act.key_length == "0" and act.package.upper() == "NTLM":
                return self._keyless(act)
        elif type(act) is AuthActivity and not act.failed:
            return self._profile(act)
        return ()

    # -- 1. injected credentials --------------------------------------------------------------
    def _injected(self, act: Logon) -> Iterable[Alert]:
        if act.host.lower() in self.allowed:
            return ()
        a = self._raise(act, f"{act.host}|{act.account_key}", "injected", act.host)
        a.severity = "high"
        return (a,)

    # -- 2. keyless NTLM network logons --------------------------------------------------------
    def _keyless(self, act: Logon) -> Iterable[Alert]:
        if act.account.lower() in _ANONYMOUS or act.account_sid == "S-1-5-7" or is_machine(act.account):
            return ()
        source = act.source
        loopback = source == "localhost" or (short_host(act.source_host) == act.host
                                             and act.source_ip in ("", "localhost"))
        if not loopback and (source.lower() in self.allowed or act.source_host.lower() in self.allowed):
            return ()
        pair = (act.account_key, source.lower() or "-")
        learning = self.baseline.clock.learning(f"pth-keyless:{act.host}", act.time, self.cfg.learning_period)
        if not loopback:
            known = pair in self.keyless
            if learning or known:
                self.keyless[pair] = act.time.timestamp()
            if known and not learning:
                return ()
        a = self._raise(act, f"{act.account_key}|{source}", "keyless", source or act.host,
                        learning=learning and not loopback)
        a.severity = "high" if loopback or self.ctx.inventory.is_sensitive(act.account, act.account_sid) else "medium"
        return (a,)

    # -- 3. NTLM where the account uses Kerberos ------------------------------------------------
    def _profile(self, act: AuthActivity) -> Iterable[Alert]:
        if is_machine(act.account):
            if act.protocol == "Kerberos" and act.source_ip and act.source_ip != "localhost":
                self.host_ips[short_host(act.account)] = act.source_ip  # the computer's address
            return ()
        p = self.profiles.touch(act.account_key, AuthProfile)
        sources = p.sources
        if act.protocol == "Kerberos":
            p.kerberos += 1
            _remember(sources, act.source_ip)
            return ()
        ws = short_host(act.source_host)
        if not ws:
            return ()
        ip = self.host_ips.get(ws)
        kerberos, ntlm = p.kerberos, p.ntlm
        seen = ws in sources or (ip is not None and ip in sources)
        p.ntlm = ntlm + 1
        _remember(sources, ws)
        if seen or kerberos < self.cfg.min_kerberos or ntlm > self.cfg.max_ntlm_share * (kerberos + ntlm):
            return ()
        if ws.lower() in self.allowed or (ip and ip.lower() in self.allowed):
            return ()
        learning = self.baseline.clock.learning(f"pth-ntlm:{act.reporter}", act.time, self.cfg.learning_period)
        a = self.incidents.raise_or_grow(TYPE, f"{act.account_key}|{ws}", act.time, act.evidence, learning=learning)
        a.count += 1
        add_unique(a.accounts, act.account)
        add_unique(a.hosts, ws)
        add_unique(a.dcs, act.reporter)
        a.protocol = "NTLM"
        a.details.update({"variant": "unusual-ntlm", "kerberos_before": kerberos, "ntlm_before": ntlm,
                          "workstation_address": ip or ""})
        if act.server:
            a.details["server"] = act.server
        if a.revision == 0:
            a.description = self.describe(a)
        return (a,)

    def _raise(self, act: Logon, key: str, variant: str, source: str, learning: bool = False) -> Alert:
        a = self.incidents.raise_or_grow(TYPE, key, act.time, act.evidence, learning=learning)
        a.count += 1
        add_unique(a.accounts, f"{act.domain}\\{act.account}" if act.domain and act.domain != "-" else act.account)
        add_unique(a.hosts, source)
        if act.host in self.ctx.dcs:
            add_unique(a.dcs, act.host)
        a.protocol = "NTLM" if variant == "keyless" else (act.package or None)
        a.details.update({"variant": variant, "logged_by": act.host, "logon_type": act.logon_type,
                          "logon_process": act.process, "package": act.package, "key_length": act.key_length,
                          "source_ip": act.source_ip, "source_host": act.source_host})
        if act.lm_package and act.lm_package != "-":
            a.details["lm_package"] = act.lm_package
        if a.revision == 0:
            a.description = self.describe(a)
        return a

    def describe(self, a: Alert) -> str:
        d = a.details
        who = a.accounts[0] if a.accounts else a.key
        variant = d.get("variant")
        if variant == "injected":
            return (f"A process on {d.get('logged_by')} runs with injected credentials of {who} (logon type 9 "
                    f"NewCredentials by seclogo, {a.count}x): no password was typed, the network identity was set "
                    "from a stolen NTLM hash or key (Mimikatz sekurlsa::pth, Rubeus). `runas /netonly` by an admin "
                    f"looks the same: if nobody did that on {d.get('logged_by')}, isolate it, look for "
                    f"credential-dumping tools, and reset the password of {who}.")
        if variant == "keyless":
            src = d.get("source_ip") or d.get("source_host") or "an unknown address"
            where = "the host itself (loopback)" if src == "localhost" else src
            ws = (f" (workstation name {d['source_host']})"
                  if d.get("source_host") and src not in (d.get("source_host"), "localhost") else "")
            learn = (" dcsentry is still learning keyless NTLM sources; a device that does this every day will be "
                     "learned (or allow-list it: [detection.pass_the_hash] allowed_sources)." if a.learning else "")
            return (f"{who} logged on to {d.get('logged_by')} over the network from {where}{ws} with NTLM "
                    f"({d.get('lm_package', 'NTLM')}) and no session key (KeyLength 0), {a.count}x. Windows clients "
                    "always derive a session key; hash-passing and relay tools (Invoke-TheHash, Impacket) do not. "
                    f"Find the process on the source that authenticated, and reset the password of {who}.{learn}")
        learn = " (dcsentry is still learning the accounts' usual protocols)" if a.learning else ""
        return (f"{who} authenticated with NTLM from {a.hosts[0] if a.hosts else 'an unknown workstation'} "
                f"({a.count}x, validated by {', '.join(a.dcs)}"
                + (f", for access to {d['server']}" if d.get("server") else "")
                + f"), a computer never seen for this account, which otherwise uses Kerberos "
                f"({d.get('kerberos_before')} Kerberos vs {d.get('ntlm_before')} NTLM authentications){learn}. "
                "A stolen NTLM hash can only be used with NTLM: check who is logged on to that computer and "
                f"whether {who} knows of it; if not, reset the password and isolate the computer.")
