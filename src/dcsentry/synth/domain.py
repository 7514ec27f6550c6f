"""The simulated Windows domain: accounts, machines, groups and the working day they follow.

One seed names one domain, so a generated stream can be reproduced byte for byte. Sensitive groups
carry their real well-known SIDs/RIDs (reference/events.md) because detectors key on SIDs, and the
domain's everyday actors (helpdesk, the usual admins, service accounts) are the baseline that the
injected attacks must stand out from.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
US = 1_000_000  # time is integer microseconds since the epoch throughout the generator
HOUR_US = 3600 * US

FIRST = ("James Mary Robert Patricia John Jennifer Michael Linda David Elizabeth William Barbara Richard "
         "Susan Joseph Jessica Thomas Sarah Charles Karen Chris Lisa Daniel Nancy Matthew Betty Anthony "
         "Sandra Mark Ashley Donald Emily Steven Donna Paul Michelle Andrew Carol Joshua Amanda Kevin "
         "Melissa Brian Deborah George Stephanie Timothy Rebecca Ronald Laura Jason Sharon Edward Cynthia "
         "Jeffrey Kathleen Ryan Amy Jacob Angela Gary Shirley Nicholas Anna Eric Brenda Jonathan Pamela "
         "Stephen Emma Larry Nicole Justin Helen Scott Samantha Brandon Katherine Benjamin Christine Samuel "
         "Debra Gregory Rachel Alexander Carolyn Frank Janet Patrick Maria Raymond Olivia Jack Heather").split()
LAST = ("Smith Johnson Williams Brown Jones Garcia Miller Davis Rodriguez Martinez Hernandez Lopez Gonzalez "
        "Wilson Anderson Thomas Taylor Moore Jackson Martin Lee Perez Thompson White Harris Sanchez Clark "
        "Ramirez Lewis Robinson Walker Young Allen King Wright Scott Torres Nguyen Hill Flores Green Adams "
        "Nelson Baker Hall Rivera Campbell Mitchell Carter Roberts Gomez Phillips Evans Turner Diaz Parker "
        "Cruz Edwards Collins Reyes Stewart Morris Morales Murphy Cook Rogers Gutierrez Ortiz Morgan Cooper "
        "Peterson Bailey Reed Kelly Howard Ramos Kim Cox Ward Richardson Watson Brooks Chavez Wood James "
        "Bennett Gray Mendoza Ruiz Hughes Price Alvarez Castillo Sanders Patel Myers Long Ross Foster").split()

# Hour-of-day activity for people (weekday); weekends run at WEEKEND of it. Machines never sleep.
WEEKDAY = (0.03, 0.02, 0.02, 0.02, 0.03, 0.05, 0.15, 0.50, 0.95, 1.00, 0.95, 0.90,
           0.70, 0.85, 0.95, 0.90, 0.80, 0.55, 0.30, 0.15, 0.10, 0.07, 0.05, 0.04)
WEEKEND = 0.12

# (name, RID or full SID, scope, sensitive). Scope decides the member-added/removed event pair.
SENSITIVE_GROUPS = (
    ("Domain Admins", 512, "global"), ("Domain Controllers", 516, "global"),
    ("Schema Admins", 518, "universal"), ("Enterprise Admins", 519, "universal"),
    ("Group Policy Creator Owners", 520, "global"), ("Key Admins", 526, "global"),
    ("Enterprise Key Admins", 527, "universal"),
    ("Administrators", "S-1-5-32-544", "local"), ("Account Operators", "S-1-5-32-548", "local"),
    ("Server Operators", "S-1-5-32-549", "local"), ("Print Operators", "S-1-5-32-550", "local"),
    ("Backup Operators", "S-1-5-32-551", "local"), ("Replicator", "S-1-5-32-552", "local"),
    ("DnsAdmins", 1101, "local"),  # no fixed RID: created with the DNS role
)
ORDINARY_GROUPS = (
    ("Sales", "global"), ("Finance", "global"), ("HR", "global"), ("Engineering", "global"),
    ("Marketing", "global"), ("VPN Users", "global"), ("Wifi-Corp", "global"), ("Printers-Floor2", "global"),
    ("FS01-Projects-RW", "local"), ("FS01-Finance-RO", "local"), ("SQL01-Reports-Read", "local"),
    ("Remote Desktop Users", "S-1-5-32-555"), ("All Staff", "universal"), ("Shared-Mailbox-Support", "universal"),
)
AGENTS = (  # everyday installs on DCs: agents and updates with ordinary paths
    ("Sysmon64", r"C:\Windows\Sysmon64.exe", "user mode service", "auto start", "LocalSystem"),
    ("SysmonDrv", "SysmonDrv.sys", "kernel mode driver", "boot start", ""),
    ("SplunkForwarder", r'"C:\Program Files\SplunkUniversalForwarder\bin\splunkd.exe" service', "user mode service",
     "auto start", "LocalSystem"),
    ("edgeupdate", r'"C:\Program Files (x86)\Microsoft\EdgeUpdate\MicrosoftEdgeUpdate.exe" /svc', "user mode service",
     "auto start", "LocalSystem"),
    ("HealthService", r'"C:\Program Files\Microsoft Monitoring Agent\Agent\HealthService.exe"', "user mode service",
     "auto start", "LocalSystem"),
    ("uhssvc", r'"C:\Program Files\Microsoft Update Health Tools\uhssvc.exe"', "user mode service", "auto start",
     "LocalSystem"),
    ("vmci", r"System32\drivers\vmci.sys", "kernel mode driver", "boot start", ""),
    ("NetSetupSvc", r"%SystemRoot%\System32\svchost.exe -k netsvcs -p", "user mode service", "demand start",
     "LocalSystem"),
)
ADD_ID = {"global": 4728, "local": 4732, "universal": 4756}
REMOVE_ID = {"global": 4729, "local": 4733, "universal": 4757}


@dataclass(slots=True)
class Machine:
    name: str  # NetBIOS name, upper case
    fqdn: str
    sid: str
    ip: str
    role: str  # workstation | server | dc
    dc: Machine | None = None  # the DC its Netlogon secure channel (and usually its Kerberos) goes to

    @property
    def account(self) -> str:
        return self.name + "$"


@dataclass(slots=True)
class Account:
    sam: str
    sid: str
    display: str
    dn: str
    kind: str  # user | admin | helpdesk | service | honeytoken | builtin
    workstation: Machine | None = None  # where the person sits / the host a service account runs on


@dataclass(frozen=True, slots=True)
class Group:
    name: str
    sid: str
    scope: str  # global | local | universal
    domain_name: str  # the TargetDomainName a DC writes: the NetBIOS domain, or Builtin
    sensitive: bool

    @property
    def add_id(self) -> int:
        return ADD_ID[self.scope]

    @property
    def remove_id(self) -> int:
        return REMOVE_ID[self.scope]


@dataclass
class Domain:
    netbios: str
    dns: str
    sid: str
    dcs: list[Machine]
    servers: dict[str, Machine]
    workstations: list[Machine]
    users: list[Account]  # ordinary staff, the population everyday traffic draws from
    admins: list[Account]  # the usual Tier-0 admins (they change sensitive groups legitimately)
    helpdesk: list[Account]  # change ordinary groups, create users; never sensitive groups
    services: dict[str, Account]
    honeytokens: list[Account]
    administrator: Account
    groups: dict[str, Group]
    next_rid: int = 0
    by_sam: dict[str, Account] = field(default_factory=dict)
    # The DC-log population (the same every day, so detectors' learning settles):
    ca: Machine | None = None  # the enterprise CA (AD CS events come from its Security log)
    aadc: Machine | None = None  # the Entra Connect server; `msol` is its connector account
    msol: Account | None = None
    legacy_host: Machine | None = None  # an old Kerberos client: the no-pre-auth accounts' one host
    no_preauth: list[Account] = field(default_factory=list)
    rc4_clients: list[tuple[Machine, Account]] = field(default_factory=list)  # (client, RC4-only service)
    join_account: Account | None = None
    gpo_admins: list[Account] = field(default_factory=list)
    gpos: list[tuple[str, str, Account]] = field(default_factory=list)  # (GUID, name, its usual editor)
    delegations: list[tuple[Machine, Machine]] = field(default_factory=list)  # RBCD (resource, allowed front end)

    @property
    def realm(self) -> str:
        return self.dns.upper()

    def rid_sid(self, rid: int) -> str:
        return f"{self.sid}-{rid}"

    def new_sid(self) -> str:
        self.next_rid += 1
        return self.rid_sid(self.next_rid)

    def dn(self, cn: str, ou: str = "OU=Users,OU=Corp") -> str:
        return f"CN={cn},{ou}," + ",".join(f"DC={p}" for p in self.dns.split("."))

    def summary(self) -> dict:
        """What a detector needs configured to judge this run (honeytokens, DCs, usual admins)."""
        return {"netbios": self.netbios, "dns": self.dns, "sid": self.sid,
                "dcs": [m.fqdn for m in self.dcs], "servers": sorted(self.servers),
                "honeytokens": [a.sam for a in self.honeytokens], "admins": [a.sam for a in self.admins],
                "helpdesk": [a.sam for a in self.helpdesk], "services": sorted(self.services),
                "users": len(self.users), "workstations": len(self.workstations),
                "ca": self.ca.fqdn if self.ca else None,
                "entra_connect": {"account": self.msol.sam, "host": self.aadc.fqdn, "ip": self.aadc.ip}
                if self.msol and self.aadc else None,
                "join_account": self.join_account.sam if self.join_account else None,
                "no_preauth": {a.sam: self.legacy_host.ip for a in self.no_preauth} if self.legacy_host else {},
                "gpo_admins": [a.sam for a in self.gpo_admins]}


def rhythm(us: int) -> float:
    """People's activity at this moment, 0..1: office hours on weekdays, little at night and weekends."""
    t = EPOCH + timedelta(microseconds=us)
    r = WEEKDAY[t.hour]
    return r * WEEKEND if t.weekday() >= 5 else r


def _rand_sid(rng: random.Random) -> str:
    return "S-1-5-21-" + "-".join(str(rng.randrange(1_000_000_000, 4_294_967_295)) for _ in range(3))


def build_domain(seed: int, users: int = 200, dcs: int = 2) -> Domain:
    """A domain of `users` staff, one workstation each, a handful of servers and `dcs` DCs."""
    rng = random.Random(f"dcsentry-synth:{seed}:domain")
    users, dcs = max(10, users), max(1, dcs)
    dns, netbios = "corp.contoso.com", "CONTOSO"
    d = Domain(netbios, dns, _rand_sid(rng), [], {}, [], [], [], [], {}, [], None, {})  # type: ignore[arg-type]
    d.next_rid = 1103  # 1101/1102: DnsAdmins/DnsUpdateProxy, created with the DNS role
    d.administrator = Account("Administrator", d.rid_sid(500), "Administrator", d.dn("Administrator", "CN=Users"),
                              "builtin")

    def machine(name: str, role: str, ip: str) -> Machine:
        return Machine(name, f"{name}.{dns}", d.new_sid(), ip, role)

    for i in range(dcs):
        m = machine(f"DC{i + 1:02d}", "dc", f"10.0.0.{10 + i}")
        m.dc = m
        d.dcs.append(m)
    names = ["FS01", "FS02", "SQL01", "WEB01", "EXCH01", "APP01", "BKP01", "RDS01", "SCCM01"]
    names += [f"APP{i:02d}" for i in range(2, 2 + users // 300)]
    for i, name in enumerate(names):
        m = machine(name, "server", f"10.0.10.{20 + i}")
        m.dc = d.dcs[i % dcs]
        d.servers[name] = m
    for rid_name, scope in ORDINARY_GROUPS:
        sid = rid_name if scope.startswith("S-1-5-32") else d.new_sid()
        real_scope = "local" if scope.startswith("S-1-5-32") else scope
        d.groups[rid_name] = Group(rid_name, sid, real_scope, "Builtin" if sid.startswith("S-1-5-32") else netbios,
                                   False)
    for name, rid, scope in SENSITIVE_GROUPS:
        sid = rid if isinstance(rid, str) else d.rid_sid(rid)
        d.groups[name] = Group(name, sid, scope, "Builtin" if sid.startswith("S-1-5-32") else netbios, True)

    seen: set[str] = set()

    def person() -> Account:
        first, last = rng.choice(FIRST), rng.choice(LAST)
        base = (first[0] + last).lower()[:16]
        sam, n = base, 1
        while sam in seen:
            n += 1
            sam = f"{base}{n}"
        seen.add(sam)
        display = f"{first} {last}"
        return Account(sam, d.new_sid(), display, d.dn(display), "user")

    for i in range(users):
        a = person()
        ws = machine(("LT" if rng.random() < 0.3 else "WS") + f"{i + 1:04d}", "workstation",
                     f"10.{1 + i // 60000}.{(i // 250) % 240 + 1}.{i % 250 + 2}")
        ws.dc = d.dcs[rng.randrange(dcs)]
        a.workstation = ws
        d.workstations.append(ws)
        d.users.append(a)
    for kind, prefix, n, team in (("admin", "adm-", 3, d.admins), ("helpdesk", "hd-", 2 + users // 150, d.helpdesk)):
        for owner in rng.sample(d.users, n):
            display = f"{owner.display} ({kind})"
            team.append(Account(prefix + owner.sam, d.new_sid(), display, d.dn(display, "OU=Admins,OU=Corp"), kind,
                                owner.workstation))
    service_hosts = {"svc_sql": "SQL01", "svc_web": "WEB01", "svc_backup": "BKP01", "svc_sccm": "SCCM01",
                     "svc_report": "APP01", "svc_scan": "APP01", "svc_exch": "EXCH01"}
    for sam, host in service_hosts.items():
        d.services[sam] = Account(sam, d.new_sid(), sam, d.dn(sam, "OU=Service Accounts,OU=Corp"), "service",
                                  d.servers[host])
    d.honeytokens.append(Account("sql-admin", d.new_sid(), "SQL Admin",
                                 d.dn("SQL Admin", "OU=Service Accounts,OU=Corp"),
                                 "honeytoken"))
    _dc_log_population(d, rng)
    for a in [d.administrator, *d.users, *d.admins, *d.helpdesk, *d.services.values(), *d.honeytokens]:
        d.by_sam[a.sam.lower()] = a
    return d


GPO_NAMES = ("Workstation Baseline", "Server Baseline", "Browser Settings", "Office Settings", "Drive Mappings",
             "Printers Floor 2", "BitLocker", "Windows Update Rings", "Firewall Rules", "Screen Lock", "VPN Client",
             "Defender Exclusions")


def _dc_log_population(d: Domain, rng: random.Random) -> None:
    """The accounts and hosts behind the everyday DC-log traffic (reference/dc-log-alerts.md look-alikes)."""
    def server(name: str, i: int) -> Machine:
        m = Machine(name, f"{name}.{d.dns}", d.new_sid(), f"10.0.20.{10 + i}", "server", d.dcs[i % len(d.dcs)])
        d.servers[name] = m
        return m

    d.ca, d.aadc, d.legacy_host = server("CA01", 0), server("AADC01", 1), server("UNIX01", 2)

    def service(sam: str, host: Machine) -> Account:
        a = Account(sam, d.new_sid(), sam, d.dn(sam, "OU=Service Accounts,OU=Corp"), "service", host)
        d.services[sam] = a
        return a

    d.msol = service(f"MSOL_{rng.getrandbits(48):012x}", d.aadc)
    d.join_account = service("svc_join", d.servers["SCCM01"])
    d.no_preauth = [service("svc_unixauth", d.legacy_host), service("svc_nasbackup", d.legacy_host)]
    erp, scan = service("svc_erp", d.servers["APP01"]), service("svc_scan2fs", d.servers["FS01"])
    clients = rng.sample(d.workstations, min(len(d.workstations), 11))
    d.rc4_clients = [(m, erp) for m in clients[:8]] + [(m, scan) for m in clients[8:]]
    d.gpo_admins = d.admins[1:3] or d.admins[:1]
    d.gpos = [(str(obj_uuid(rng)).upper(), name, d.gpo_admins[i % len(d.gpo_admins)])
              for i, name in enumerate(GPO_NAMES)]
    d.delegations = [(d.servers["SQL01"], d.servers["WEB01"]), (d.servers["FS01"], d.servers["APP01"])]


def obj_uuid(rng: random.Random) -> str:
    h = f"{rng.getrandbits(128):032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
