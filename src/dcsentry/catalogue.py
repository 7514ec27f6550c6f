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


_SUBJECT = ("SubjectUserSid", "SubjectUserName", "SubjectDomainName", "SubjectLogonId")
_TARGET = ("TargetUserName", "TargetDomainName", "TargetSid")
# 4720's list (4738 adds `Dummy` first; 4741/4742 append the computer's DNS name and SPNs)
_ACCOUNT_FIELDS = (*_TARGET, *_SUBJECT, "PrivilegeList", "SamAccountName", "DisplayName", "UserPrincipalName",
                   "HomeDirectory", "HomePath", "ScriptPath", "ProfilePath", "UserWorkstations", "PasswordLastSet",
                   "AccountExpires", "PrimaryGroupId", "AllowedToDelegateTo", "OldUacValue", "NewUacValue",
                   "UserAccountControl", "UserParameters", "SidHistory", "LogonHours")
_DS_OBJECT = ("OpCorrelationID", "AppCorrelationID", *_SUBJECT, "DSName", "DSType", "ObjectDN", "ObjectGUID",
              "ObjectClass")
_CA_SUBJECT = _SUBJECT
_TEMPLATE = ("TemplateInternalName", "TemplateVersion", "TemplateSchemaVersion", "TemplateOID", "TemplateDSObjectFQDN",
             "DCDNSName")
EVENTLOG = "Microsoft-Windows-Eventlog"
CERTIFICATION_SERVICES = "Certification Services"

@dataclass(frozen=True, slots=True)
class EventSpec:
    event_id: int
    provider: str
    channel: str
    title: str
    fields: tuple[str, ...]
    subcategory: str | None  # advanced audit subcategory that produces it (None: not audit-policy driven)
    core: bool  # one of the nine events the sensor is built on (else: context event)


# The events the DC-log detections read (reference/dc-log-alerts.md part A). Field lists in EventData
# order, as real recordings show them (RSA's positional layout depends on it); 1102/104 keep theirs
# under UserData/LogFileCleared. CA events come from each CA's own Security log.
_UAM, _CAM, _DSC = "User Account Management", "Computer Account Management", "Directory Service Changes"
_DC_LOG_SPECS = (
    EventSpec(4662, SECURITY_AUDITING, "Security", "An operation was performed on an object",
              (*_SUBJECT, "ObjectServer", "ObjectType", "ObjectName", "OperationType", "HandleId", "AccessList",
               "AccessMask", "Properties", "AdditionalInfo", "AdditionalInfo2"), "Directory Service Access", False),
    EventSpec(4738, SECURITY_AUDITING, "Security", "A user account was changed", ("Dummy", *_ACCOUNT_FIELDS),
              _UAM, False),
    EventSpec(4722, SECURITY_AUDITING, "Security", "A user account was enabled", (*_TARGET, *_SUBJECT), _UAM, False),
    EventSpec(4724, SECURITY_AUDITING, "Security", "An attempt was made to reset an account's password",
              (*_TARGET, *_SUBJECT), _UAM, False),
    EventSpec(4725, SECURITY_AUDITING, "Security", "A user account was disabled", (*_TARGET, *_SUBJECT), _UAM, False),
    EventSpec(4726, SECURITY_AUDITING, "Security", "A user account was deleted",
              (*_TARGET, *_SUBJECT, "PrivilegeList"), _UAM, False),
    EventSpec(4781, SECURITY_AUDITING, "Security", "The name of an account was changed",
              ("OldTargetUserName", "NewTargetUserName", "TargetDomainName", "TargetSid", *_SUBJECT, "PrivilegeList"),
              _UAM, False),
    EventSpec(4765, SECURITY_AUDITING, "Security", "SID History was added to an account",
              ("SourceUserName", "SourceSid", *_TARGET, *_SUBJECT, "PrivilegeList", "SidList"), _UAM, False),
    EventSpec(4766, SECURITY_AUDITING, "Security", "An attempt to add SID History to an account failed",
              ("SourceUserName", *_TARGET, "SubjectUserName", "SubjectDomainName", "SubjectLogonId", "PrivilegeList"),
              _UAM, False),
    EventSpec(4794, SECURITY_AUDITING, "Security", "An attempt was made to set the Directory Services Restore Mode "
              "administrator password", (*_SUBJECT, "Workstation", "Status"), _UAM, False),
    EventSpec(4741, SECURITY_AUDITING, "Security", "A computer account was created",
              (*_ACCOUNT_FIELDS, "DnsHostName", "ServicePrincipalNames"), _CAM, False),
    EventSpec(4742, SECURITY_AUDITING, "Security", "A computer account was changed",
              ("ComputerAccountChange", *_ACCOUNT_FIELDS, "DnsHostName", "ServicePrincipalNames"), _CAM, False),
    EventSpec(4743, SECURITY_AUDITING, "Security", "A computer account was deleted",
              (*_TARGET, *_SUBJECT, "PrivilegeList"), _CAM, False),
    EventSpec(5136, SECURITY_AUDITING, "Security", "A directory service object was modified",
              (*_DS_OBJECT, "AttributeLDAPDisplayName", "AttributeSyntaxOID", "AttributeValue", "OperationType"),
              _DSC, False),
    EventSpec(5137, SECURITY_AUDITING, "Security", "A directory service object was created", _DS_OBJECT, _DSC, False),
    EventSpec(5141, SECURITY_AUDITING, "Security", "A directory service object was deleted",
              (*_DS_OBJECT, "TreeDelete"), _DSC, False),
    EventSpec(4719, SECURITY_AUDITING, "Security", "System audit policy was changed",
              (*_SUBJECT, "CategoryId", "SubcategoryId", "SubcategoryGuid", "AuditPolicyChanges"),
              "Audit Policy Change", False),
    EventSpec(4706, SECURITY_AUDITING, "Security", "A new trust was created to a domain",
              ("DomainName", "DomainSid", *_SUBJECT, "TdoType", "TdoDirection", "TdoAttributes", "SidFilteringEnabled"),
              "Authentication Policy Change", False),
    EventSpec(4865, SECURITY_AUDITING, "Security", "A trusted forest information entry was added",
              ("ForestRoot", "ForestRootSid", "OperationId", "EntryType", "Flags", "TopLevelName", "DnsName",
               "NetbiosName", "DomainSid", *_SUBJECT), "Authentication Policy Change", False),
    EventSpec(1102, EVENTLOG, "Security", "The audit log was cleared", _SUBJECT, None, False),
    EventSpec(104, EVENTLOG, "System", "The log file was cleared",
              ("SubjectUserName", "SubjectDomainName", "Channel", "BackupPath"), None, False),
    EventSpec(5145, SECURITY_AUDITING, "Security", "A network share object was checked to see whether client can be "
              "granted desired access", (*_SUBJECT, "ObjectType", "IpAddress", "IpPort", "ShareName", "ShareLocalPath",
                                         "RelativeTargetName", "AccessMask", "AccessList", "AccessReason"),
              "Detailed File Share", False),
    EventSpec(4882, SECURITY_AUDITING, "Security", "The security permissions for Certificate Services changed",
              ("SecuritySettings", *_CA_SUBJECT), CERTIFICATION_SERVICES, False),
    EventSpec(4885, SECURITY_AUDITING, "Security", "The audit filter for Certificate Services changed",
              ("AuditFilter", *_CA_SUBJECT), CERTIFICATION_SERVICES, False),
    EventSpec(4886, SECURITY_AUDITING, "Security", "Certificate Services received a certificate request",
              ("RequestId", "Requester", "Attributes", "Subject", "SubjectAlternativeName", "CertificateTemplate",
               "RequestOSVersion", "RequestCSPProvider", "RequestClientInfo", "AuthenticationService",
               "AuthenticationLevel", "DCOMorRPC"), CERTIFICATION_SERVICES, False),
    EventSpec(4887, SECURITY_AUDITING, "Security", "Certificate Services approved a certificate request and issued a "
              "certificate", ("RequestId", "Requester", "Attributes", "Disposition", "SubjectKeyIdentifier", "Subject",
                              "SubjectAlternativeName", "CertificateTemplate", "SerialNumber", "AuthenticationService",
                              "AuthenticationLevel", "DCOMorRPC"), CERTIFICATION_SERVICES, False),
    EventSpec(4888, SECURITY_AUDITING, "Security", "Certificate Services denied a certificate request",
              ("RequestId", "Requester", "Attributes", "Disposition", "SubjectKeyIdentifier", "Subject",
               "AuthenticationService", "AuthenticationLevel", "DCOMorRPC"), CERTIFICATION_SERVICES, False),
    EventSpec(4890, SECURITY_AUDITING, "Security", "The certificate manager settings for Certificate Services changed",
              ("EnableRestrictedPermissions", "RestrictedPermissions", *_CA_SUBJECT), CERTIFICATION_SERVICES, False),
    EventSpec(4896, SECURITY_AUDITING, "Security", "One or more rows have been deleted from the certificate database",
              ("TableId", "Filter", "RowsDeleted", *_CA_SUBJECT), CERTIFICATION_SERVICES, False),
    EventSpec(4898, SECURITY_AUDITING, "Security", "Certificate Services loaded a template",
              (*_TEMPLATE, "TemplateContent", "SecurityDescriptor"), CERTIFICATION_SERVICES, False),
    EventSpec(4899, SECURITY_AUDITING, "Security", "A Certificate Services template was updated",
              (*_TEMPLATE, "NewTemplateContent", "OldTemplateContent"), CERTIFICATION_SERVICES, False),
    EventSpec(4900, SECURITY_AUDITING, "Security", "Certificate Services template security was updated",
              (*_TEMPLATE, "NewTemplateContent", "NewSecurityDescriptor", "OldTemplateContent",
               "OldSecurityDescriptor"),
              CERTIFICATION_SERVICES, False),
)


_SPECS = (
    EventSpec(4776, SECURITY_AUDITING, "Security", "The computer attempted to validate the credentials for an account",
              ("PackageName", "TargetUserName", "Workstation", "Status"), "Credential Validation", True),
    EventSpec(8004, NETLOGON, NTLM_CHANNEL,
              "Domain Controller Blocked Audit: NTLM authentication to this domain controller",
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
    *_DC_LOG_SPECS,
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
