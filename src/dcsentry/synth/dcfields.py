"""Field layouts and System values of the DC-log events the generator writes beyond the core nine.

Taken from reference/dc-log-alerts.md part A and the public recordings it cites (field order as the
DCs write it: detectors key on names, but exports and SIEM layouts keep the order). Kept here, not
in the shared catalogue, so the generator's shapes do not move when the catalogue grows.
"""

from __future__ import annotations

EVENTLOG = "Microsoft-Windows-Eventlog"
EVENTLOG_NS = "http://manifests.microsoft.com/win/2004/08/windows/eventlog"
SUBJECT = ("SubjectUserSid", "SubjectUserName", "SubjectDomainName", "SubjectLogonId")
_ACCOUNT = ("PrivilegeList", "SamAccountName", "DisplayName", "UserPrincipalName", "HomeDirectory", "HomePath",
            "ScriptPath", "ProfilePath", "UserWorkstations", "PasswordLastSet", "AccountExpires", "PrimaryGroupId",
            "AllowedToDelegateTo", "OldUacValue", "NewUacValue", "UserAccountControl", "UserParameters", "SidHistory",
            "LogonHours")
_TARGET = ("TargetUserName", "TargetDomainName", "TargetSid")
_DS = ("OpCorrelationID", "AppCorrelationID", *SUBJECT, "DSName", "DSType", "ObjectDN", "ObjectGUID", "ObjectClass")

FIELDS: dict[int, tuple[str, ...]] = {
    4662: (*SUBJECT, "ObjectServer", "ObjectType", "ObjectName", "OperationType", "HandleId", "AccessList",
           "AccessMask", "Properties", "AdditionalInfo", "AdditionalInfo2"),
    5136: (*_DS, "AttributeLDAPDisplayName", "AttributeSyntaxOID", "AttributeValue", "OperationType"),
    5137: _DS,
    5141: (*_DS, "TreeDelete"),
    4724: (*_TARGET, *SUBJECT),
    4738: ("Dummy", *_TARGET, *SUBJECT, *_ACCOUNT),
    4741: (*_TARGET, *SUBJECT, *_ACCOUNT, "DnsHostName", "ServicePrincipalNames"),
    4742: ("ComputerAccountChange", *_TARGET, *SUBJECT, *_ACCOUNT, "DnsHostName", "ServicePrincipalNames"),
    4781: ("OldTargetUserName", "NewTargetUserName", "TargetDomainName", "TargetSid", *SUBJECT, "PrivilegeList"),
    4794: (*SUBJECT, "Workstation", "Status"),
    4765: ("SourceUserName", "SourceSid", *_TARGET, *SUBJECT, "PrivilegeList", "SidList"),
    4719: (*SUBJECT, "CategoryId", "SubcategoryId", "SubcategoryGuid", "AuditPolicyChanges"),
    4706: ("DomainName", "DomainSid", *SUBJECT, "TdoType", "TdoDirection", "TdoAttributes", "SidFilteringEnabled"),
    1102: SUBJECT,
    104: ("SubjectUserName", "SubjectDomainName", "Channel", "BackupPath"),
    4885: ("AuditFilter", *SUBJECT),
    4886: ("RequestId", "Requester", "Attributes", "Subject", "SubjectAlternativeName", "CertificateTemplate",
           "RequestOSVersion", "RequestCSPProvider", "RequestClientInfo", "AuthenticationService",
           "AuthenticationLevel", "DCOMorRPC"),
    4887: ("RequestId", "Requester", "Attributes", "Disposition", "SubjectKeyIdentifier", "Subject",
           "SubjectAlternativeName", "CertificateTemplate", "SerialNumber", "AuthenticationService",
           "AuthenticationLevel", "DCOMorRPC"),
}
# (provider, channel) where not the Security-Auditing provider on Security
PROVIDERS: dict[int, tuple[str, str]] = {1102: (EVENTLOG, "Security"), 104: (EVENTLOG, "System")}
# event id -> the UserData wrapper element (these events have no EventData)
USER_DATA: dict[int, str] = {1102: "LogFileCleared", 104: "LogFileCleared"}

_S = "0x8020000000000000"
# event id -> (Version, Level, Task, Keywords, task name as Winlogbeat resolves it), as obs. in the recordings
META: dict[int, tuple[int, int, int, str, str]] = {
    4662: (0, 0, 14080, _S, "Directory Service Access"),
    5136: (0, 0, 14081, _S, "Directory Service Changes"),
    5137: (0, 0, 14081, _S, "Directory Service Changes"),
    5141: (0, 0, 14081, _S, "Directory Service Changes"),
    4724: (0, 0, 13824, _S, "User Account Management"),
    4738: (0, 0, 13824, _S, "User Account Management"),
    4781: (0, 0, 13824, _S, "User Account Management"),
    4794: (0, 0, 13824, _S, "User Account Management"),
    4765: (0, 0, 13824, _S, "User Account Management"),
    4741: (0, 0, 13825, _S, "Computer Account Management"),
    4742: (0, 0, 13825, _S, "Computer Account Management"),
    4719: (0, 0, 13568, _S, "Audit Policy Change"),
    4706: (0, 0, 13569, _S, "Authentication Policy Change"),
    1102: (0, 4, 104, "0x4020000000000000", "Log clear"),
    104: (0, 4, 104, "0x8000000000000000", "Log clear"),
    4885: (0, 0, 12805, _S, "Certification Services"),
    4886: (1, 0, 12805, _S, "Certification Services"),
    4887: (1, 0, 12805, _S, "Certification Services"),
}
INT_FIELDS: dict[int, tuple[str, ...]] = {4706: ("TdoType", "TdoDirection", "TdoAttributes")}
OTHER_OBJECT_ACCESS_TASK = 12804  # 4662 on LSA secrets (DPAPI backup key) comes from this subcategory

# GUIDs (reference A1, B1, B8, B11)
DOMAIN_DNS = "19195a5b-6da0-11d0-afd3-00c04fd930c9"
COMPUTER_CLASS = "bf967a86-0de6-11d0-a285-00aa003049e2"
GET_CHANGES = "1131f6aa-9c07-11d1-f79f-00c04fc2dcd2"
GET_CHANGES_ALL = "1131f6ad-9c07-11d1-f79f-00c04fc2dcd2"
GET_CHANGES_FILTERED = "89e95b76-444d-4c62-991a-0facbeda640c"
MANAGE_TOPOLOGY = "1131f6ac-9c07-11d1-f79f-00c04fc2dcd2"
INSTALL_REPLICA = "9923a32a-3607-11d2-b9be-0000f87a36b2"
DRS_SPN = "E3514235-4B06-11D1-AB04-00C04FC2DCD2"
CSE_SCHEDULED_TASKS = "[{00000000-0000-0000-0000-000000000000}{CAB54552-DEEA-4691-817E-ED4A4D1AFC72}]" \
                      "[{AADCED64-746C-4633-A97C-D61349046527}{CAB54552-DEEA-4691-817E-ED4A4D1AFC72}]"
CSE_SECURITY = "[{827D319E-6EAC-11D2-A4EA-00C04F79F83A}{803E14A0-B4FB-11D0-A0D0-00A0C90F574B}]"
ADDED, DELETED = "%%14674", "%%14675"
ACCESS = {0x100: "%%7688", 0x20: "%%7685", 0x40000: "%%1539", 0x10: "%%7684", 0x2: "%%5649"}
