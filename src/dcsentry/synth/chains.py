"""Multi-step attacks: several labelled steps that tell one story (attacks.py CHAINS), which the
incidents (docs/incidents.md) must come out of whole."""

from __future__ import annotations

import string

from .dcattacks import MIN, DirectoryAttacks, Part
from .dcfields import GET_CHANGES, GET_CHANGES_ALL
from .domain import Machine


class ChainAttacks(DirectoryAttacks):
    def chain_dcsync(self, us: int, room: int) -> list[Part]:
        """Kerberos spray from a compromised workstation, one hit; the hit roasts service accounts; the
        cracked backup account replicates the domain's secrets."""
        d, b, rng = self.d, self.b, self.rng
        _, ws = self.victim()
        dc = ws.dc or d.dcs[0]
        parts: list[Part] = []
        lid = self.tag("password-spray")
        accounts = self.targets(self.count(30, 80, 12))
        hit = accounts[rng.randrange(len(accounts) // 2, len(accounts))]
        for a in accounts:
            if a is hit:
                b.tgt(us, dc, a.sam, a.sid, ws.ip)
            else:
                b.preauth_fail(us, dc, a.sam, a.sid, ws.ip)
            us += rng.randint(150, 900) * 1000
        parts.append((lid, "password-spray", "kerberos-chain",
                      {"source_ip": ws.ip, **self._src(ws), "dc": dc.fqdn, "accounts": sorted(a.sam for a in accounts),
                       "passwords": 1, "guessed_accounts": [hit.sam]}))
        us += rng.randint(5, 20) * MIN
        lid = self.tag("kerberoasting")
        roasted = [d.services[s] for s in ("svc_sql", "svc_backup", "svc_erp", "svc_report", "svc_exch")]
        for svc in roasted:
            b.tgs(us, dc, hit.sam, svc.sam, svc.sid, ws.ip, "0x17")
            us += rng.randint(5, 60) * 1000
        parts.append((lid, "kerberoasting", "rc4-many-services",
                      {"account": hit.sam, "account_sid": hit.sid, "source_ip": ws.ip, "dc": dc.fqdn,
                       "services": [s.sam for s in roasted]}))
        us += rng.randint(30, 90) * MIN
        lid = self.tag("dcsync")
        svc = d.services["svc_backup"]
        us, logon = self.session(us, dc, svc, ws)
        b.replicate(b.later(us, 30, 400), dc, svc, logon, [GET_CHANGES, GET_CHANGES, GET_CHANGES_ALL])
        parts.append((lid, "dcsync", "get-changes-all",
                      {"account": svc.sam, "account_sid": svc.sid, "source_ip": ws.ip, "dc": dc.fqdn,
                       "rights": ["DS-Replication-Get-Changes", "DS-Replication-Get-Changes-All"]}))
        return parts

    def chain_service_on_dc(self, us: int, room: int) -> list[Part]:
        """NTLM brute force on the SCCM service account (admin on every machine, DCs included) from a
        compromised build server, the last guess right; then its credentials install a service on a DC
        from there (issue 20's second chain). The build server is the attacker's alone: nothing else in
        the synthetic domain uses it, so the story stays one incident."""
        d, b, rng = self.d, self.b, self.rng
        admin = d.services["svc_sccm"]
        dc = rng.choice(d.dcs)
        name = "BLD" + "".join(rng.choices(string.digits, k=2))
        ws = Machine(name, f"{name}.{d.dns}", d.rid_sid(32000 + rng.randrange(900)),
                     f"10.1.250.{rng.randint(10, 250)}", "server", dc)
        server = d.servers.get("FS02") or next(iter(d.servers.values()))
        lid = self.tag("brute-force")
        tries = rng.randint(30, 45)
        for i in range(tries):
            us = b.ntlm(us, admin.sam, ws.name, server, 0 if i == tries - 1 else 0xC000006A)
            us += rng.randint(1, 4) * 1000 * 1000
        parts: list[Part] = [(lid, "brute-force", "ntlm-then-success",
                              {"account": admin.sam, "account_sid": admin.sid, "attempts": tries, "source_ip": ws.ip,
                               **self._src(ws), "dc": (server.dc or d.dcs[0]).fqdn, "guessed_accounts": [admin.sam]})]
        us += rng.randint(3, 15) * MIN
        lid = self.tag("remote-service-installation")
        us, logon = self.session(us, dc, admin, ws)
        name = "upd" + "".join(rng.choices(string.ascii_lowercase, k=4))
        image = rf"%systemroot%\{name}.exe"
        b.service(b.later(us, 300, 3000), dc, name, image, "user mode service", "demand start", "LocalSystem",
                  admin, logon)
        parts.append((lid, "remote-service-installation", "after-brute-force",
                      {"actor": admin.sam, "actor_sid": admin.sid, "computer": dc.fqdn, "service_name": name,
                       "image_path": image, "source_ip": ws.ip, **self._src(ws), "dc": dc.fqdn}))
        return parts
