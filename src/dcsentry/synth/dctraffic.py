"""Everyday DC-log traffic: the look-alikes of reference/dc-log-alerts.md part B that a real domain
produces every day (a mixin of `Everyday`).

DC-to-DC replication and the Entra Connect connector replicate (4662); the connector writes Windows
Hello keys (msDS-KeyCredentialLink); legacy clients ask RC4 tickets of their usual RC4-only services
and an old host logs on the accounts kept without pre-authentication; helpdesk resets passwords, GPO
admins edit their GPOs, an admin re-applies the usual delegations, a join account adds computers,
computers change their passwords, the CA issues certificates to their requesters. Every actor and
pair comes from the domain's fixed population, so a detector that learns sees the same every day.
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING

from .builder import Builder
from .dcfields import GET_CHANGES, GET_CHANGES_ALL
from .dirbuild import lines, us_date
from .domain import US, Account, Domain, Machine

TGT_LIFE = 9 * 3600 * US  # a client asks a new TGT before its 10 h ticket expires
GPC = "CN={%s},CN=Policies,CN=System,%s"


class DirectoryTraffic:
    d: Domain
    rng: random.Random
    b: Builder

    if TYPE_CHECKING:
        def _user(self) -> tuple[Account, Machine, Machine]: ...

    def dc_plan(self) -> list[tuple]:
        d, n_u, n_dc = self.d, len(self.d.users), len(self.d.dcs)
        self.tgt_at: dict[tuple[str, str], int] = {}
        self.gpo_version: dict[str, int] = {g: 7 + i * 3 for i, (g, _, _) in enumerate(d.gpos)}
        self.owner = {id(a.workstation): a for a in d.users if a.workstation}
        self.joined = 0
        self.delegated: dict[int, bool] = {}
        return [  # as Everyday.plan; helpdesk resets ~1.3 per user per year
            (1.5, len(d.rc4_clients), "people", 1.1, self.rc4_legacy),
            (2.0, len(d.no_preauth), "flat", 1.0, self.no_preauth_tgt),
            (2.0, 1, "flat", 5.0, self.entra_sync), (0.0015, n_u, "people", 3.0, self.key_writeback),
            (0.05, n_u, "people", 3.0, self.dc_ntlm_logon), (4.0, n_dc, "flat", 1.0, self.service_logon),
            (0.02, len(d.admins), "people", 2.0, self.console_logon),
            (0.0005, n_u, "people", 4.5, self.password_reset), (0.6, 1, "people", 4.0, self.gpo_edit),
            (0.1, 1, "people", 4.0, self.delegation), (0.0002, n_u, "people", 4.5, self.computer_join),
            (1 / 720, len(d.workstations) + len(d.servers), "flat", 1.0, self.machine_password),
            (0.001, n_u, "people", 2.0, self.enrolment), (0.0002, n_u, "people", 4.0, self.rename),
            (0.02, n_dc, "flat", 7.0, self.audit_refresh),
        ]

    def _tgt(self, us: int, dc: Machine, name: str, sid: str, ip: str) -> int:
        """A TGT first when the client has none younger than its lifetime (or the action is earlier)."""
        key = (name, ip)
        last = self.tgt_at.get(key)
        if last is None or us < last or us - last > TGT_LIFE:
            self.b.tgt(us, dc, name, sid, ip)
            self.tgt_at[key] = us
            return self.b.later(us, 2, 40)
        return us

    def session(self, us: int, dc: Machine, actor: Account, src: Machine | None = None) -> tuple[int, str]:
        """An admin tool's logon to the DC, after the TGT its client holds."""
        ws = src or actor.workstation or dc
        us = self._tgt(us, ws.dc or dc, actor.sam, actor.sid, ws.ip)
        return self.b.admin_session(us, dc, actor, ws)

    # -- Kerberos -----------------------------------------------------------------------------------------
    def rc4_legacy(self, us: int) -> None:
        """An old client of an RC4-only service: always the same (client, service) pairs."""
        m, svc = self.rng.choice(self.d.rc4_clients)
        u = self.owner.get(id(m))
        if u is None:
            return
        dc = m.dc or self.d.dcs[0]
        us = self._tgt(us, dc, u.sam, u.sid, m.ip)
        self.b.tgs(us, dc, u.sam, svc.sam, svc.sid, m.ip, "0x17")

    def no_preauth_tgt(self, us: int) -> None:
        """The legacy host's keytab logon of an account kept without pre-authentication (RC4 TGT)."""
        a, host = self.rng.choice(self.d.no_preauth), self.d.legacy_host
        assert host is not None
        self.b.tgt(us, host.dc or self.d.dcs[0], a.sam, a.sid, host.ip, enc="0x17", preauth="0",
                   options="0x40800010")
        self.tgt_at[(a.sam, host.ip)] = us

    # -- replication and Entra Connect --------------------------------------------------------------------------
    def entra_sync(self, us: int) -> None:
        """The connector's delta sync: logon from its server, then Get-Changes and Get-Changes-All."""
        d, msol, aadc = self.d, self.d.msol, self.d.aadc
        assert msol is not None and aadc is not None
        dc = aadc.dc or d.dcs[0]
        us, lid = self.session(us, dc, msol, aadc)
        self.b.replicate(self.b.later(us, 5, 200), dc, msol, lid, [GET_CHANGES, GET_CHANGES_ALL])

    def key_writeback(self, us: int) -> None:
        """Windows Hello for Business key write-back: the connector adds a user's msDS-KeyCredentialLink."""
        d, msol, aadc = self.d, self.d.msol, self.d.aadc
        assert msol is not None and aadc is not None
        u = self.rng.choice(d.users)
        dc = aadc.dc or d.dcs[0]
        us, lid = self.session(us, dc, msol, aadc)
        self.b.ds_change(self.b.later(us, 20, 600), dc, msol, lid, u.dn, "user", "msDS-KeyCredentialLink",
                         "2.5.5.7", key_credential(self.rng, u.dn))

    # -- logons on the DCs -------------------------------------------------------------------------------------
    def dc_ntlm_logon(self, us: int) -> None:
        """A user's NTLM network logon to the DC itself (SYSVOL by address, old apps): key length 128."""
        u, ws, dc = self._user()
        us = self.b.ntlm(us, u.sam, ws.name, dc)
        self.b.logon(self.b.later(us, 1, 20), dc, u.sam, u.sid, ws.ip, 3, "NTLM", workstation=ws.name)

    def service_logon(self, us: int) -> None:
        """A service started as SYSTEM on the DC (logon type 5)."""
        dc = self.rng.choice(self.d.dcs)
        self._local_logon(us, dc, 5, "S-1-5-18", "SYSTEM", "NT AUTHORITY", "Advapi  ", "Negotiate",
                          r"C:\Windows\System32\services.exe", "0x2b0")

    def console_logon(self, us: int) -> None:
        """An admin at a DC's console (logon type 2, Kerberos through Negotiate)."""
        a, dc = self.rng.choice(self.d.admins), self.rng.choice(self.d.dcs)
        self.b.tgt(us, dc, a.sam, a.sid, "::1")
        self._local_logon(self.b.later(us, 20, 400), dc, 2, a.sid, a.sam, self.d.netbios, "User32 ", "Negotiate",
                          r"C:\Windows\System32\svchost.exe", "0x3a4", elevated=True)

    def _local_logon(self, us: int, dc: Machine, logon_type: int, sid: str, name: str, domain: str, process: str,
                     package: str, image: str, pid: str, elevated: bool = False) -> None:
        b = self.b
        b.add(4624, dc, us, {
            "SubjectUserSid": "S-1-5-18", "SubjectUserName": dc.account, "SubjectDomainName": self.d.netbios,
            "SubjectLogonId": "0x3e7", "TargetUserSid": sid, "TargetUserName": name, "TargetDomainName": domain,
            "TargetLogonId": b.logon_id(), "LogonType": str(logon_type), "LogonProcessName": process,
            "AuthenticationPackageName": package, "WorkstationName": dc.name if logon_type == 2 else "-",
            "LogonGuid": b.guid() if logon_type == 2 else "{00000000-0000-0000-0000-000000000000}",
            "LmPackageName": "-", "KeyLength": "0", "ProcessId": pid, "ProcessName": image,
            "IpAddress": "127.0.0.1" if logon_type == 2 else "-", "IpPort": "0" if logon_type == 2 else "-",
            "ImpersonationLevel": "%%1833", "RestrictedAdminMode": "-", "VirtualAccount": "%%1843",
            "TargetLinkedLogonId": "0x0", "ElevatedToken": "%%1842" if elevated or logon_type == 5 else "%%1843"})

    # -- directory chores ---------------------------------------------------------------------------------------
    def password_reset(self, us: int) -> None:
        """Helpdesk resets a forgotten password: 4724 + 4738 (PasswordLastSet only, no UAC change)."""
        actor, target = self.rng.choice(self.d.helpdesk), self.rng.choice(self.d.users)
        dc = (actor.workstation and actor.workstation.dc) or self.d.dcs[0]
        us, lid = self.session(us, dc, actor)
        self.b.password_reset(self.b.later(us, 500, 20000), dc, target, actor, lid)

    def gpo_edit(self, us: int) -> None:
        """A GPO admin edits one of their GPOs: versionNumber replaced (deleted + added, one operation)."""
        guid, _, editor = self.rng.choice(self.d.gpos)
        dc = self.d.dcs[0]  # the PDC emulator, where GPMC edits by default
        us, lid = self.session(us, dc, editor)
        old = self.gpo_version[guid]
        new = old + self.rng.choice((1, 1, 65536))  # computer or user part of the version
        self.gpo_version[guid] = new
        dn = GPC % (guid, self.b.root_dn)
        self.b.ds_change(self.b.later(us, 2000, 60000), dc, editor, lid, dn, "groupPolicyContainer",
                         "versionNumber", "2.5.5.9", str(new), str(old))

    def delegation(self, us: int) -> None:
        """The usual admin adds or removes the standby front end of a known resource-based delegation
        (the same admin, the same resources; the descriptor alternates between one and two front ends)."""
        i = self.rng.randrange(len(self.d.delegations))
        resource, front = self.d.delegations[i]
        standby = self.d.servers["RDS01"] if front.name != "RDS01" else self.d.servers["APP01"]
        actor, dc = self.d.admins[0], self.d.dcs[0]
        us, lid = self.session(us, dc, actor)
        one = f"O:BAD:(A;;CCDCLCSWRPWPDTLOCRSDRCWDWO;;;{front.sid})"
        two = one + f"(A;;CCDCLCSWRPWPDTLOCRSDRCWDWO;;;{standby.sid})"
        self.delegated[i] = not self.delegated.get(i, False)
        old, new = (one, two) if self.delegated[i] else (two, one)
        dn = self.d.dn(resource.name, "OU=Servers,OU=Corp")
        self.b.ds_change(self.b.later(us, 1000, 20000), dc, actor, lid, dn, "computer",
                         "msDS-AllowedToActOnBehalfOfOtherIdentity", "2.5.5.15", new, old)

    def computer_join(self, us: int) -> None:
        """The join account adds a new workstation (4741); the machine then writes its SPNs (4742)."""
        d, actor = self.d, self.d.join_account
        assert actor is not None
        self.joined += 1
        name = f"WS{9000 + self.joined:04d}"[-6:]
        ip = f"10.9.{self.joined // 250}.{self.joined % 250 + 2}"
        m = Machine(name, f"{name}.{d.dns}", d.rid_sid(40000 + self.joined), ip, "workstation", d.dcs[0])
        dc = d.dcs[0]
        us, lid = self.session(us, dc, actor)
        self.b.computer_created(us := self.b.later(us, 200, 3000), dc, m, actor, lid)
        spns = [f"HOST/{m.fqdn}", f"RestrictedKrbHost/{m.fqdn}", f"HOST/{m.name}", f"RestrictedKrbHost/{m.name}",
                f"TERMSRV/{m.fqdn}", f"TERMSRV/{m.name}", f"WSMAN/{m.fqdn}", f"WSMAN/{m.name}"]
        self.b.computer_changed(self.b.later(us, 20000, 120000), dc, m, m, self.b.logon_id(),
                                ServicePrincipalNames=lines(spns), DnsHostName=m.fqdn)

    def machine_password(self, us: int) -> None:
        """A member's routine 30-day machine password change (4742, PasswordLastSet, by itself)."""
        m = self.rng.choice(self.d.workstations + list(self.d.servers.values()))
        dc = m.dc or self.d.dcs[0]
        self.b.computer_changed(us, dc, m, m, self.b.logon_id(), PasswordLastSet=us_date(us))

    def rename(self, us: int) -> None:
        """Helpdesk renames: a user after a name change (4781 + 4738), a computer moved to another team
        (4781 keeps the `$`). The account goes on under its new name (the domain object is renamed)."""
        d, actor, rng, b = self.d, self.rng.choice(self.d.helpdesk), self.rng, self.b
        dc = (actor.workstation and actor.workstation.dc) or d.dcs[0]
        if rng.random() < 0.5:
            u = rng.choice(d.users)
            new = f"{u.sam[0]}{rng.choice(('smith', 'jones', 'brown', 'miller', 'wilson'))}{rng.randint(2, 99)}"
            if new in d.by_sam:
                return
            us, lid = self.session(us, dc, actor)
            b.renamed(us := b.later(us, 1000, 30000), dc, u.sam, new, u.sid, actor, lid)
            b.user_changed(b.later(us, 0, 3), dc, u, actor, lid, SamAccountName=new,
                           UserPrincipalName=f"{new}@{d.dns}")
            del d.by_sam[u.sam.lower()]
            u.sam = new
            d.by_sam[new] = u
        else:
            m = rng.choice(d.workstations)
            if "-" in m.name:  # renamed once already
                return
            us, lid = self.session(us, dc, actor)
            name = f"{rng.choice(('FIN', 'HR', 'ENG', 'OPS'))}-{m.name}"
            b.renamed(b.later(us, 1000, 30000), dc, m.account, name + "$", m.sid, actor, lid)
            m.name, m.fqdn = name, f"{name}.{d.dns}"

    def audit_refresh(self, us: int) -> None:
        """The audit GPO re-applied on a DC (after a policy edit or a reboot): the DC itself logs a 4719 per
        subcategory with Success/Failure *added* (%%8449, %%8451), nothing removed."""
        dc = self.rng.choice(self.d.dcs)
        for cat, sub, guid in AUDITED[: self.rng.randint(4, len(AUDITED))]:
            self.b.audit_policy(us, dc, dc, "0x3e7", cat, sub, f"{guid}-69AE-11D9-BED3-505054503030", "%%8449, %%8451")
            us = self.b.later(us, 0, 3)

    def enrolment(self, us: int) -> None:
        """Autoenrolment on the CA: a user's certificate naming that user, a machine's naming itself."""
        d, ca = self.d, self.d.ca
        assert ca is not None
        u = self.rng.choice(d.users)
        ws = u.workstation or d.dcs[0]
        rid = self.rng.randint(1000, 999999)
        if self.rng.random() < 0.5:
            self.b.cert_request(us, ca, rid, f"{d.netbios}\\{u.sam}", "User", f"CN={u.display}, OU=Users, OU=Corp",
                                "", f"Other Name:\r\n     Principal Name={u.sam}@{d.dns}", ws.fqdn)
        else:
            self.b.cert_request(us, ca, rid, f"{d.netbios}\\{ws.account}", "Machine", f"CN={ws.fqdn}", "",
                                f"DNS Name={ws.fqdn}", ws.fqdn)


AUDITED = (  # (category, subcategory, GUID) of what the DCs' audit GPO sets (audit-policy.md)
    ("%%8273", "%%12544", "0CCE9215"), ("%%8278", "%%13824", "0CCE9235"), ("%%8278", "%%13825", "0CCE9236"),
    ("%%8278", "%%13826", "0CCE9237"), ("%%8279", "%%14080", "0CCE923B"), ("%%8279", "%%14081", "0CCE923C"),
    ("%%8280", "%%14336", "0CCE923F"), ("%%8280", "%%14337", "0CCE9240"), ("%%8280", "%%14339", "0CCE9242"),
    ("%%8272", "%%12289", "0CCE9211"))


def key_credential(rng: random.Random, dn: str) -> str:
    """msDS-KeyCredentialLink as DN-Binary `B:<hex length>:<hex>:<DN>` (a KEYCREDENTIALLINK_BLOB)."""
    blob = "00020000200001" + f"{rng.getrandbits(4 * 814):0814X}"
    return f"B:{len(blob)}:{blob}:{dn}"
