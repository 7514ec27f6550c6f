"""The Windows advanced audit subcategories, by GUID: facts the readiness checks (audit/) and the
audit-policy-change detector (detectors/dclog/audit_policy.py) both read, kept apart from either."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Subcategory:
    guid: str  # lower case, with braces: how every comparison spells it
    name: str  # English, as auditpol writes it (GPMC adds an "Audit " prefix)
    category: str  # English category name (the GPO folder under Audit Policies)
    legacy: str  # the secedit [Event Audit] key of its category (legacy policy)


def _sub(prefix: str, name: str, category: str) -> Subcategory:
    return Subcategory("{" + prefix.lower() + "-69ae-11d9-bed3-505054503030}", name, category, LEGACY_KEYS[category])


LEGACY_KEYS = {  # category -> secedit key (audit-policy.md section 5)
    "System": "AuditSystemEvents", "Logon/Logoff": "AuditLogonEvents", "Object Access": "AuditObjectAccess",
    "Privilege Use": "AuditPrivilegeUse", "Policy Change": "AuditPolicyChange",
    "Account Management": "AuditAccountManage", "Detailed Tracking": "AuditProcessTracking",
    "DS Access": "AuditDSAccess", "Account Logon": "AuditAccountLogon",
}
# audit-policy.md section 2 (GUIDs checked there against Microsoft's own Test-MdiReadiness.ps1)
SUBCATEGORIES: dict[str, Subcategory] = {s.guid: s for s in (
    _sub("0CCE9210", "Security State Change", "System"),
    _sub("0CCE9211", "Security System Extension", "System"),
    _sub("0CCE9212", "System Integrity", "System"),
    _sub("0CCE9213", "IPsec Driver", "System"),
    _sub("0CCE9214", "Other System Events", "System"),
    _sub("0CCE9215", "Logon", "Logon/Logoff"),
    _sub("0CCE9216", "Logoff", "Logon/Logoff"),
    _sub("0CCE9217", "Account Lockout", "Logon/Logoff"),
    _sub("0CCE921B", "Special Logon", "Logon/Logoff"),
    _sub("0CCE921C", "Other Logon/Logoff Events", "Logon/Logoff"),
    _sub("0CCE9221", "Certification Services", "Object Access"),
    _sub("0CCE9228", "Sensitive Privilege Use", "Privilege Use"),
    _sub("0CCE922B", "Process Creation", "Detailed Tracking"),
    _sub("0CCE922F", "Audit Policy Change", "Policy Change"),
    _sub("0CCE9230", "Authentication Policy Change", "Policy Change"),
    _sub("0CCE9235", "User Account Management", "Account Management"),
    _sub("0CCE9236", "Computer Account Management", "Account Management"),
    _sub("0CCE9237", "Security Group Management", "Account Management"),
    _sub("0CCE9238", "Distribution Group Management", "Account Management"),
    _sub("0CCE9239", "Application Group Management", "Account Management"),
    _sub("0CCE923A", "Other Account Management Events", "Account Management"),
    _sub("0CCE923B", "Directory Service Access", "DS Access"),
    _sub("0CCE923C", "Directory Service Changes", "DS Access"),
    _sub("0CCE923D", "Directory Service Replication", "DS Access"),
    _sub("0CCE923E", "Detailed Directory Service Replication", "DS Access"),
    _sub("0CCE923F", "Credential Validation", "Account Logon"),
    _sub("0CCE9240", "Kerberos Service Ticket Operations", "Account Logon"),
    _sub("0CCE9241", "Other Account Logon Events", "Account Logon"),
    _sub("0CCE9242", "Kerberos Authentication Service", "Account Logon"),
    _sub("0CCE9244", "Detailed File Share", "Object Access"),
)}


def guid_of(name: str) -> str:
    return next(g for g, s in SUBCATEGORIES.items() if s.name == name)
