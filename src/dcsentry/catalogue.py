"""The events dcsentry reads: one table, from ../shared/reference/events.md.

Everything that needs a provider, a channel or a field list of these events asks here.
"""

from __future__ import annotations

from dataclasses import dataclass

SECURITY_AUDITING = "Microsoft-Windows-Security-Auditing"
NETLOGON = "Microsoft-Windows-Security-Netlogon"
SCM = "Service Control Manager"
NTLM_CHANNEL = "Microsoft-Windows-NTLM/Operational"

_GROUP_FIELDS = (
    "MemberName", "MemberSid", "TargetUserName", "TargetDomainName", "TargetSid",
    "SubjectUserSid", "SubjectUserName", "SubjectDomainName", "SubjectLogonId", "PrivilegeList",
)


@dataclass(frozen=True, slots=True)
class EventSpec:
    event_id: int
    provider: str
    channel: str
    title: str
    fields: tuple[str, ...]
    subcategory: str | None  # advanced audit subcategory that produces it (None: not audit-policy driven)
    core: bool  # one of the nine events the sensor is built on (else: context event)


_SPECS = (
    EventSpec(4776, SECURITY_AUDITING, "Security", "The computer attempted to validate the credentials for an account",
              ("PackageName", "TargetUserName", "Workstation", "Status"), "Credential Validation", True),
    EventSpec(8004, NETLOGON, NTLM_CHANNEL, "Domain Controller Blocked Audit: NTLM authentication to this domain controller",
              ("SChannelName", "UserName", "DomainName", "WorkstationName", "SChannelType"), None, True),
    EventSpec(4728, SECURITY_AUDITING, "Security", "A member was added to a security-enabled global group",
              _GROUP_FIELDS, "Security Group Management", True),
    EventSpec(4729, SECURITY_AUDITING, "Security", "A member was removed from a security-enabled global group",
              _GROUP_FIELDS, "Security Group Management", True),
    EventSpec(4732, SECURITY_AUDITING, "Security", "A member was added to a security-enabled local group",
              _GROUP_FIELDS, "Security Group Management", True),
    EventSpec(4733, SECURITY_AUDITING, "Security", "A member was removed from a security-enabled local group",
              _GROUP_FIELDS, "Security Group Management", True),
    EventSpec(4756, SECURITY_AUDITING, "Security", "A member was added to a security-enabled universal group",
              _GROUP_FIELDS, "Security Group Management", True),
    EventSpec(4757, SECURITY_AUDITING, "Security", "A member was removed from a security-enabled universal group",
              _GROUP_FIELDS, "Security Group Management", True),
    EventSpec(7045, SCM, "System", "A service was installed in the system",
              ("ServiceName", "ImagePath", "ServiceType", "StartType", "AccountName"), None, True),
    EventSpec(4624, SECURITY_AUDITING, "Security", "An account was successfully logged on",
              ("SubjectUserSid", "SubjectUserName", "SubjectDomainName", "SubjectLogonId", "TargetUserSid",
               "TargetUserName", "TargetDomainName", "TargetLogonId", "LogonType", "LogonProcessName",
               "AuthenticationPackageName", "WorkstationName", "LogonGuid", "TransmittedServices",
               "LmPackageName", "KeyLength", "ProcessId", "ProcessName", "IpAddress", "IpPort",
               "ImpersonationLevel", "RestrictedAdminMode", "TargetOutboundUserName",
               "TargetOutboundDomainName", "VirtualAccount", "TargetLinkedLogonId", "ElevatedToken"),
              "Logon", False),
    EventSpec(4625, SECURITY_AUDITING, "Security", "An account failed to log on",
              ("SubjectUserSid", "SubjectUserName", "SubjectDomainName", "SubjectLogonId", "TargetUserSid",
               "TargetUserName", "TargetDomainName", "Status", "FailureReason", "SubStatus", "LogonType",
               "LogonProcessName", "AuthenticationPackageName", "WorkstationName", "TransmittedServices",
               "LmPackageName", "KeyLength", "ProcessId", "ProcessName", "IpAddress", "IpPort"),
              "Logon", False),
    EventSpec(4768, SECURITY_AUDITING, "Security", "A Kerberos authentication ticket (TGT) was requested",
              ("TargetUserName", "TargetDomainName", "TargetSid", "ServiceName", "ServiceSid", "TicketOptions",
               "Status", "TicketEncryptionType", "PreAuthType", "IpAddress", "IpPort", "CertIssuerName",
               "CertSerialNumber", "CertThumbprint"),
              "Kerberos Authentication Service", False),
    EventSpec(4769, SECURITY_AUDITING, "Security", "A Kerberos service ticket was requested",
              ("TargetUserName", "TargetDomainName", "ServiceName", "ServiceSid", "TicketOptions",
               "TicketEncryptionType", "IpAddress", "IpPort", "Status", "LogonGuid", "TransmittedServices"),
              "Kerberos Service Ticket Operations", False),
    EventSpec(4771, SECURITY_AUDITING, "Security", "Kerberos pre-authentication failed",
              ("TargetUserName", "TargetSid", "ServiceName", "TicketOptions", "Status", "PreAuthType",
               "IpAddress", "IpPort", "CertIssuerName", "CertSerialNumber", "CertThumbprint"),
              "Kerberos Authentication Service", False),
    EventSpec(4697, SECURITY_AUDITING, "Security", "A service was installed in the system",
              ("SubjectUserSid", "SubjectUserName", "SubjectDomainName", "SubjectLogonId", "ServiceName",
               "ServiceFileName", "ServiceType", "ServiceStartType", "ServiceAccount"),
              "Security System Extension", False),
    EventSpec(4720, SECURITY_AUDITING, "Security", "A user account was created",
              ("TargetUserName", "TargetDomainName", "TargetSid", "SubjectUserSid", "SubjectUserName",
               "SubjectDomainName", "SubjectLogonId", "PrivilegeList", "SamAccountName", "DisplayName",
               "UserPrincipalName", "HomeDirectory", "HomePath", "ScriptPath", "ProfilePath",
               "UserWorkstations", "PasswordLastSet", "AccountExpires", "PrimaryGroupId",
               "AllowedToDelegateTo", "OldUacValue", "NewUacValue", "UserAccountControl", "UserParameters",
               "SidHistory", "LogonHours"),
              "User Account Management", False),
)

CATALOGUE: dict[int, EventSpec] = {s.event_id: s for s in _SPECS}
CORE_IDS: frozenset[int] = frozenset(s.event_id for s in _SPECS if s.core)
GROUP_ADD_IDS = frozenset({4728, 4732, 4756})
GROUP_REMOVE_IDS = frozenset({4729, 4733, 4757})
GROUP_SCOPE = {4728: "global", 4729: "global", 4732: "local", 4733: "local", 4756: "universal", 4757: "universal"}
# 8005/8006 share 8004's template ("Domain Controller Blocked Audit"); the sensor accepts all three.
NTLM_DC_AUDIT_IDS = frozenset({8004, 8005, 8006})

# Canonical spelling of channels, so `security` from a shipper and `Security` from EVTX agree.
_CHANNELS = {c.lower(): c for c in ("Security", "System", "Application", NTLM_CHANNEL,
                                    "Microsoft-Windows-Sysmon/Operational", "ForwardedEvents")}


def canonical_channel(name: str) -> str:
    return _CHANNELS.get(name.lower(), name) if name else name


def spec(event_id: int, channel: str | None = None) -> EventSpec | None:
    """The catalogue entry of an event, checking the channel where one is known.

    8004 is a common number: it only counts when it was written to the NTLM operational channel.
    """
    s = CATALOGUE.get(event_id)
    if s is None or channel is None or channel == s.channel:
        return s
    return None


def is_ntlm_dc_audit(event_id: int, channel: str) -> bool:
    return event_id in NTLM_DC_AUDIT_IDS and channel == NTLM_CHANNEL
