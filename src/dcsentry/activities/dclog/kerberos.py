"""4768 (TGT requested) and 4769 (service ticket requested) -> `TicketRequest`.

reference/dc-log-alerts.md A2/A3. 4769 is about a third of a DC's events: the reader copies the
fields it needs and nothing else (the version-2 fields only when the event has them). The same 4768
also becomes an `AuthActivity` in builder.py (brute force, spray): that view is untouched.
"""

from __future__ import annotations

from ...model import WindowsEvent
from .. import Activity, DcActivity, evidence_of
from ..context import DomainContext
from ..readers import Stateless
from .fields import ip, number, short, sid

# Version-2 fields (2025+ updates) worth keeping: the keys and etypes behind the issued ticket.
V2_FIELDS = ("AccountSupportedEncryptionTypes", "AccountAvailableKeys", "ServiceSupportedEncryptionTypes",
             "ServiceAvailableKeys", "DCSupportedEncryptionTypes", "DCAvailableKeys",
             "ClientAdvertizedEncryptionTypes", "SessionKeyEncryptionType", "PreAuthEncryptionType")

RC4 = 0x17
WEAK_ETYPES = frozenset({0x1, 0x3, 0x17, 0x18})  # DES-CBC-CRC, DES-CBC-MD5, RC4-HMAC, RC4-HMAC-EXP
AES_ETYPES = frozenset({0x11, 0x12, 0x13, 0x14})

ETYPE_NAMES = {0x1: "DES-CBC-CRC", 0x3: "DES-CBC-MD5", 0x11: "AES128", 0x12: "AES256", 0x13: "AES128-SHA256",
               0x14: "AES256-SHA384", 0x17: "RC4-HMAC", 0x18: "RC4-HMAC-EXP"}


def lists_aes(value: str | None) -> bool:
    """A v2 key or etype list (`AES-SHA1, RC4`, `AES256-CTS-HMAC-SHA1-96 RC4-HMAC-NT`, `0x1F (DES, RC4,
    AES128-SHA96, AES256-SHA96)`) that names an AES key or etype."""
    return "AES" in (value or "").upper()


def etype_name(etype: int | None) -> str:
    if etype is None:
        return "-"
    return ETYPE_NAMES.get(etype, hex(etype))


class TicketRequest(DcActivity, kw_only=True):
    """A Kerberos ticket the KDC was asked for: a TGT (4768) or a service ticket (4769)."""

    tgt: bool
    account: str  # bare name as logged (4769's `user@REALM` without the realm)
    realm: str = ""  # the @REALM part of 4769's TargetUserName, else TargetDomainName (case kept)
    account_sid: str = ""  # 4768 TargetSid (4769 has none)
    service: str = ""  # ServiceName: krbtgt, the account owning the SPN (`Svc-SQL-DB01`, `HOST$`)
    service_sid: str = ""
    status: int | None = None
    etype: int | None = None  # TicketEncryptionType
    preauth: str = ""  # PreAuthType as logged (decimal text or `-`)
    options: str = ""  # TicketOptions
    source_ip: str = ""  # normalised IpAddress (`localhost`, v4 without ::ffff:)
    transmitted: str = ""  # 4769 TransmittedServices (S4U2Proxy chain) or ``
    cert_issuer: str = ""  # 4768 CertIssuerName (certificate pre-auth)
    logon_guid: str = ""
    dc_domain: str = ""  # DNS domain of the DC that logged it (from its computer name), lower case
    v2: dict[str, str] = {}  # version-2 fields present in the event (keys as logged)

    kind = "ticket"

    @property
    def subject(self) -> str:
        return self.service

    @property
    def source(self) -> str:
        return self.source_ip

    @property
    def ok(self) -> bool:
        return self.status == 0

    @property
    def machine(self) -> bool:
        return self.account.endswith("$")

    @property
    def account_key(self) -> str:
        return self.account.lower()

    @property
    def preauth_etype(self) -> int | None:
        """v2 PreAuthEncryptionType (the key the client proved it holds), else None."""
        return number(self.v2.get("PreAuthEncryptionType"))

    @property
    def canonical_realm(self) -> bool | None:
        """Whether the realm is written as the KDC writes it (upper case); None when there is no
        realm or it is not this DC's own domain (a trusted realm may spell itself as it likes)."""
        r = self.realm
        if not r or "." not in r or not self.dc_domain or r.lower() != self.dc_domain:
            return None
        return r == r.upper()

    @property
    def service_key(self) -> str:
        return self.service.lower()


def _text(value: str | None) -> str:
    if not value or value == "-":
        return ""
    v = value.strip()
    return "" if v == "-" else v


_NUMBERS: dict[str, int | None] = {}  # Status / etype texts seen (a handful of values): parsed once


def _number(value: str | None) -> int | None:
    if value is None:
        return None
    n = _NUMBERS.get(value, -1)
    if n == -1:
        n = number(value)
        if len(_NUMBERS) < 4096:
            _NUMBERS[value] = n
    return n


class TicketReader(Stateless):
    """Copies what the Kerberos detectors need; per-DC names are worked out once per computer."""

    ids = frozenset({4768, 4769})

    def __init__(self, ctx: DomainContext) -> None:
        super().__init__(ctx)
        self._dcs: dict[str, tuple[str, str]] = {}  # computer -> (short name, DNS domain lower case)

    def _dc(self, computer: str) -> tuple[str, str]:
        known = self._dcs.get(computer)
        if known is None:
            known = (short(computer), computer.partition(".")[2].lower())
            if len(self._dcs) < 10_000:
                self._dcs[computer] = known
            self.ctx.inventory.add_dc(computer)  # only DCs log 4768/4769
        return known

    def feed(self, ev: WindowsEvent) -> list[Activity]:
        if ev.channel != "Security":
            return []
        d = ev.data
        tgt = ev.event_id == 4768
        name = d.get("TargetUserName", "")
        realm = ""
        if not tgt:  # `user@REALM`; an enterprise name keeps its own `@` (`u@upn.suffix@REALM`)
            at = name.rfind("@")
            if at >= 0:
                name, realm = name[:at], name[at + 1:]
        if not realm:
            realm = _text(d.get("TargetDomainName"))
        v2: dict[str, str] = {}
        if "ClientAdvertizedEncryptionTypes" in d or "AccountAvailableKeys" in d:
            for k in V2_FIELDS:
                val = (d.get(k) or "").strip()
                if val and val != "-":
                    v2[k] = val
        dc, domain = self._dc(ev.computer)
        status = _number(d.get("Status"))
        act = TicketRequest(
            time=ev.time, host=dc, evidence=[evidence_of(ev)], tgt=tgt, account=name.strip(), realm=realm,
            account_sid=sid(d.get("TargetSid")) if tgt else "", service=_text(d.get("ServiceName")),
            service_sid=sid(d.get("ServiceSid")), status=status, etype=_number(d.get("TicketEncryptionType")),
            preauth=_text(d.get("PreAuthType")), options=_text(d.get("TicketOptions")),
            source_ip=ip(d.get("IpAddress")), transmitted=_text(d.get("TransmittedServices")),
            cert_issuer=_text(d.get("CertIssuerName")), logon_guid=_text(d.get("LogonGuid")),
            dc_domain=domain, v2=v2)
        if act.machine and act.source_ip and status == 0:  # a computer asks tickets for itself: its address
            self.ctx.hosts.link(act.account, act.source_ip)
        if tgt and status == 0 and act.account_sid:  # the KDC issued a TGT: the account exists
            self.ctx.inventory.learn(act.account, act.account_sid)
        return [act]
