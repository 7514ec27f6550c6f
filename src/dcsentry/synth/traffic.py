"""Everyday DC traffic: logons, tickets, NTLM pass-through, the usual failures and admin chores.

The benign background is what a detector's false-positive rate is measured on, so it includes the
awkward cases real domains have: typos followed by success, a script with a stale password failing
every few minutes, a phone locking its owner out through Exchange, name typos, expired passwords,
helpdesk group changes, the usual admin touching a sensitive group, Defender's random-named
MpKsl drivers. Arrivals are Poisson per time slice, scaled by the hour of the working day.
"""

from __future__ import annotations

import random

from .builder import PKG, Builder, Stamped, ntstatus, poisson
from .dcfields import GET_CHANGES, GET_CHANGES_ALL
from .dctraffic import DirectoryTraffic
from .domain import AGENTS, HOUR_US, US, Account, Domain, Machine, rhythm


class Everyday(DirectoryTraffic):
    """The benign background, one time slice at a time (bounded memory for any run length)."""

    def __init__(self, d: Domain, seed: int, scale: float = 1.0) -> None:
        self.d, self.scale = d, scale
        self.rng = random.Random(f"dcsentry-synth:{seed}:traffic")
        self.b = Builder(d, self.rng)
        n_u, n_dc = len(d.users), len(d.dcs)
        self.ntlm_servers = [d.servers[n] for n in ("FS02", "WEB01", "APP01", "EXCH01", "SQL01", "RDS01")]
        self.krb_servers = [d.servers[n] for n in ("FS01", "FS02", "WEB01", "EXCH01", "APP01", "RDS01")]
        self.servers = list(d.servers.values())
        self.new_rid = 20000  # RIDs for accounts created during the run (attacks use another range)
        self.stale_next: int | None = None
        # (per-hour rate per actor at full activity, actors, rhythm: people|machines|flat, events per action, action)
        # Lockouts: a phone left with the old password after a password change, ~1 per user per year.
        self.plan = [
            (0.6, n_u, "people", 4.0, self.user_logon), (4.0, n_u, "people", 1.0, self.user_tgs),
            (1.2, n_u, "people", 2.0, self.user_ntlm), (1.0, len(d.workstations), "machines", 3.2, self.machine),
            (2.0, len(d.servers), "flat", 3.2, self.server), (6.0, n_dc * (n_dc - 1), "flat", 2.0, self.replication),
            (6.0, 6, "flat", 1.6, self.service_account), (0.02, n_u, "people", 5.0, self.typo),
            (0.0015, n_u, "people", 3.0, self.expired), (0.005, n_u, "people", 3.5, self.unknown_name),
            (0.0003, n_u, "people", 28.0, self.lockout), (0.004, n_u, "people", 3.0, self.group_change),
            (0.0004, n_u, "people", 4.5, self.new_user), (0.15, len(d.admins), "people", 3.4, self.admin_rdp),
            (0.05, 1, "people", 3.0, self.sensitive_change), (0.08, n_dc, "flat", 2.0, self.defender_driver),
            (0.02, n_dc, "people", 3.0, self.agent_install),
        ]
        self.plan += self.dc_plan()

    @staticmethod
    def _factor(mode: str, r: float) -> float:
        return r if mode == "people" else (0.35 + 0.65 * r if mode == "machines" else 1.0)

    def expected_per_second(self, t0: int, t1: int) -> float:
        """Average everyday events per second over [t0, t1) at scale 1 (to honour --rate)."""
        hours = [rhythm(t) for t in range(t0, t1, HOUR_US // 4)] or [rhythm(t0)]
        total = sum(rate * n * est * sum(self._factor(mode, r) for r in hours) / len(hours)
                    for rate, n, mode, est, _ in self.plan)
        return total / 3600 + 2 / 300  # plus the stale-credential script

    def slice(self, t0: int, t1: int) -> list[Stamped]:
        """Every everyday action starting in [t0, t1), with all its events (they may run past t1)."""
        b, rng = self.b, self.rng
        b.out = []
        r, hours = rhythm((t0 + t1) // 2), (t1 - t0) / HOUR_US
        for rate, n, mode, _, action in self.plan:
            for _ in range(poisson(rng, rate * n * self._factor(mode, r) * hours * self.scale)):
                action(rng.randrange(t0, t1))
        if self.stale_next is None:
            self.stale_next = t0 + rng.randrange(300 * US)
        svc, fs = self.d.services["svc_report"], self.d.servers["FS02"]
        while self.stale_next < t1:  # a scheduled report job on APP01 still holding svc_report's old password
            b.ntlm(self.stale_next, svc.sam, "APP01", fs, 0xC000006A)
            self.stale_next += rng.randint(240, 360) * US
        return b.out

    # -- people -------------------------------------------------------------------------------
    def _user(self) -> tuple[Account, Machine, Machine]:
        u = self.rng.choice(self.d.users)
        ws = u.workstation
        assert ws is not None and ws.dc is not None  # build_domain seats each user at a workstation joined to a DC
        dc = ws.dc if self.rng.random() < 0.85 else self.rng.choice(self.d.dcs)
        return u, ws, dc

    def _kerberos_logon(self, us: int, u: Account, ws: Machine, dc: Machine) -> None:
        b = self.b
        b.tgt(us, dc, u.sam, u.sid, ws.ip)
        self.tgt_at[(u.sam, ws.ip)] = us
        us = b.later(us, 2, 40)
        b.tgs(us, dc, u.sam, ws.account, ws.sid, ws.ip)
        us = b.later(us, 50, 900)
        b.tgs(us, dc, u.sam, dc.account, dc.sid, ws.ip)
        b.logon(b.later(us, 1, 30), dc, u.sam, u.sid, ws.ip)

    def user_logon(self, us: int) -> None:
        u, ws, dc = self._user()
        self._kerberos_logon(us, u, ws, dc)

    def user_tgs(self, us: int) -> None:
        u, ws, dc = self._user()
        us = self._tgt(us, dc, u.sam, u.sid, ws.ip)
        if self.rng.random() < 0.15:  # SQL's service account has AES keys: AES tickets
            svc = self.d.services["svc_sql"]
            self.b.tgs(us, dc, u.sam, svc.sam, svc.sid, ws.ip)
        else:
            srv = self.rng.choice(self.krb_servers)
            self.b.tgs(us, dc, u.sam, srv.account, srv.sid, ws.ip)

    def user_ntlm(self, us: int) -> None:
        u, ws, _ = self._user()
        self.b.ntlm(us, u.sam, ws.name, self.rng.choice(self.ntlm_servers))

    def typo(self, us: int) -> None:
        """1-3 wrong passwords, then the right one; sometimes on the shared RDS host."""
        u, ws, dc = self._user()
        rng, b = self.rng, self.b
        k = rng.choices((1, 2, 3), (70, 22, 8))[0]
        if rng.random() < 0.15:
            ws = self.d.servers["RDS01"]
        if rng.random() < 0.6:
            for _ in range(k):
                b.preauth_fail(us, dc, u.sam, u.sid, ws.ip)
                us += rng.randint(2, 12) * US
            self._kerberos_logon(us, u, ws, dc)
        else:
            srv = rng.choice(self.ntlm_servers)
            for _ in range(k):
                us = b.ntlm(us, u.sam, ws.name, srv, 0xC000006A) + rng.randint(2, 12) * US
            b.ntlm(us, u.sam, ws.name, srv)

    def expired(self, us: int) -> None:
        """A password past its age: the right password, refused with 0xC0000071 / KDC 0x17."""
        u, ws, dc = self._user()
        if self.rng.random() < 0.5:
            for _ in range(self.rng.randint(1, 2)):
                us = self.b.ntlm(us, u.sam, ws.name, self.d.servers["EXCH01"], 0xC0000071) + 20 * US
        else:
            self.b.tgt(us, dc, u.sam, u.sid, ws.ip, 0x17)
        self._kerberos_logon(us + self.rng.randint(60, 900) * US, u, ws, dc)

    def unknown_name(self, us: int) -> None:
        """A mistyped user name (0xC0000064 / KDC 0x6), corrected seconds later."""
        u, ws, dc = self._user()
        rng, name = self.rng, u.sam
        for _ in range(5):
            i = rng.randrange(1, len(u.sam))
            name = rng.choice((u.sam[:i] + u.sam[i + 1:], u.sam[:i] + u.sam[i] + u.sam[i:],
                               u.sam[:i - 1] + u.sam[i] + u.sam[i - 1] + u.sam[i + 1:], u.sam + "1"))
            if name.lower() not in self.d.by_sam:
                break
        if rng.random() < 0.5:
            srv = rng.choice(self.ntlm_servers)
            us = self.b.ntlm(us, name, ws.name, srv, 0xC0000064) + rng.randint(5, 30) * US
            self.b.ntlm(us, u.sam, ws.name, srv)
        else:
            self.b.tgt(us, dc, name, "", ws.ip, 0x6)
            self._kerberos_logon(us + rng.randint(5, 30) * US, u, ws, dc)

    def lockout(self, us: int) -> None:
        """A phone with the old password polls Exchange until the account locks (threshold 10)."""
        u, _, _ = self._user()
        exch = self.d.servers["EXCH01"]
        for i in range(10 + self.rng.randint(2, 6)):
            us = self.b.ntlm(us, u.sam, exch.name, exch, 0xC000006A if i < 10 else 0xC0000234)
            us += self.rng.randint(60, 180) * US

    # -- administration -----------------------------------------------------------------------
    def group_change(self, us: int) -> None:
        actor = self.rng.choice(self.d.helpdesk)
        group = self.d.groups[self.rng.choice([g.name for g in self.d.groups.values() if not g.sensitive])]
        dc = (actor.workstation and actor.workstation.dc) or self.d.dcs[0]
        us, lid = self.session(us, dc, actor)
        self.b.group_change(self.b.later(us, 500, 5000), dc, group, self.rng.choice(self.d.users), actor, lid,
                            add=self.rng.random() < 0.75)

    def new_user(self, us: int) -> None:
        rng, b = self.rng, self.b
        actor, model = rng.choice(self.d.helpdesk), rng.choice(self.d.users)
        self.new_rid += 1
        display = f"{model.display.split()[0]} {rng.choice(self.d.users).display.split()[-1]}"
        new = Account(f"{display[0]}{display.split()[-1]}{self.new_rid % 97}".lower(), self.d.rid_sid(self.new_rid),
                      display, self.d.dn(display), "user")
        dc = self.d.dcs[0]
        us, lid = self.session(us, dc, actor)
        b.user_created(us := b.later(us, 500, 3000), dc, new, actor, lid)
        for g in rng.sample(["Sales", "Finance", "HR", "Engineering", "VPN Users", "All Staff"], rng.randint(1, 2)):
            b.group_change(us := b.later(us, 2000, 20000), dc, self.d.groups[g], new, actor, lid)

    def admin_rdp(self, us: int) -> None:
        a, dc, b = self.rng.choice(self.d.admins), self.rng.choice(self.d.dcs), self.b
        ws = a.workstation or dc
        if self.rng.random() < 0.1:  # typo while connecting by address (NTLM to the DC itself)
            b.add(4776, dc, us, {"PackageName": PKG, "TargetUserName": a.sam, "Workstation": ws.name,
                                 "Status": ntstatus(0xC000006A)}, failure=True)
            b.logon_fail(b.later(us, 1, 5), dc, a.sam, ws.ip, ws.name)
            us += self.rng.randint(4, 15) * US
            b.add(4776, dc, us, {"PackageName": PKG, "TargetUserName": a.sam, "Workstation": ws.name, "Status": "0x0"})
            b.logon(b.later(us, 1, 30), dc, a.sam, a.sid, ws.ip, 10, "Negotiate", True, dc.name)
            return
        us = self._tgt(us, dc, a.sam, a.sid, ws.ip)
        b.tgs(us := b.later(us, 5, 50), dc, a.sam, dc.account, dc.sid, ws.ip)
        b.logon(b.later(us, 200, 2000), dc, a.sam, a.sid, ws.ip, 10, "Negotiate", True, dc.name)

    def sensitive_change(self, us: int) -> None:
        """The usual admin legitimately touching a sensitive group (the baseline attacks differ from)."""
        rng, d = self.rng, self.d
        actor = d.admins[0] if rng.random() < 0.8 else d.admins[1]
        group = rng.choice(("Backup Operators", "Server Operators", "Domain Admins", "Group Policy Creator Owners",
                            "Administrators"))
        member = d.services["svc_backup"] if group in ("Backup Operators", "Server Operators") else rng.choice(d.admins)
        dc = rng.choice(d.dcs)
        us, lid = self.session(us, dc, actor)
        self.b.group_change(self.b.later(us, 1000, 8000), dc, d.groups[group], member, actor, lid,
                            add=rng.random() < 0.6)

    def defender_driver(self, us: int) -> None:
        """Defender's kernel helper: a fresh random-looking MpKsl<8 hex> service each signature update."""
        h = self.b.guid()
        self.b.service(us, self.rng.choice(self.d.dcs), f"MpKsl{self.rng.getrandbits(32):08x}",
                       rf"C:\ProgramData\Microsoft\Windows Defender\Definition Updates\{h}\MpKslDrv.sys",
                       "kernel mode driver", "demand start", "", None)

    def agent_install(self, us: int) -> None:
        name, path, stype, start, account = self.rng.choice(AGENTS)
        dc = self.rng.choice(self.d.dcs)
        admin = self.rng.choice(self.d.admins) if self.rng.random() < 0.5 else None
        lid = "0x3e7"
        if admin is not None:
            us, lid = self.session(us, dc, admin)
        self.b.service(self.b.later(us, 1000, 30000), dc, name, path, stype, start, account, admin, lid)

    # -- machines and services ----------------------------------------------------------------
    def _machine_refresh(self, us: int, m: Machine) -> None:
        b, dc = self.b, m.dc or self.d.dcs[0]
        us = self._tgt(us, dc, m.account, m.sid, m.ip)
        b.tgs(us, dc, m.account, dc.account, dc.sid, m.ip)
        b.tgs(us := b.later(us, 5, 200), dc, m.account, dc.account, dc.sid, m.ip)
        b.logon(b.later(us, 1, 40), dc, m.account, m.sid, m.ip)

    def machine(self, us: int) -> None:
        self._machine_refresh(us, self.rng.choice(self.d.workstations))

    def server(self, us: int) -> None:
        self._machine_refresh(us, self.rng.choice(self.servers))

    def replication(self, us: int) -> None:
        src, dst = self.rng.sample(self.d.dcs, 2)
        us = self._tgt(us, src, src.account, src.sid, src.ip)
        self.b.tgs(us, dst, src.account, dst.account, dst.sid, src.ip)
        lid = self.b.logon(us := self.b.later(us, 1, 20), dst, src.account, src.sid, src.ip)
        self.b.replicate(self.b.later(us, 1, 30), dst, src, lid, [GET_CHANGES, GET_CHANGES_ALL])

    def service_account(self, us: int) -> None:
        rng, d, b = self.rng, self.d, self.b
        sam = rng.choice(("svc_sql", "svc_web", "svc_backup", "svc_sccm", "svc_scan", "svc_exch"))
        svc = d.services[sam]
        host = svc.workstation or d.dcs[0]
        if sam == "svc_web":
            b.ntlm(us, sam, host.name, d.servers["SQL01"])
        elif sam == "svc_sccm":  # client push: the target workstation passes the logon to its DC
            b.ntlm(us, sam, host.name, rng.choice(d.workstations))
        elif sam == "svc_scan":
            b.ntlm(us, sam, host.name, rng.choice(self.servers))
        else:
            target = rng.choice([d.servers["FS01"], d.servers["FS02"], *d.dcs])
            us = self._tgt(us, host.dc or d.dcs[0], sam, svc.sid, host.ip)
            b.tgs(us, host.dc or d.dcs[0], sam, target.account, target.sid, host.ip)
