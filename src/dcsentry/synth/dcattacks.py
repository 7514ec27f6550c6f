"""Attacks seen in the DC's wider Security log (reference/dc-log-alerts.md part B), one scenario per
alert type plus the multi-step chains: spray -> success -> Kerberoast -> DCSync; a computer created ->
renamed as a DC (noPac) -> TGT as the DC; shadow credentials then a PKINIT TGT. A mixin of `Attacks`.

A scenario returns (variant, entities), or for a chain a list of (label id, type, variant, entities):
each step is its own label, tagged with `self.tag(type)` before its events are written.
"""

from __future__ import annotations

import random
import string
from typing import TYPE_CHECKING

from .builder import Builder
from .dcfields import (
    CSE_SCHEDULED_TASKS,
    CSE_SECURITY,
    DRS_SPN,
    GET_CHANGES,
    GET_CHANGES_ALL,
    INSTALL_REPLICA,
    MANAGE_TOPOLOGY,
)
from .dctraffic import GPC, key_credential
from .dirbuild import lines, obj_guid
from .domain import US, Account, Domain, Machine

MIN = 60 * US
Part = tuple[str, str, str, dict]
DEFAULT_SD = ("O:DAG:DAD:AI(A;;RPWPCRCCDCLCLORCWOWDSDDTSW;;;DA)(A;;RPWPCRCCDCLCLORCWOWDSDDTSW;;;EA)"
              "(OA;;CR;1131f6aa-9c07-11d1-f79f-00c04fc2dcd2;;ED)(OA;;CR;1131f6ad-9c07-11d1-f79f-00c04fc2dcd2;;ED)"
              "(OA;;CR;1131f6aa-9c07-11d1-f79f-00c04fc2dcd2;;BA)(OA;;CR;1131f6ad-9c07-11d1-f79f-00c04fc2dcd2;;BA)"
              "(A;;RPLCLORC;;;AU)(A;;RPWPCRCCDCLCLORCWOWDSDDTSW;;;SY)")
HOLDER_SD = ("O:DAG:DAD:PAI(OA;;RP;4c164200-20c0-11d0-a768-00aa006e0529;4828cc14-1437-45bc-9b07-ad6f015e5f28;RU)"
             "(A;;CCDCLCSWRPWPDTLOCRSDRCWDWO;;;DA)(A;;CCDCLCSWRPWPDTLOCRSDRCWDWO;;;EA)(A;;RPLCLORC;;;AU)"
             "(A;;CCDCLCSWRPWPDTLOCRSDRCWDWO;;;SY)")
GROUP_SD = ("O:DAG:DAD:AI(A;;RPWPCRCCDCLCLORCWOWDSDDTSW;;;DA)(A;;RPWPCRCCDCLCLORCWOWDSDDTSW;;;SY)"
            "(A;;RPLCLORC;;;AU)(OA;;RP;bc0ac240-79a9-11d0-9020-00c04fc2d4cf;;RU)")
MEMBER_ATTR = "bf9679c0-0de6-11d0-a285-00aa003049e2"


class DirectoryAttacks:
    d: Domain
    rng: random.Random
    b: Builder
    compact: bool

    if TYPE_CHECKING:
        def rogue(self) -> Machine: ...
        def victim(self, exclude: tuple = ()) -> tuple[Account, Machine]: ...
        def targets(self, k: int) -> list[Account]: ...
        def count(self, lo: int, hi: int, compact: int) -> int: ...
        def tag(self, kind: str) -> str: ...
        def _src(self, m: Machine) -> dict[str, str]: ...

    def session(self, us: int, dc: Machine, actor: Account, src: Machine) -> tuple[int, str]:
        """Stolen credentials used from `src`: a TGT there, a service ticket and a network logon to the DC."""
        self.b.tgt(us, src.dc or dc, actor.sam, actor.sid, src.ip)
        return self.b.admin_session(self.b.later(us, 5, 300), dc, actor, src)

    def stolen_admin(self) -> tuple[Account, Account, Machine, Machine]:
        """A Tier-0 admin's credentials used from an ordinary user's workstation against a DC."""
        actor = self.rng.choice(self.d.admins)
        u, ws = self.victim()
        return actor, u, ws, self.rng.choice(self.d.dcs)

    def _admin_entities(self, actor: Account, ws: Machine, dc: Machine) -> dict:
        return {"actor": actor.sam, "actor_sid": actor.sid, **self._src(ws), "dc": dc.fqdn}

    def nopac(self, us: int, room: int) -> tuple[str, dict]:
        """CVE-2021-42278/42287: a user adds a computer, clears its SPNs, renames it to a DC's name, asks a
        TGT as that name, renames it back, then gets a service ticket to the DC by S4U2self."""
        d, b, rng = self.d, self.b, self.rng
        u, ws = self.victim()
        dc = rng.choice(d.dcs)
        name = "DESKTOP-" + "".join(rng.choices(string.ascii_uppercase + string.digits, k=7))
        m = Machine(name, f"{name}.{d.dns}", d.rid_sid(31000 + rng.randrange(900)), "", "workstation", dc)
        us, lid = self.session(us, dc, u, ws)
        b.computer_created(us := b.later(us, 100, 900), dc, m, u, lid, quota=True)
        b.computer_changed(us := b.later(us, 50, 400), dc, m, u, lid, ServicePrincipalNames="%%1793")
        b.renamed(us := b.later(us, 50, 400), dc, m.account, dc.name, m.sid, u, lid)
        b.tgt(us := b.later(us, 50, 300), dc, dc.name, m.sid, ws.ip, options="0x40810010")
        b.renamed(us := b.later(us, 50, 300), dc, dc.name, m.account, m.sid, u, lid)
        b.tgs(b.later(us, 10, 200), dc, dc.name.lower(), dc.account, dc.sid, ws.ip, options="0x40800018")
        return "create-rename-tgt", {"actor": u.sam, "actor_sid": u.sid, **self._src(ws), "dc": dc.fqdn,
                                     "computer": m.account, "computer_sid": m.sid, "impersonated": dc.name}

    def shadow_credentials(self, us: int, room: int) -> tuple[str, dict]:
        """A user with write access adds a key to an admin's msDS-KeyCredentialLink, then logs on as the
        admin with it (PKINIT, pre-auth type 16)."""
        d, b, rng = self.d, self.b, self.rng
        u, ws = self.victim()
        target, dc = rng.choice(d.admins), rng.choice(d.dcs)
        us, lid = self.session(us, dc, u, ws)
        b.ds_change(us := b.later(us, 200, 3000), dc, u, lid, target.dn, "user", "msDS-KeyCredentialLink",
                    "2.5.5.7", key_credential(rng, target.dn))
        us += rng.randint(20, 300) * US
        thumb = f"{rng.getrandbits(160):040X}"
        b.tgt(us, dc, target.sam, target.sid, ws.ip, preauth="16", options="0x40800010",
              cert=(f"CN={target.sam}", f"{rng.getrandbits(64):016x}", thumb))
        return "key-added-then-pkinit", {"actor": u.sam, "actor_sid": u.sid, **self._src(ws), "dc": dc.fqdn,
                                         "target": target.sam, "target_sid": target.sid, "target_dn": target.dn}

    # -- Kerberos -------------------------------------------------------------------------------------------
    def asrep(self, us: int, room: int) -> tuple[str, dict]:
        src, dc = self.rogue(), self.rng.choice(self.d.dcs)
        for a in self.d.no_preauth:
            self.b.tgt(us, dc, a.sam, a.sid, src.ip, enc="0x17", preauth="0", options="0x40800010", realm=self.d.dns)
            us += self.rng.randint(20, 900) * 1000
        return "no-preauth-accounts", {"source_ip": src.ip, "dc": dc.fqdn,
                                       "accounts": [a.sam for a in self.d.no_preauth]}

    def golden(self, us: int, room: int) -> tuple[str, dict]:
        """A forged TGT for a name the domain does not have: service tickets with no TGT before them."""
        _, ws = self.victim()
        name = self.rng.choice(("gold-svc", "krbadm", "backup-admin", "sqlsa")) + str(self.rng.randint(2, 99))
        for _ in range(self.count(3, 6, 3)):
            dc = self.rng.choice(self.d.dcs)
            self.b.tgs(us, dc, name, dc.account, dc.sid, ws.ip, realm=self.d.dns)
            us += self.rng.randint(5, 60) * US
        return "nonexistent-account", {"account": name, **self._src(ws)}

    def overpass(self, us: int, room: int) -> tuple[str, dict]:
        """Rubeus asktgt /rc4: an AES admin's TGT asked with the NT hash (RC4), then used."""
        actor, _, ws, dc = self.stolen_admin()
        self.b.tgt(us, dc, actor.sam, actor.sid, ws.ip, enc="0x17", options="0x40800010", realm=self.d.dns)
        for target in (dc, self.d.servers["FS01"]):
            us = self.b.later(us, 300, 8000)
            self.b.tgs(us, dc, actor.sam, target.account, target.sid, ws.ip)
        return "rc4-tgt", {"account": actor.sam, "account_sid": actor.sid, **self._src(ws), "dc": dc.fqdn}

    def pass_the_hash(self, us: int, room: int) -> tuple[str, dict]:
        """An admin's NT hash replayed from a user's workstation: NTLM network logon, session key length 0."""
        actor, _, ws, dc = self.stolen_admin()
        us = self.b.ntlm(us, actor.sam, ws.name, dc)
        self.b.logon(self.b.later(us, 1, 20), dc, actor.sam, actor.sid, ws.ip, 3, "NTLM", workstation=ws.name,
                     key_length="0")
        return "ntlm-keylength-0", {"account": actor.sam, "account_sid": actor.sid, **self._src(ws), "dc": dc.fqdn}

    # -- credential access, execution -------------------------------------------------------------------------
    def dpapi(self, us: int, room: int) -> tuple[str, dict]:
        actor, _, ws, dc = self.stolen_admin()
        us, lid = self.session(us, dc, actor, ws)
        key = f"G$BCKUPKEY_{obj_guid(str(us)).lower()}"
        self.b.secret_query(us := self.b.later(us, 100, 2000), dc, actor, lid, "G$BCKUPKEY_PREFERRED")
        self.b.secret_query(self.b.later(us, 1, 50), dc, actor, lid, key)
        return "lsarpc-backupkey", {**self._admin_entities(actor, ws, dc), "secret": key}

    def remote_service(self, us: int, room: int) -> tuple[str, dict]:
        actor, _, ws, dc = self.stolen_admin()
        us, lid = self.session(us, dc, actor, ws)
        name = "".join(self.rng.choices(string.ascii_letters, k=8))
        path = rf"%systemroot%\{name}.exe"
        self.b.service(self.b.later(us, 300, 3000), dc, name, path, "user mode service", "demand start",
                       "LocalSystem", actor, lid)
        return "smb-svcctl", {**self._admin_entities(actor, ws, dc), "service_name": name, "image_path": path}

    # -- directory backdoors ------------------------------------------------------------------------------------
    def _sd_change(self, us: int, dn: str, cls: str, old: str, ace: str, write_dac_key: str | None = None,
                   actor: Account | None = None) -> tuple[dict, Account]:
        a, u, ws, dc = self.stolen_admin()
        actor = actor or a
        us, lid = self.session(us, dc, actor, ws)
        us = self.b.later(us, 500, 9000)
        if write_dac_key:
            self.b.write_dac(us, dc, actor, lid, write_dac_key)
            us = self.b.later(us, 1, 300)
        self.b.ds_change(us, dc, actor, lid, dn, cls, "nTSecurityDescriptor", "2.5.5.15", old + ace, old)
        return {**self._admin_entities(actor, ws, dc), "object_dn": dn, "trustee": u.sam, "trustee_sid": u.sid}, u

    def dcsync_rights(self, us: int, room: int) -> tuple[str, dict]:
        """Replication rights granted on the domain root to an ordinary user (PowerView Add-DomainObjectAcl)."""
        u, _ = self.victim()
        aces = f"(OA;;CR;{GET_CHANGES};;{u.sid})(OA;;CR;{GET_CHANGES_ALL};;{u.sid})"
        ent, _ = self._sd_change(us, self.b.root_dn, "domainDNS", DEFAULT_SD, aces, self.b.root_dn)
        return "domain-root-ace", {**ent, "trustee": u.sam, "trustee_sid": u.sid}

    def adminsdholder(self, us: int, room: int) -> tuple[str, dict]:
        u, _ = self.victim()
        dn = f"CN=AdminSDHolder,CN=System,{self.b.root_dn}"
        ent, _ = self._sd_change(us, dn, "container", HOLDER_SD, f"(A;;CCDCLCSWRPWPDTLOCRSDRCWDWO;;;{u.sid})")
        return "full-control-ace", {**ent, "trustee": u.sam, "trustee_sid": u.sid}

    def acl_group(self, us: int, room: int) -> tuple[str, dict]:
        """Write-members granted on Domain Admins' own object to an ordinary user."""
        u, _ = self.victim()
        dn = f"CN=Domain Admins,CN=Users,{self.b.root_dn}"
        ent, _ = self._sd_change(us, dn, "group", GROUP_SD, f"(OA;;WP;{MEMBER_ATTR};;{u.sid})")
        return "write-members-ace", {**ent, "trustee": u.sam, "trustee_sid": u.sid}

    def rbcd(self, us: int, room: int) -> tuple[str, dict]:
        """A user with write access on a server lets its own workstation act on its behalf (RBCD)."""
        d, b = self.d, self.b
        u, ws = self.victim()
        target, dc = d.servers["FS02"], self.rng.choice(d.dcs)
        us, lid = self.session(us, dc, u, ws)
        sd = f"O:BAD:(A;;CCDCLCSWRPWPDTLOCRSDRCWDWO;;;{ws.sid})"
        b.ds_change(b.later(us, 200, 3000), dc, u, lid, d.dn(target.name, "OU=Servers,OU=Corp"), "computer",
                    "msDS-AllowedToActOnBehalfOfOtherIdentity", "2.5.5.15", sd)
        return "user-sets-rbcd", {"actor": u.sam, "actor_sid": u.sid, **self._src(ws), "dc": dc.fqdn,
                                  "target": target.account, "allowed": ws.account}

    def spn_on_user(self, us: int, room: int) -> tuple[str, dict]:
        """Targeted Kerberoasting: an SPN added to an admin, then an RC4 ticket asked for it."""
        d, b, rng = self.d, self.b, self.rng
        u, ws = self.victim()
        target, dc = rng.choice(d.admins), rng.choice(d.dcs)
        spn = f"http/{''.join(rng.choices(string.ascii_lowercase, k=6))}.{d.dns}"
        us, lid = self.session(us, dc, u, ws)
        b.ds_change(us := b.later(us, 200, 3000), dc, u, lid, target.dn, "user", "servicePrincipalName",
                    "2.5.5.12", spn)
        b.tgs(b.later(us, 2000, 30000), dc, u.sam, target.sam, target.sid, ws.ip, "0x17")
        return "spn-then-roast", {"actor": u.sam, "actor_sid": u.sid, **self._src(ws), "dc": dc.fqdn,
                                  "target": target.sam, "target_sid": target.sid, "spn": spn}

    def primary_group(self, us: int, room: int) -> tuple[str, dict]:
        actor, u, ws, dc = self.stolen_admin()
        us, lid = self.session(us, dc, actor, ws)
        b = self.b
        b.user_changed(us := b.later(us, 300, 5000), dc, u, actor, lid, PrimaryGroupId="512")
        b.ds_change(b.later(us, 0, 5), dc, actor, lid, u.dn, "user", "primaryGroupID", "2.5.5.9", "512", "513")
        return "domain-admins-512", {**self._admin_entities(actor, ws, dc), "target": u.sam, "target_sid": u.sid,
                                     "primary_group": "512"}

    def gpo_backdoor(self, us: int, room: int) -> tuple[str, dict]:
        """A scheduled-task extension added to a GPO by a user who is not one of its editors."""
        d, b = self.d, self.b
        u, ws = self.victim()
        guid, name, _ = d.gpos[0]
        dc = d.dcs[0]
        dn = GPC % (guid, b.root_dn)
        us, lid = self.session(us, dc, u, ws)
        us = b.ds_change(b.later(us, 500, 5000), dc, u, lid, dn, "groupPolicyContainer", "gPCMachineExtensionNames",
                         "2.5.5.12", CSE_SECURITY + CSE_SCHEDULED_TASKS, CSE_SECURITY)
        b.ds_change(b.later(us, 10, 300), dc, u, lid, dn, "groupPolicyContainer", "versionNumber", "2.5.5.9",
                    "131077", "131076")
        return "scheduled-task-cse", {"actor": u.sam, "actor_sid": u.sid, **self._src(ws), "dc": dc.fqdn,
                                      "gpo": guid, "gpo_name": name}

    def preauth_off(self, us: int, room: int) -> tuple[str, dict]:
        """A helpdesk account turns pre-authentication off for a user, then the user's AS-REP is roasted."""
        d, b = self.d, self.b
        actor, (u, ws) = self.rng.choice(d.helpdesk), self.victim()
        target = self.rng.choice([a for a in d.users if a is not u])
        dc = self.rng.choice(d.dcs)
        us, lid = self.session(us, dc, actor, ws)
        b.user_changed(us := b.later(us, 300, 5000), dc, target, actor, lid, OldUacValue="0x210",
                       NewUacValue="0x10210", UserAccountControl=lines(["%%2096"]))
        b.ds_change(b.later(us, 0, 5), dc, actor, lid, target.dn, "user", "userAccountControl", "2.5.5.9",
                    "4260352", "66048")
        b.tgt(us + self.rng.randint(5, 30) * MIN, dc, target.sam, target.sid, ws.ip, enc="0x17", preauth="0",
              options="0x40800010", realm=d.dns)
        return "uac-then-asrep", {"actor": actor.sam, "actor_sid": actor.sid, **self._src(ws), "dc": dc.fqdn,
                                  "target": target.sam, "target_sid": target.sid}

    def sid_history(self, us: int, room: int) -> tuple[str, dict]:
        actor, u, ws, dc = self.stolen_admin()
        us, lid = self.session(us, dc, actor, ws)
        da = self.d.groups["Domain Admins"]
        self.b.sid_history_added(us := self.b.later(us, 300, 5000), dc, u, f"{self.d.dns}\\Domain Admins", da.sid,
                                 actor, lid)
        self.b.user_changed(self.b.later(us, 0, 3), dc, u, actor, lid, SidHistory=da.sid)
        return "same-domain-da-sid", {**self._admin_entities(actor, ws, dc), "target": u.sam, "target_sid": u.sid,
                                      "sid": da.sid}

    def dcshadow(self, us: int, room: int) -> tuple[str, dict]:
        """mimikatz lsadump::dcshadow: a workstation registered as a DC for seconds, then cleaned up."""
        d, b = self.d, self.b
        actor, _, ws, dc = self.stolen_admin()
        us, lid = self.session(us, dc, actor, ws)
        base = [f"HOST/{ws.fqdn}", f"RestrictedKrbHost/{ws.fqdn}", f"HOST/{ws.name}", f"RestrictedKrbHost/{ws.name}"]
        rogue = [*base, f"GC/{ws.fqdn}/{d.dns}", f"{DRS_SPN}/{obj_guid(ws.sid).lower()}/{d.dns}"]
        server_dn = f"CN={ws.name},CN=Servers,CN=Default-First-Site-Name,CN=Sites,CN=Configuration,{b.root_dn}"
        us = b.later(us, 200, 2000)
        b.ds_created(us, dc, actor, lid, server_dn, "server")
        b.computer_changed(us := b.later(us, 2, 20), dc, ws, actor, lid, ServicePrincipalNames=lines(rogue))
        b.replicate(b.later(us, 2, 30), dc, actor, lid, [INSTALL_REPLICA, MANAGE_TOPOLOGY])
        us += self.rng.randint(2, 20) * US
        b.ds_deleted(us, dc, actor, lid, server_dn, "server")
        b.computer_changed(b.later(us, 2, 30), dc, ws, actor, lid, ServicePrincipalNames=lines(base))
        return "rogue-dc-registration", {**self._admin_entities(actor, ws, dc), "computer": ws.account}

    # -- accounts, policy, logs, trusts, CA ------------------------------------------------------------------
    def dsrm(self, us: int, room: int) -> tuple[str, dict]:
        actor, _, ws, dc = self.stolen_admin()
        us, lid = self.session(us, dc, actor, ws)
        self.b.dsrm_reset(self.b.later(us, 2000, 30000), dc, actor, lid)
        return "ntdsutil", self._admin_entities(actor, ws, dc)

    def log_clear(self, us: int, room: int) -> tuple[str, dict]:
        actor, _, ws, dc = self.stolen_admin()
        us, lid = self.session(us, dc, actor, ws)
        self.b.log_cleared(self.b.later(us, 2000, 60000), dc, actor, lid)
        return "security-and-system", {**self._admin_entities(actor, ws, dc), "channels": ["Security", "System"]}

    def audit_off(self, us: int, room: int) -> tuple[str, dict]:
        actor, _, ws, dc = self.stolen_admin()
        us, lid = self.session(us, dc, actor, ws)
        us = self.b.later(us, 2000, 30000)
        for sub, guid in (("%%14080", "0CCE923B-69AE-11D9-BED3-505054503030"),
                          ("%%14081", "0CCE923C-69AE-11D9-BED3-505054503030")):
            self.b.audit_policy(us, dc, actor, lid, "%%8279", sub, guid, "%%8448, %%8450")
            us = self.b.later(us, 1, 20)
        return "ds-access-success-failure-removed", {**self._admin_entities(actor, ws, dc),
                                                     "subcategories": ["Directory Service Access",
                                                                       "Directory Service Changes"]}

    def trust(self, us: int, room: int) -> tuple[str, dict]:
        actor, _, ws, dc = self.stolen_admin()
        us, lid = self.session(us, dc, actor, ws)
        sid = "S-1-5-21-" + "-".join(str(self.rng.randrange(10**9, 4 * 10**9)) for _ in range(3))
        self.b.trust_created(self.b.later(us, 5000, 60000), dc, actor, lid, "partner-lab.local", sid)
        return "forest-bidirectional", {**self._admin_entities(actor, ws, dc), "trusted_domain": "partner-lab.local",
                                        "trusted_sid": sid}

    def esc1(self, us: int, room: int) -> tuple[str, dict]:
        """ESC1: a user enrols on a template that lets the enrollee supply the subject, naming the
        Administrator, then logs on as the Administrator with the certificate (PKINIT)."""
        d, b, rng = self.d, self.b, self.rng
        u, ws = self.victim()
        ca, adm = d.ca, d.administrator
        assert ca is not None
        upn = f"{adm.sam.lower()}@{d.dns}"
        us = b.cert_request(us, ca, rng.randint(1000, 99999), f"{d.netbios}\\{u.sam}", "CorpVPNUser",
                            f"CN={u.display}", f"upn={upn}", f"Other Name:\r\n     Principal Name={upn}", ws.fqdn)
        dc = ws.dc or d.dcs[0]
        b.tgt(us + rng.randint(10, 600) * US, dc, adm.sam, adm.sid, ws.ip, preauth="16", options="0x40800010",
              cert=(f"CN={d.netbios}-CA01-CA, DC=corp, DC=contoso, DC=com", f"{rng.getrandbits(152):038x}",
                    f"{rng.getrandbits(160):040X}"))
        return "enrollee-supplied-upn", {"requester": u.sam, "requester_sid": u.sid, **self._src(ws), "ca": ca.fqdn,
                                         "san": upn, "template": "CorpVPNUser"}

    def ca_audit(self, us: int, room: int) -> tuple[str, dict]:
        actor, _, ws, _ = self.stolen_admin()
        ca = self.d.ca
        assert ca is not None
        dc = ca.dc or self.d.dcs[0]
        self.b.tgt(us, dc, actor.sam, actor.sid, ws.ip)
        self.b.tgs(us := self.b.later(us, 5, 300), dc, actor.sam, ca.account, ca.sid, ws.ip)
        lid = self.b.logon(us := self.b.later(us, 2, 80), ca, actor.sam, actor.sid, ws.ip, elevated=True)
        self.b.ca_audit_filter(self.b.later(us, 2000, 20000), ca, actor, lid, 111)
        return "audit-filter-111", {"actor": actor.sam, "actor_sid": actor.sid, **self._src(ws), "ca": ca.fqdn,
                                    "audit_filter": 111}
