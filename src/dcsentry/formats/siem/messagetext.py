"""EventData read back out of the rendered (English) Windows message text.

Splunk, QRadar and Snare forward the message Windows renders (`Logon Account:\tdadmin\r\n...`),
not the EventData. The text is a fixed template per event id: section headings (`Subject:`,
`Member:`, `Group:`) and labels (`Security ID:`), each label followed by its value. Forwarders
flatten it differently (Snare turns CR, LF and TAB into spaces; QRadar leaves one space), so a
value ends at the next label of the event's template, and else at a line end, a TAB or a run of
three spaces (text values) or at the first whitespace (numbers, hex codes, addresses).

Only labels of the event's own template are recognised, so text elsewhere in the message (the
explanation paragraphs 4624 carries) is not mistaken for a field. Values rendered differently
from the XML (`%%1833` shows as `Impersonation`) are left out, not guessed back.
"""

from __future__ import annotations

import re
from functools import cache

T = "t"  # text: may hold spaces (names, domains, paths, DNs)
K = "k"  # token: no spaces (hex codes, numbers, addresses)

_Entry = tuple[str, str | None, str]  # label, EventData field (None: a label that only delimits), kind
_Section = tuple[str | None, tuple[_Entry, ...]]

_SUBJECT: _Section = ("Subject", (("Security ID", "SubjectUserSid", T), ("Account Name", "SubjectUserName", T),
                                  ("Account Domain", "SubjectDomainName", T), ("Logon ID", "SubjectLogonId", K)))
_GROUP: tuple[_Section, ...] = (
    _SUBJECT,
    ("Member", (("Security ID", "MemberSid", T), ("Account Name", "MemberName", T))),
    ("Group", (("Security ID", "TargetSid", T), ("Group Name", "TargetUserName", T),
               ("Group Domain", "TargetDomainName", T))),
    ("Additional Information", (("Privileges", "PrivilegeList", T),)),
)
_NETWORK_LOGON: tuple[_Section, ...] = (
    ("Process Information", (("Process ID", "ProcessId", K), ("Process Name", "ProcessName", T),
                             ("Caller Process ID", "ProcessId", K), ("Caller Process Name", "ProcessName", T))),
    ("Network Information", (("Workstation Name", "WorkstationName", T), ("Source Network Address", "IpAddress", K),
                             ("Source Port", "IpPort", K))),
    ("Detailed Authentication Information", (
        ("Logon Process", "LogonProcessName", T), ("Authentication Package", "AuthenticationPackageName", T),
        ("Transited Services", "TransmittedServices", T), ("Package Name (NTLM only)", "LmPackageName", T),
        ("Key Length", "KeyLength", K))),
)
_CERT: _Section = ("Certificate Information", (
    ("Certificate Issuer Name", "CertIssuerName", T), ("Certificate Serial Number", "CertSerialNumber", T),
    ("Certificate Thumbprint", "CertThumbprint", T)))
_KERBEROS_NET: _Section = ("Network Information", (("Client Address", "IpAddress", K), ("Client Port", "IpPort", K)))

TEMPLATES: dict[int, tuple[_Section, ...]] = {
    4776: ((None, (("Authentication Package", "PackageName", K), ("Logon Account", "TargetUserName", T),
                   ("Source Workstation", "Workstation", T), ("Error Code", "Status", K))),),
    8004: ((None, (("Secure Channel name", "SChannelName", T), ("User name", "UserName", T),
                   ("Domain name", "DomainName", T), ("Workstation name", "WorkstationName", T),
                   ("Secure Channel type", "SChannelType", K))),),
    7045: ((None, (("Service Name", "ServiceName", T), ("Service File Name", "ImagePath", T),
                   ("Service Type", "ServiceType", T), ("Service Start Type", "StartType", T),
                   ("Service Account", "AccountName", T))),),
    **dict.fromkeys((4728, 4729, 4732, 4733, 4756, 4757), _GROUP),
    4624: (
        _SUBJECT,
        ("Logon Information", (("Logon Type", "LogonType", K), ("Restricted Admin Mode", "RestrictedAdminMode", T),
                               ("Virtual Account", None, T), ("Elevated Token", None, T))),
        (None, (("Impersonation Level", None, T),)),
        ("New Logon", (("Security ID", "TargetUserSid", T), ("Account Name", "TargetUserName", T),
                       ("Account Domain", "TargetDomainName", T), ("Logon ID", "TargetLogonId", K),
                       ("Linked Logon ID", "TargetLinkedLogonId", K),
                       ("Network Account Name", "TargetOutboundUserName", T),
                       ("Network Account Domain", "TargetOutboundDomainName", T), ("Logon GUID", "LogonGuid", T))),
        *_NETWORK_LOGON,
    ),
    4625: (
        _SUBJECT,
        (None, (("Logon Type", "LogonType", K),)),
        ("Account For Which Logon Failed", (("Security ID", "TargetUserSid", T), ("Account Name", "TargetUserName", T),
                                            ("Account Domain", "TargetDomainName", T))),
        ("Failure Information", (("Failure Reason", None, T), ("Status", "Status", K), ("Sub Status", "SubStatus", K))),
        *_NETWORK_LOGON,
    ),
    4768: (
        ("Account Information", (("Account Name", "TargetUserName", T), ("Supplied Realm Name", "TargetDomainName", T),
                                 ("User ID", "TargetSid", T), ("MSDS-SupportedEncryptionTypes", None, T),
                                 ("Available Keys", None, T))),
        ("Service Information", (("Service Name", "ServiceName", T), ("Service ID", "ServiceSid", T))),
        _KERBEROS_NET,
        ("Additional Information", (("Ticket Options", "TicketOptions", K), ("Result Code", "Status", K),
                                    ("Ticket Encryption Type", "TicketEncryptionType", K),
                                    ("Pre-Authentication Type", "PreAuthType", K))),
        _CERT,
    ),
    4769: (
        ("Account Information", (("Account Name", "TargetUserName", T), ("Account Domain", "TargetDomainName", T),
                                 ("Logon GUID", "LogonGuid", T))),
        ("Service Information", (("Service Name", "ServiceName", T), ("Service ID", "ServiceSid", T))),
        _KERBEROS_NET,
        ("Additional Information", (("Ticket Options", "TicketOptions", K),
                                    ("Ticket Encryption Type", "TicketEncryptionType", K),
                                    ("Failure Code", "Status", K), ("Result Code", "Status", K),
                                    ("Transited Services", "TransmittedServices", T),
                                    ("Pre-Authentication Type", None, K))),
    ),
    4771: (
        ("Account Information", (("Security ID", "TargetSid", T), ("Account Name", "TargetUserName", T))),
        ("Service Information", (("Service Name", "ServiceName", T),)),
        _KERBEROS_NET,
        ("Additional Information", (("Ticket Options", "TicketOptions", K), ("Failure Code", "Status", K),
                                    ("Pre-Authentication Type", "PreAuthType", K))),
        _CERT,
    ),
    4697: (
        _SUBJECT,
        ("Service Information", (("Service Name", "ServiceName", T), ("Service File Name", "ServiceFileName", T),
                                 ("Service Type", "ServiceType", K), ("Service Start Type", "ServiceStartType", K),
                                 ("Service Account", "ServiceAccount", T))),
    ),
    4720: (
        _SUBJECT,
        ("New Account", (("Security ID", "TargetSid", T), ("Account Name", "TargetUserName", T),
                         ("Account Domain", "TargetDomainName", T))),
        ("Attributes", tuple((label, field, T) for label, field in (
            ("SAM Account Name", "SamAccountName"), ("Display Name", None),
            ("User Principal Name", "UserPrincipalName"),
            ("Home Directory", None), ("Home Drive", None), ("Script Path", None), ("Profile Path", None),
            ("User Workstations", None), ("Password Last Set", None), ("Account Expires", None),
            ("Primary Group ID", "PrimaryGroupId"), ("Allowed To Delegate To", "AllowedToDelegateTo"),
            ("Old UAC Value", "OldUacValue"), ("New UAC Value", "NewUacValue"), ("User Account Control", None),
            ("User Parameters", None), ("SID History", "SidHistory"), ("Logon Hours", None)))),
        ("Additional Information", (("Privileges", "PrivilegeList", T),)),
    ),
}
TEMPLATES[8005] = TEMPLATES[8006] = TEMPLATES[8004]

_TEXT_END = re.compile(r"[\r\n\t]|   ")


@cache
def _compiled(event_id: int) -> tuple[re.Pattern[str], frozenset[str], dict[tuple[str | None, str], tuple[str, str]]]:
    sections = TEMPLATES[event_id]
    headers = frozenset(s for s, _ in sections if s)
    table: dict[tuple[str | None, str], tuple[str, str]] = {}
    loose: dict[str, set[tuple[str, str]]] = {}
    for section, entries in sections:
        for label, field, kind in entries:
            if field is not None:
                table.setdefault((section, label), (field, kind))
                loose.setdefault(label, set()).add((field, kind))
    for label, targets in loose.items():  # a label that means one thing whatever section it is in
        if len(targets) == 1:
            table[(None, label)] = next(iter(targets))
    labels = {label for _, entries in sections for label, _, _ in entries} | headers
    # A label starts the text or follows whitespace or a dot. The test sits after each label's first
    # character (a look-behind over two) so every alternative starts with a literal: the regex engine
    # then skips to the positions holding a label's first letter (3x faster than testing each one).
    alternation = "|".join(re.escape(x[0]) + r"(?<![^\s.].)" + re.escape(x[1:])
                           for x in sorted(labels, key=len, reverse=True))
    return re.compile(rf"({alternation}):"), headers, table


def has_template(event_id: int) -> bool:
    return event_id in TEMPLATES


def _clip(raw: str, kind: str) -> str:
    if kind == K:
        parts = raw.split(None, 1)
        return parts[0] if parts else ""
    raw = raw.lstrip(" \t")
    m = _TEXT_END.search(raw)
    return (raw[:m.start()] if m else raw).strip()


def fields_from_text(event_id: int, text: str) -> dict[str, str]:
    """EventData fields of a rendered message; {} for an event without a known template."""
    if event_id not in TEMPLATES or not text:
        return {}
    pattern, headers, table = _compiled(event_id)
    out: dict[str, str] = {}
    section: str | None = None
    parts = pattern.split(text)  # [text before the first label, label, its value text, label, ...]
    for i in range(1, len(parts), 2):
        label = parts[i]
        if label in headers:
            section = label
            continue
        hit = table.get((section, label)) or table.get((None, label))
        if hit is None or hit[0] in out:
            continue
        out[hit[0]] = _clip(parts[i + 1], hit[1])
    return out


@cache
def label_fields(event_id: int) -> dict[str, str]:
    """Field by label, lower-cased, for layouts that name values by the message's labels (CEF custom
    string labels): `logon type`, and `member security id` for labels that repeat across sections."""
    out: dict[str, str] = {}
    if event_id not in TEMPLATES:
        return out
    _, _, table = _compiled(event_id)
    for (section, label), (field, _) in table.items():
        out[(f"{section} {label}" if section else label).lower()] = field
    return out
