"""bench_wire.py's input: a DC's everyday event mix with brute-force bursts at known places, rendered
as the syslog lines a forwarder sends (evtx JSON, CEF or Snare behind an RFC 5424 / 3164 header).

Why hand-made field sets and not the synth package's domain: the mix (which ids, in which share)
must be exact and the background must raise no alert of its own (failures spread over thousands of
accounts and sources), so the only alerts are the planted attacks and their latency is clean. The
field names and values follow the catalogue and the synth renderer (`to_evtx_json`), so every
message takes the same decode path as real traffic.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from dcsentry.catalogue import CATALOGUE, NETLOGON, NTLM_CHANNEL, SCM, SECURITY_AUDITING
from dcsentry.formats.siem.messagetext import TEMPLATES
from dcsentry.model import WindowsEvent
from dcsentry.synth.render import to_evtx_json

# share of the everyday mix (percent); 8004 comes paired after 80 % of the 4776s (8 % in all)
MIX = {4769: 30, 4624: 20, 4634: 10, 4768: 10, 4776: 10, 4672: 5, 4662: 3, 4625: 1, 4771: 1,
       5136: 0.4, 4738: 0.3, 4742: 0.4, 5145: 0.4, 7045: 0.1, 4728: 0.2, 4729: 0.2}
DETECTOR_MIX = {4776: 1}  # every event one the detectors read: 4776 + its 8004
PAIRED_8004 = 0.8
ATTACK_TRIES = 30  # failed 4776 (+ 8004) per brute force: twice the default threshold of 15
BASE = datetime(2024, 3, 5, 9, 0, tzinfo=timezone.utc)
DOMAIN, FQDN = "CONTOSO", "contoso.local"
SID = "S-1-5-21-3457937927-2839227994-823803824"
SUCCESS, FAILURE = "0x8020000000000000", "0x8010000000000000"


@dataclass
class Attack:
    """One planted brute force: its account, source, and the global positions of its messages."""

    account: str
    workstation: str
    first: int = 0
    last: int = 0


@dataclass
class Plan:
    events: list[WindowsEvent] = field(default_factory=list)
    peer: list[int] = field(default_factory=list)  # the TCP peer (= the DC) each event goes out on
    attacks: list[Attack] = field(default_factory=list)


class Mix:
    """Seeded field sets per event id; users, workstations and servers from fixed pools."""

    def __init__(self, seed: int, dcs: int) -> None:
        self.rng = random.Random(seed)
        self.dcs = [f"DC{i:02d}.{FQDN}" for i in range(dcs)]
        self.users = [f"user{i:04d}" for i in range(5000)]
        self.servers = [f"SRV{i:02d}" for i in range(40)]
        self.ws = [f"WS{i:04d}" for i in range(3000)]

    def _user(self) -> tuple[str, str]:
        i = self.rng.randrange(len(self.users))
        return self.users[i], f"{SID}-{1100 + i}"

    def _ip(self) -> str:
        return f"10.1.{self.rng.randrange(12)}.{self.rng.randrange(1, 250)}"

    def _port(self) -> str:
        return str(self.rng.randrange(49152, 65535))

    def _logon_id(self) -> str:
        return hex(self.rng.randrange(0x100000, 0xFFFFFFF))

    def data(self, eid: int) -> dict[str, str]:
        r, (u, usid) = self.rng, self._user()
        srv = r.choice(self.servers)
        subj = {"SubjectUserSid": "S-1-5-18", "SubjectUserName": "DC00$", "SubjectDomainName": DOMAIN,
                "SubjectLogonId": "0x3e7"}
        admin = {"SubjectUserSid": f"{SID}-1104", "SubjectUserName": "helpdesk1", "SubjectDomainName": DOMAIN,
                 "SubjectLogonId": self._logon_id()}
        if eid == 4769:
            return {"TargetUserName": f"{u}@{FQDN.upper()}", "TargetDomainName": FQDN.upper(), "ServiceName": f"{srv}$",
                    "ServiceSid": f"{SID}-{3000 + self.servers.index(srv)}", "TicketOptions": "0x40810000",
                    "TicketEncryptionType": "0x12", "IpAddress": f"::ffff:{self._ip()}", "IpPort": self._port(),
                    "Status": "0x0", "LogonGuid": "{%08x-1d2c-4b5a-9e8f-%012x}" % (r.getrandbits(32), r.getrandbits(48)),
                    "TransmittedServices": "-"}
        if eid in (4624, 4634):
            d = {"TargetUserSid": usid, "TargetUserName": u, "TargetDomainName": DOMAIN, "TargetLogonId": self._logon_id(),
                 "LogonType": "3"}
            if eid == 4634:
                return d
            return {"SubjectUserSid": "S-1-0-0", "SubjectUserName": "-", "SubjectDomainName": "-",
                    "SubjectLogonId": "0x0", **d, "LogonProcessName": "Kerberos", "AuthenticationPackageName": "Kerberos",
                    "WorkstationName": "-", "LogonGuid": "{00000000-0000-0000-0000-000000000000}",
                    "TransmittedServices": "-", "LmPackageName": "-", "KeyLength": "0", "ProcessId": "0x0",
                    "ProcessName": "-", "IpAddress": self._ip(), "IpPort": self._port(), "ImpersonationLevel": "%%1833",
                    "RestrictedAdminMode": "-", "TargetOutboundUserName": "-", "TargetOutboundDomainName": "-",
                    "VirtualAccount": "%%1843", "TargetLinkedLogonId": "0x0", "ElevatedToken": "%%1843"}
        if eid == 4768:
            return {"TargetUserName": u, "TargetDomainName": DOMAIN, "TargetSid": usid, "ServiceName": "krbtgt",
                    "ServiceSid": f"{SID}-502", "TicketOptions": "0x40810010", "Status": "0x0",
                    "TicketEncryptionType": "0x12", "PreAuthType": "2", "IpAddress": f"::ffff:{self._ip()}",
                    "IpPort": self._port(), "CertIssuerName": "", "CertSerialNumber": "", "CertThumbprint": ""}
        if eid == 4776:
            return {"PackageName": "MICROSOFT_AUTHENTICATION_PACKAGE_V1_0", "TargetUserName": u,
                    "Workstation": r.choice(self.ws), "Status": "0x0"}
        if eid == 4672:
            return {"SubjectUserSid": f"{SID}-{1100 + r.randrange(20)}", "SubjectUserName": f"svc{r.randrange(20):02d}",
                    "SubjectDomainName": DOMAIN, "SubjectLogonId": self._logon_id(),
                    "PrivilegeList": "SeSecurityPrivilege\r\n\t\t\tSeBackupPrivilege\r\n\t\t\tSeRestorePrivilege"}
        if eid == 4662:
            return {**subj, "ObjectServer": "DS", "ObjectType": "%{bf967aba-0de6-11d0-a285-00aa003049e2}",
                    "ObjectName": "%%{%08x-0000-4000-8000-%012x}" % (r.getrandbits(32), r.getrandbits(48)),
                    "OperationType": "Object Access", "HandleId": "0x0", "AccessList": "%%7685", "AccessMask": "0x10",
                    "Properties": "%%7685\r\n{bf967aba-0de6-11d0-a285-00aa003049e2}", "AdditionalInfo": "-",
                    "AdditionalInfo2": ""}
        if eid == 4625:  # a mistyped password: a different account and source each time
            return {**subj, "TargetUserSid": "S-1-0-0", "TargetUserName": u, "TargetDomainName": DOMAIN,
                    "Status": "0xc000006d", "FailureReason": "%%2313", "SubStatus": "0xc000006a", "LogonType": "3",
                    "LogonProcessName": "NtLmSsp ", "AuthenticationPackageName": "NTLM",
                    "WorkstationName": r.choice(self.ws), "TransmittedServices": "-", "LmPackageName": "-",
                    "KeyLength": "0", "ProcessId": "0x0", "ProcessName": "-", "IpAddress": self._ip(),
                    "IpPort": self._port()}
        if eid == 4771:
            return {"TargetUserName": u, "TargetSid": usid, "ServiceName": f"krbtgt/{DOMAIN}",
                    "TicketOptions": "0x40810010", "Status": "0x18", "PreAuthType": "2",
                    "IpAddress": f"::ffff:{self._ip()}", "IpPort": self._port(), "CertIssuerName": "",
                    "CertSerialNumber": "", "CertThumbprint": ""}
        if eid == 5136:
            return {"OpCorrelationID": "{%08x-0000-4000-8000-000000000001}" % r.getrandbits(32), "AppCorrelationID": "-",
                    **admin, "DSName": FQDN, "DSType": "%%14676", "ObjectDN": f"CN={u},OU=Staff,DC=contoso,DC=local",
                    "ObjectGUID": "{6f0c2a3e-1111-4222-8333-%012x}" % r.getrandbits(48), "ObjectClass": "user",
                    "AttributeLDAPDisplayName": "telephoneNumber", "AttributeSyntaxOID": "2.5.5.12",
                    "AttributeValue": f"+1 555 {r.randrange(1000, 9999)}", "OperationType": "%%14674"}
        if eid in (4738, 4742):
            d = {f: "-" for f in CATALOGUE[eid].fields}
            name = f"{r.choice(self.ws)}$" if eid == 4742 else u
            d.update({"TargetUserName": name, "TargetDomainName": DOMAIN, "TargetSid": usid, **admin,
                      "SamAccountName": name, "PasswordLastSet": "3/5/2024 9:00:00 AM"})
            return d
        if eid == 5145:
            return {**admin, "SubjectUserName": u, "SubjectUserSid": usid, "ObjectType": "File", "IpAddress": self._ip(),
                    "IpPort": self._port(), "ShareName": "\\\\*\\SYSVOL", "ShareLocalPath": "\\??\\C:\\Windows\\SYSVOL\\sysvol",
                    "RelativeTargetName": f"{FQDN}\\Policies\\{{31B2F340-016D-11D2-945F-00C04FB984F9}}\\GPT.INI",
                    "AccessMask": "0x120089", "AccessList": "%%1538 %%1541 %%4416 %%4419 %%4423", "AccessReason": "-"}
        if eid == 7045:
            return {"ServiceName": "Contoso Backup Agent", "ImagePath": "\"C:\\Program Files\\Contoso\\agent.exe\" -svc",
                    "ServiceType": "user mode service", "StartType": "auto start", "AccountName": "LocalSystem"}
        # 4728 / 4729: helpdesk edits an ordinary group
        return {"MemberName": f"CN={u},OU=Staff,DC=contoso,DC=local", "MemberSid": usid, "TargetUserName": "Sales Team",
                "TargetDomainName": DOMAIN, "TargetSid": f"{SID}-2201", **admin, "PrivilegeList": "-"}

    def event(self, eid: int, computer: str, t: datetime, data: dict[str, str], failure: bool = False) -> WindowsEvent:
        provider = NETLOGON if eid == 8004 else SCM if eid == 7045 else SECURITY_AUDITING
        channel = NTLM_CHANNEL if eid == 8004 else "System" if eid == 7045 else "Security"
        kw = "0x8000000000000000" if eid == 8004 else "0x8080000000000000" if eid == 7045 else (
            FAILURE if failure or eid in (4625, 4771) else SUCCESS)
        return WindowsEvent(eid, provider, channel, computer, t, None, data, keywords=kw, level=4 if eid in (8004, 7045) else 0)

    def ntlm_8004(self, computer: str, t: datetime, user: str, ws: str, server: str) -> WindowsEvent:
        return self.event(8004, computer, t, {"SChannelName": server, "UserName": user, "DomainName": DOMAIN,
                                              "WorkstationName": ws, "SChannelType": "2"})


def plan(n: int, peers: int, attacks: int, mix: dict[int, float], seed: int = 1, rate: float = 5000.0) -> Plan:
    """About `n` events (event times `rate` per second from BASE) over `peers` DCs, with `attacks`
    brute forces spread evenly (all on peer 0's DC); record ids numbered per DC and channel."""
    m = Mix(seed, peers)
    ids, weights = list(mix), list(mix.values())
    p = Plan()
    per_i = 1 + PAIRED_8004 * mix.get(4776, 0) / sum(weights)  # messages per background step (+ 8004s)
    background = max(1, int((n - attacks * 2 * ATTACK_TRIES) / per_i))  # steps i of the loop below
    at = {int((k + 0.5) * background / max(attacks, 1)): k for k in range(attacks)}
    records: dict[tuple[str, str], int] = {}

    def put(ev: WindowsEvent, peer: int) -> None:
        key = (ev.computer, ev.channel)
        ev.record_id = records[key] = records.get(key, 100_000 + peer * 7919) + 1
        p.events.append(ev)
        p.peer.append(peer)

    i = 0
    while len(p.events) < n:
        t = BASE + timedelta(seconds=i / rate)
        if i in at:
            k = at[i]
            a = Attack(f"bfuser{k:02d}", f"BFWS{k:02d}", first=len(p.events))
            for j in range(ATTACK_TRIES):
                tj = t + timedelta(milliseconds=50 * j)
                put(m.event(4776, m.dcs[0], tj, {"PackageName": "MICROSOFT_AUTHENTICATION_PACKAGE_V1_0",
                                                 "TargetUserName": a.account, "Workstation": a.workstation,
                                                 "Status": "0xc000006a"}, failure=True), 0)
                put(m.ntlm_8004(m.dcs[0], tj, a.account, a.workstation, "SRV00"), 0)
            a.last = len(p.events) - 1
            p.attacks.append(a)
        peer = m.rng.randrange(peers)
        eid = m.rng.choices(ids, weights)[0]
        d = m.data(eid)
        put(m.event(eid, m.dcs[peer], t, d), peer)
        if eid == 4776 and m.rng.random() < PAIRED_8004:
            put(m.ntlm_8004(m.dcs[peer], t, d["TargetUserName"], d["Workstation"], m.rng.choice(m.servers)), peer)
        i += 1
    return p


# -- the layouts on the wire ----------------------------------------------------------------------

def _stamp(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def render_json(ev: WindowsEvent) -> bytes:
    """evtx JSON behind an RFC 5424 header (what the NXLog/rsyslog forwarding of docs/siem-input.md sends)."""
    host = ev.computer.split(".")[0]
    return (f"<14>1 {_stamp(ev.time)} {host} Microsoft-Windows-EventLog - - - ").encode() + to_evtx_json(ev)


def _cef_escape(v: str) -> str:
    return v.replace("\\", "\\\\").replace("=", "\\=").replace("\r", "\\r").replace("\n", "\\n")


def render_cef(ev: WindowsEvent) -> bytes:
    """ArcSight's Windows SmartConnector: raw EventData as ad.<Name> (tests/test_siem_layouts.py's form)."""
    spec = CATALOGUE.get(ev.event_id)
    title = spec.title if spec else f"Event {ev.event_id}"
    ext = "".join(f" ad.{k}={_cef_escape(v)}" for k, v in ev.data.items())
    host = ev.computer.split(".")[0]
    return (f"<13>1 {_stamp(ev.time)} {host} ArcSight - - - CEF:0|Microsoft|Microsoft Windows||{ev.provider}:"
            f"{ev.event_id}|{title}.|Low| externalId={ev.event_id} cat={ev.channel} "
            f"rt={round(ev.time.timestamp() * 1000)} dhost={ev.computer}{ext}").encode()


def message_text(ev: WindowsEvent) -> str:
    """The rendered Windows message from messagetext's template of the id (labels in sections);
    ids without a template get a one-line title (Snare then carries no EventData for them)."""
    sections = TEMPLATES.get(ev.event_id)
    if not sections:
        return f"Event {ev.event_id}."
    out = ["Event."]
    for section, entries in sections:
        if section:
            out.append(f"\r\n{section}:")
        for label, name, _ in entries:
            if name is not None:
                out.append(f"\t{label}:\t\t{ev.data.get(name) or '-'}")
    return "\r\n".join(out)


def render_snare(ev: WindowsEvent) -> bytes:
    """Snare for Windows (MSWinEventLog, TAB-separated, flattened message) behind an RFC 3164 header."""
    kind = ("Failure Audit" if ev.keywords == FAILURE else "Success Audit") if ev.channel == "Security" else "Information"
    text = re.sub(r"[\r\n\t]", " ", message_text(ev))
    fields = ["MSWinEventLog", "1", ev.channel, str(ev.record_id), ev.time.strftime("%a %b %d %H:%M:%S %Y"),
              str(ev.event_id), ev.provider, "N/A", "N/A", kind, ev.computer, "Category", "", text, str(ev.record_id)]
    return (f"<14>{ev.time.strftime('%b %e %H:%M:%S')} {ev.computer.split('.')[0]} " + "\t".join(fields)).encode()


RENDER = {"json": render_json, "cef": render_cef, "snare": render_snare}
