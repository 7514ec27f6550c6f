"""The directory, account-management, policy and CA events of one action, shaped as
reference/dc-log-alerts.md part A (and its recordings) shows them. A mixin of `Builder`."""

from __future__ import annotations

import hashlib
import random
from datetime import timedelta
from typing import TYPE_CHECKING

from .dcfields import ACCESS, ADDED, DELETED, DOMAIN_DNS, OTHER_OBJECT_ACCESS_TASK
from .domain import EPOCH, Account, Domain, Machine

if TYPE_CHECKING:
    from ..model import Origin

Actor = Account | Machine
MS = 1000


def obj_guid(key: str) -> str:
    """A stable objectGUID for a directory object (derived from its SID or DN)."""
    h = hashlib.md5(key.encode()).hexdigest().upper()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:32]}"


def us_date(us: int) -> str:
    """`PasswordLastSet` as an en-US DC writes it: `12/4/2021 10:09:13 PM`."""
    t = EPOCH + timedelta(microseconds=us)
    half = "AM" if t.hour < 12 else "PM"
    return f"{t.month}/{t.day}/{t.year} {(t.hour % 12) or 12}:{t.minute:02d}:{t.second:02d} {half}"


def lines(items: list[str]) -> str:
    """A multi-valued field (SPNs, UAC codes): CR LF TAB TAB before each item, as DCs write it."""
    return "".join(f"\r\n\t\t{i}" for i in items)


class DirectoryEvents:
    d: Domain
    rng: random.Random
    tag: Origin | None

    if TYPE_CHECKING:
        def add(self, eid: int, dc: Machine, us: int, values: dict[str, str], failure: bool = False,
                user_sid: str | None = None, task: int | None = None) -> None: ...
        def later(self, us: int, lo_ms: int = 1, hi_ms: int = 60) -> int: ...
        def guid(self) -> str: ...

    def subject(self, actor: Actor, logon_id: str) -> dict[str, str]:
        """Subject* fields; a computer acting locally (logon 0x3e7) is SYSTEM under its own name (obs.)."""
        name = actor.account if isinstance(actor, Machine) else actor.sam
        sid = "S-1-5-18" if isinstance(actor, Machine) and logon_id == "0x3e7" else actor.sid
        return {"SubjectUserSid": sid, "SubjectUserName": name, "SubjectDomainName": self.d.netbios,
                "SubjectLogonId": logon_id}

    @property
    def root_dn(self) -> str:
        return ",".join(f"DC={p}" for p in self.d.dns.split("."))

    # -- 4662 -------------------------------------------------------------------------------------------
    def replicate(self, us: int, dc: Machine, actor: Actor, logon_id: str, rights: list[str]) -> int:
        """One 4662 per replication right used on the domain root (Control Access), as DRSUAPI logs them."""
        root = obj_guid(self.root_dn).lower()  # the same objectGUID a 5136 on the root shows
        for right in rights:
            self.add(4662, dc, us, {**self.subject(actor, logon_id), "ObjectServer": "DS",
                                    "ObjectType": f"%{{{DOMAIN_DNS}}}", "ObjectName": f"%{{{root}}}",
                                    "OperationType": "Object Access", "HandleId": "0x0",
                                    "AccessList": "%%7688\r\n\t\t\t\t", "AccessMask": "0x100",
                                    "Properties": f"%%7688\r\n\t\t{{{right}}}\r\n\t{{{DOMAIN_DNS}}}\r\n",
                                    "AdditionalInfo": "-", "AdditionalInfo2": ""})
            us = self.later(us, 0, 15)
        return us

    def write_dac(self, us: int, dc: Machine, actor: Actor, logon_id: str, object_key: str,
                  object_class: str = DOMAIN_DNS) -> None:
        """4662 WRITE_DAC on an object (the access that precedes a 5136 nTSecurityDescriptor change);
        `object_key` is its DN, so the objectGUID matches the 5136's."""
        code, name = ACCESS[0x40000], obj_guid(object_key).lower()
        self.add(4662, dc, us, {**self.subject(actor, logon_id), "ObjectServer": "DS",
                                "ObjectType": f"%{{{object_class}}}", "ObjectName": f"%{{{name}}}",
                                "OperationType": "Object Access", "HandleId": "0x0",
                                "AccessList": f"{code}\r\n\t\t\t\t",
                                "AccessMask": "0x40000", "Properties": f"{code}\r\n\t{{{object_class}}}\r\n",
                                "AdditionalInfo": "-", "AdditionalInfo2": ""})

    def secret_query(self, us: int, dc: Machine, actor: Actor, logon_id: str, name: str) -> None:
        """4662 from LSA on a secret (Other Object Access Events), e.g. the DPAPI backup key."""
        self.add(4662, dc, us, {**self.subject(actor, logon_id), "ObjectServer": "LSA", "ObjectType": "SecretObject",
                                "ObjectName": rf"Policy\Secrets\{name}", "OperationType": "Query",
                                "HandleId": hex(self.rng.getrandbits(40) | 0x10000000000),
                                "AccessList": "%%5649\r\n\t\t\t\t", "AccessMask": "0x2", "Properties": "-",
                                "AdditionalInfo": "-", "AdditionalInfo2": "-"}, task=OTHER_OBJECT_ACCESS_TASK)

    # -- 5136/5137/5141 -----------------------------------------------------------------------------------
    def _ds(self, actor: Actor, logon_id: str, dn: str, cls: str, corr: str) -> dict[str, str]:
        return {"OpCorrelationID": corr, "AppCorrelationID": "-", **self.subject(actor, logon_id),
                "DSName": self.d.dns, "DSType": "%%14676", "ObjectDN": dn, "ObjectGUID": f"{{{obj_guid(dn)}}}",
                "ObjectClass": cls}

    def ds_change(self, us: int, dc: Machine, actor: Actor, logon_id: str, dn: str, cls: str, attr: str,
                  syntax: str, new: str | None, old: str | None = None) -> int:
        """5136: the old value deleted then the new one added (one operation), or just one of them."""
        corr = self.guid()
        base = self._ds(actor, logon_id, dn, cls, corr)
        for value, op in ((old, DELETED), (new, ADDED)):
            if value is not None:
                self.add(5136, dc, us, {**base, "AttributeLDAPDisplayName": attr, "AttributeSyntaxOID": syntax,
                                        "AttributeValue": value, "OperationType": op})
                us += self.rng.randint(50, 900)
        return us

    def ds_created(self, us: int, dc: Machine, actor: Actor, logon_id: str, dn: str, cls: str) -> None:
        self.add(5137, dc, us, self._ds(actor, logon_id, dn, cls, self.guid()))

    def ds_deleted(self, us: int, dc: Machine, actor: Actor, logon_id: str, dn: str, cls: str) -> None:
        self.add(5141, dc, us, {**self._ds(actor, logon_id, dn, cls, self.guid()), "TreeDelete": "%%14679"})

    # -- account management -------------------------------------------------------------------------------
    def user_changed(self, us: int, dc: Machine, target: Account, actor: Actor, logon_id: str,
                     **changed: str) -> None:
        """4738: the changed fields carry their new value, the rest `-`."""
        self.add(4738, dc, us, {"Dummy": "-", "TargetUserName": target.sam, "TargetDomainName": self.d.netbios,
                                "TargetSid": target.sid, **self.subject(actor, logon_id), **changed})

    def password_reset(self, us: int, dc: Machine, target: Account, actor: Actor, logon_id: str) -> int:
        """A helpdesk reset: 4724, then the 4738 that only says PasswordLastSet."""
        self.add(4724, dc, us, {"TargetUserName": target.sam, "TargetDomainName": self.d.netbios,
                                "TargetSid": target.sid, **self.subject(actor, logon_id)})
        us = self.later(us, 0, 2)
        self.user_changed(us, dc, target, actor, logon_id, PasswordLastSet=us_date(us))
        return us

    def computer_created(self, us: int, dc: Machine, m: Machine, actor: Actor, logon_id: str,
                         quota: bool = False) -> None:
        """4741 as obs.: a join over LDAP names the host and its SPNs; an account added over SAMR under the
        MachineAccountQuota (impacket addcomputer) uses SeMachineAccountPrivilege, no password required, no SPNs."""
        spns = [f"HOST/{m.fqdn}", f"RestrictedKrbHost/{m.fqdn}", f"HOST/{m.name}", f"RestrictedKrbHost/{m.name}"]
        unset = "%%1793"
        self.add(4741, dc, us, {
            "TargetUserName": m.account, "TargetDomainName": self.d.netbios, "TargetSid": m.sid,
            **self.subject(actor, logon_id), "PrivilegeList": "SeMachineAccountPrivilege" if quota else "-",
            "SamAccountName": m.account, "DisplayName": unset, "UserPrincipalName": "-", "HomeDirectory": unset,
            "HomePath": unset, "ScriptPath": unset, "ProfilePath": unset, "UserWorkstations": unset,
            "PasswordLastSet": "%%1794", "AccountExpires": "%%1794", "PrimaryGroupId": "515",
            "AllowedToDelegateTo": "-", "OldUacValue": "0x0", "NewUacValue": "0x84" if quota else "0x80",
            "UserAccountControl": lines(["%%2082", "%%2087"] if quota else ["%%2087"]), "UserParameters": "%%1792",
            "SidHistory": "-", "LogonHours": unset, "DnsHostName": "-" if quota else m.fqdn,
            "ServicePrincipalNames": "-" if quota else lines(spns)})

    def computer_changed(self, us: int, dc: Machine, m: Machine, actor: Actor, logon_id: str,
                         **changed: str) -> None:
        self.add(4742, dc, us, {"ComputerAccountChange": "-", "TargetUserName": m.account,
                                "TargetDomainName": self.d.netbios, "TargetSid": m.sid,
                                **self.subject(actor, logon_id), **changed})

    def renamed(self, us: int, dc: Machine, old: str, new: str, sid: str, actor: Actor, logon_id: str) -> None:
        self.add(4781, dc, us, {"OldTargetUserName": old, "NewTargetUserName": new, "TargetDomainName": self.d.netbios,
                                "TargetSid": sid, **self.subject(actor, logon_id)})

    def dsrm_reset(self, us: int, dc: Machine, actor: Actor, logon_id: str) -> None:
        self.add(4794, dc, us, {**self.subject(actor, logon_id), "Workstation": dc.name, "Status": "0x0"})

    def sid_history_added(self, us: int, dc: Machine, target: Account, source_name: str, source_sid: str,
                          actor: Actor, logon_id: str) -> None:
        self.add(4765, dc, us, {"SourceUserName": source_name, "SourceSid": source_sid, "TargetUserName": target.sam,
                                "TargetDomainName": self.d.netbios, "TargetSid": target.sid,
                                **self.subject(actor, logon_id), "SidList": "-"})

    # -- policy, trusts, logs ---------------------------------------------------------------------------------
    def audit_policy(self, us: int, dc: Machine, actor: Actor, logon_id: str, category: str, subcategory: str,
                     guid: str, changes: str) -> None:
        self.add(4719, dc, us, {**self.subject(actor, logon_id), "CategoryId": category, "SubcategoryId": subcategory,
                                "SubcategoryGuid": guid, "AuditPolicyChanges": changes})

    def trust_created(self, us: int, dc: Machine, actor: Actor, logon_id: str, name: str, sid: str,
                      tdo_type: int = 2, direction: int = 3, attributes: int = 8) -> None:
        self.add(4706, dc, us, {"DomainName": name, "DomainSid": sid, **self.subject(actor, logon_id),
                                "TdoType": str(tdo_type), "TdoDirection": str(direction),
                                "TdoAttributes": str(attributes), "SidFilteringEnabled": "%%1796"})

    def log_cleared(self, us: int, dc: Machine, actor: Account, logon_id: str, system_too: bool = True) -> int:
        """1102 (Security) and, for `wevtutil cl System`, 104 in the System log."""
        self.add(1102, dc, us, self.subject(actor, logon_id))
        if system_too:
            us = self.later(us, 200, 3000)
            self.add(104, dc, us, {"SubjectUserName": actor.sam, "SubjectDomainName": self.d.netbios,
                                   "Channel": "System", "BackupPath": ""})
        return us

    # -- AD CS (the CA's Security log) --------------------------------------------------------------------------
    def ca_audit_filter(self, us: int, ca: Machine, actor: Actor, logon_id: str, value: int) -> None:
        self.add(4885, ca, us, {"AuditFilter": str(value), **self.subject(actor, logon_id)})

    def cert_request(self, us: int, ca: Machine, request_id: int, requester: str, template: str, subject: str,
                     san_requested: str, san_issued: str, client: str) -> int:
        """4886 (received) and 4887 (issued) for one enrolment over DCOM, Kerberos-authenticated."""
        attrs = f"CertificateTemplate:{template}" + (f"\r\nSAN:{san_requested}" if san_requested else "") + \
                f"\r\nccm:{client}"
        common = {"RequestId": str(request_id), "Requester": requester, "Attributes": attrs}
        auth = {"AuthenticationService": "Kerberos", "AuthenticationLevel": "Privacy", "DCOMorRPC": "DCOM"}
        self.add(4886, ca, us, {**common, "Subject": subject, "SubjectAlternativeName": "",
                                "CertificateTemplate": template, "RequestOSVersion": "10.0.19045.2",
                                "RequestCSPProvider": "Microsoft Software Key Storage Provider",
                                "RequestClientInfo": "-", **auth})
        us = self.later(us, 20, 400)
        self.add(4887, ca, us, {**common, "Disposition": "3",
                                "SubjectKeyIdentifier": hashlib.sha1(f"{request_id}{requester}".encode()).hexdigest(),
                                "Subject": subject, "SubjectAlternativeName": san_issued,
                                "CertificateTemplate": template,
                                "SerialNumber": f"{self.rng.getrandbits(152):038x}", **auth})
        return us
