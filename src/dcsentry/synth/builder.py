"""Building one synthetic event: the field values, record ids and times a DC would write, shared
by the everyday traffic and the attacks."""

from __future__ import annotations

import math
import random
from datetime import datetime, timedelta

from ..catalogue import CATALOGUE, SECURITY_AUDITING
from ..model import Origin, WindowsEvent
from .dcfields import FIELDS, PROVIDERS
from .dirbuild import DirectoryEvents
from .domain import EPOCH, Account, Domain, Group, Machine
from .render import AUDIT_FAILURE, AUDIT_SUCCESS, META

PKG = "MICROSOFT_AUTHENTICATION_PACKAGE_V1_0"
MS = 1000
_BLANK = frozenset({"CertIssuerName", "CertSerialNumber", "CertThumbprint"})
_TYPES = {"user mode service": "0x10", "kernel mode driver": "0x1", "file system driver": "0x2"}
_STARTS = {"boot start": "0", "system start": "1", "auto start": "2", "demand start": "3", "disabled": "4"}
Stamped = tuple[int, WindowsEvent]


def to_dt(us: int) -> datetime:
    return EPOCH + timedelta(microseconds=us)


def ntstatus(code: int) -> str:
    """Status as DCs write it: lower-case hex, `0x0` for success."""
    return f"0x{code:x}"


def kdc_address(ip: str) -> str:
    """IpAddress as the KDC logs it: IPv4 mapped into IPv6 (`::ffff:10.0.0.5`), IPv6 (`::1`) as is."""
    return ip if ":" in ip else f"::ffff:{ip}"


def poisson(rng: random.Random, lam: float) -> int:
    if lam <= 0:
        return 0
    if lam > 30:
        return max(0, round(rng.gauss(lam, math.sqrt(lam))))
    limit, k, p = math.exp(-lam), 0, rng.random()
    while p > limit:
        k += 1
        p *= rng.random()
    return k


class Builder(DirectoryEvents):
    """Writes what the DCs log for one action. Offsets only move forward from the action's start,
    so an action never reaches back into a slice the stream has already emitted."""

    def __init__(self, d: Domain, rng: random.Random) -> None:
        self.d, self.rng = d, rng
        self.out: list[Stamped] = []
        self.tag: Origin | None = None

    def add(self, eid: int, dc: Machine, us: int, values: dict[str, str], failure: bool = False,
            user_sid: str | None = None, task: int | None = None) -> None:
        meta = META[eid]
        fields = FIELDS.get(eid)
        if fields is None:
            spec = CATALOGUE[eid]
            fields, provider, channel = spec.fields, spec.provider, spec.channel
        else:
            provider, channel = PROVIDERS.get(eid, (SECURITY_AUDITING, "Security"))
        data = {f: values.get(f, "" if f in _BLANK else "-") for f in fields}
        kw = (AUDIT_FAILURE if failure else AUDIT_SUCCESS) if provider == SECURITY_AUDITING else meta[3]
        self.out.append((us, WindowsEvent(eid, provider, channel, dc.fqdn, to_dt(us), None, data, self.tag,
                                          kw, meta[1], task or meta[2], user_sid)))

    def port(self) -> str:
        return str(self.rng.randint(49152, 65535))

    def logon_id(self) -> str:
        return hex(self.rng.getrandbits(28) | 0x1000000)

    def guid(self) -> str:
        h = f"{self.rng.getrandbits(128):032X}"
        return f"{{{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}}}"

    def later(self, us: int, lo_ms: int = 1, hi_ms: int = 60) -> int:
        return us + self.rng.randint(lo_ms * MS, hi_ms * MS)

    def ntlm(self, us: int, user: str, workstation: str, server: Machine, status: int = 0,
             domain_name: str | None = None) -> int:
        """8004 (which server passed the NTLM logon on) and its 4776 on that server's secure-channel DC."""
        dc = server.dc or self.d.dcs[0]
        self.add(8004, dc, us, {"SChannelName": server.name, "UserName": user,
                                "DomainName": domain_name or self.d.netbios, "WorkstationName": workstation or "NULL",
                                "SChannelType": "2"}, user_sid="S-1-5-18")
        us = self.later(us, 0, 40)
        self.add(4776, dc, us, {"PackageName": PKG, "TargetUserName": user, "Workstation": workstation,
                                "Status": ntstatus(status)}, failure=status != 0)
        return us

    def tgt(self, us: int, dc: Machine, name: str, sid: str, ip: str, status: int = 0, enc: str = "0x12",
            preauth: str = "2", options: str = "0x40810010", cert: tuple[str, str, str] | None = None,
            realm: str | None = None) -> None:
        """4768; `preauth` 0 = no pre-authentication (AS-REP roastable), 16 = PKINIT with `cert`
        (issuer, serial, thumbprint). `realm`: as the client named it (Windows: upper case; Rubeus and
        impacket: the DNS name as typed)."""
        ok = status == 0
        realm = realm or self.d.realm
        issuer, serial, thumb = cert or ("", "", "")
        self.add(4768, dc, us, {
            "TargetUserName": name, "TargetDomainName": realm, "TargetSid": "S-1-0-0" if status == 6 else sid,
            "ServiceName": "krbtgt" if ok else f"krbtgt/{self.d.realm}",
            "ServiceSid": self.d.rid_sid(502) if ok else "S-1-0-0", "TicketOptions": options,
            "Status": ntstatus(status), "TicketEncryptionType": enc if ok else "0xffffffff",
            "PreAuthType": preauth if ok else "-", "IpAddress": kdc_address(ip), "IpPort": self.port(),
            "CertIssuerName": issuer, "CertSerialNumber": serial, "CertThumbprint": thumb}, failure=not ok)

    def tgs(self, us: int, dc: Machine, client: str, service: str, service_sid: str, ip: str,
            enc: str = "0x12", options: str = "0x40810000", realm: str | None = None,
            transmitted: str = "-") -> None:
        realm = realm or self.d.realm
        self.add(4769, dc, us, {
            "TargetUserName": f"{client}@{realm}", "TargetDomainName": realm, "ServiceName": service,
            "ServiceSid": service_sid, "TicketOptions": options, "TicketEncryptionType": enc,
            "IpAddress": kdc_address(ip), "IpPort": self.port(), "Status": "0x0", "LogonGuid": self.guid(),
            "TransmittedServices": transmitted})

    def preauth_fail(self, us: int, dc: Machine, name: str, sid: str, ip: str, status: int = 0x18) -> None:
        self.add(4771, dc, us, {
            "TargetUserName": name, "TargetSid": sid, "ServiceName": f"krbtgt/{self.d.realm}",
            "TicketOptions": "0x40810010", "Status": ntstatus(status), "PreAuthType": "2",
            "IpAddress": kdc_address(ip), "IpPort": self.port()}, failure=True)

    def logon(self, us: int, dc: Machine, name: str, sid: str, ip: str, logon_type: int = 3,
              package: str = "Kerberos", elevated: bool = False, workstation: str = "-",
              key_length: str | None = None) -> str:
        """4624 on the DC itself (network logons for GPO/LDAP/SMB, RDP for admins). Returns the logon id."""
        lid, rdp, krb = self.logon_id(), logon_type == 10, package == "Kerberos"
        if key_length is None:
            key_length = "128" if package == "NTLM" else "0"
        self.add(4624, dc, us, {
            "SubjectUserSid": dc.sid if rdp else "S-1-0-0", "SubjectUserName": dc.account if rdp else "-",
            "SubjectDomainName": self.d.netbios if rdp else "-", "SubjectLogonId": "0x3e7" if rdp else "0x0",
            "TargetUserSid": sid, "TargetUserName": name, "TargetDomainName": self.d.realm if krb else self.d.netbios,
            "TargetLogonId": lid, "LogonType": str(logon_type),
            "LogonProcessName": "Kerberos" if krb else ("User32 " if rdp else "NtLmSsp "),
            "AuthenticationPackageName": package, "WorkstationName": workstation,
            "LogonGuid": self.guid() if krb or rdp else "{00000000-0000-0000-0000-000000000000}",
            "LmPackageName": "NTLM V2" if package == "NTLM" else "-", "KeyLength": key_length,
            "ProcessId": "0x44c" if rdp else "0x0", "ProcessName": r"C:\Windows\System32\svchost.exe" if rdp else "-",
            "IpAddress": ip, "IpPort": self.port() if krb or rdp else "0", "ImpersonationLevel": "%%1833",
            "RestrictedAdminMode": "%%1843" if rdp else "-", "VirtualAccount": "%%1843", "TargetLinkedLogonId": "0x0",
            "ElevatedToken": "%%1842" if elevated else "%%1843"})
        return lid

    def logon_fail(self, us: int, dc: Machine, name: str, ip: str, workstation: str) -> None:
        """4625 on the DC for a wrong password over NTLM (e.g. RDP to the DC by address)."""
        self.add(4625, dc, us, {
            "SubjectUserSid": "S-1-0-0", "SubjectLogonId": "0x0", "TargetUserSid": "S-1-0-0", "TargetUserName": name,
            "TargetDomainName": self.d.netbios, "Status": "0xc000006d", "FailureReason": "%%2313",
            "SubStatus": "0xc000006a", "LogonType": "3", "LogonProcessName": "NtLmSsp ",
            "AuthenticationPackageName": "NTLM", "WorkstationName": workstation, "KeyLength": "0",
            "ProcessId": "0x0", "IpAddress": ip, "IpPort": "0"}, failure=True)

    def group_change(self, us: int, dc: Machine, group: Group, member: Account, actor: Account, logon_id: str,
                     add: bool = True) -> None:
        self.add(group.add_id if add else group.remove_id, dc, us, {
            "MemberName": member.dn, "MemberSid": member.sid, "TargetUserName": group.name,
            "TargetDomainName": group.domain_name, "TargetSid": group.sid, "SubjectUserSid": actor.sid,
            "SubjectUserName": actor.sam, "SubjectDomainName": self.d.netbios, "SubjectLogonId": logon_id})

    def admin_session(self, us: int, dc: Machine, actor: Account, src: Machine | None = None) -> tuple[int, str]:
        """An admin tool's Kerberos network logon to the DC; the change events carry its logon id."""
        ws = src or actor.workstation or dc
        self.tgs(us, dc, actor.sam, dc.account, dc.sid, ws.ip)
        us = self.later(us, 2, 80)
        return us, self.logon(us, dc, actor.sam, actor.sid, ws.ip, elevated=actor.kind in ("admin", "builtin"))

    def service(self, us: int, dc: Machine, name: str, path: str, stype: str, start: str, account: str,
                installer: Account | None, logon_id: str = "0x3e7") -> None:
        """4697 (Security) and 7045 (System) for one service install; installer None means SYSTEM."""
        sid = installer.sid if installer else "S-1-5-18"
        self.add(4697, dc, us, {
            "SubjectUserSid": sid, "SubjectUserName": installer.sam if installer else dc.account,
            "SubjectDomainName": self.d.netbios, "SubjectLogonId": logon_id if installer else "0x3e7",
            "ServiceName": name, "ServiceFileName": path, "ServiceType": _TYPES[stype],
            "ServiceStartType": _STARTS[start], "ServiceAccount": account or "-"})
        self.add(7045, dc, self.later(us, 0, 20), {"ServiceName": name, "ImagePath": path, "ServiceType": stype,
                                                   "StartType": start, "AccountName": account}, user_sid=sid)

    def user_created(self, us: int, dc: Machine, new: Account, actor: Account, logon_id: str) -> None:
        self.add(4720, dc, us, {
            "TargetUserName": new.sam, "TargetDomainName": self.d.netbios, "TargetSid": new.sid,
            "SubjectUserSid": actor.sid, "SubjectUserName": actor.sam, "SubjectDomainName": self.d.netbios,
            "SubjectLogonId": logon_id, "SamAccountName": new.sam, "DisplayName": new.display,
            "UserPrincipalName": f"{new.sam}@{self.d.dns}", "HomeDirectory": "%%1793", "HomePath": "%%1793",
            "ScriptPath": "%%1793", "ProfilePath": "%%1793", "UserWorkstations": "%%1793",
            "PasswordLastSet": "%%1794", "AccountExpires": "%%1794", "PrimaryGroupId": "513",
            "OldUacValue": "0x0", "NewUacValue": "0x15", "UserAccountControl": "\n\t\t%%2080\n\t\t%%2082\n\t\t%%2084",
            "UserParameters": "%%1793", "SidHistory": "-", "LogonHours": "%%1797"})
