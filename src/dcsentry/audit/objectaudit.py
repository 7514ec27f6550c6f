"""The remediation no audit export can show: object auditing (SACLs) in the directory, and the CA's
own audit filter. Written by `dcsentry audit --fix-script DIR` beside the audit policy files.

- `domain-sacl.ps1`: checks (`-CheckOnly`) and adds the SACL entries 4662 and 5136 need
  (reference/dc-log-alerts.md A1, A6, B8; audit-policy.md section 7). Everyone, Success:
  Control Access + Write on the domain object itself (DCSync is logged only where the domain
  root's SACL matches the caller: the usual Domain Users / Administrators entries miss computer
  accounts and gMSAs); Write on AdminSDHolder and on CN=Policies with its GPOs; Defender for
  Identity's entries on descendant users, groups, computers and service accounts (852331 /
  852075); create/delete under CN=Sites of the configuration partition (DCShadow's server
  objects). Classes are looked up in the schema by lDAPDisplayName (a class the schema lacks,
  such as dMSA before Windows Server 2025, is skipped), identities compared by SID, so it works in
  any display language. It only ever adds entries: an existing entry that covers the wanted one
  (same or wider rights and inheritance) is left alone, nothing is removed or narrowed.
- `ca-audit.cmd`: Certification Services auditing and `certutil -setreg CA\\AuditFilter 127`
  (every category) with the CA service restart the filter needs; both are the maximum, so
  running it never lowers anything.
"""

from __future__ import annotations

from .requirements import guid_of
from .verdict import CA_FILTER_SETTING, Verdict

# (path relative to the domain / configuration naming context, rights, inheritance, class, why)
DESCENDANT_FULL = 852331  # 0xD016B: MDI's mask on users, groups, computers, msDS-ManagedServiceAccount
DESCENDANT_MSA = 852075  # 0xD006B: the same without Control Access, on gMSA and dMSA
SACL_ENTRIES: tuple[tuple[str, str, str, str, str], ...] = (
    ("$domain", "'ExtendedRight, WriteProperty, WriteDacl, WriteOwner'", "None", "",
     "domain object: 4662 Control Access (DCSync, DCShadow) and 5136 (replication rights granted)"),
    ("CN=AdminSDHolder,CN=System,$domain", "'WriteProperty, WriteDacl, WriteOwner'", "None", "",
     "AdminSDHolder: 5136 when its permissions change"),
    ("CN=Policies,CN=System,$domain", "'CreateChild, DeleteChild, Delete, WriteProperty, WriteDacl, WriteOwner'", "All",
     "", "CN=Policies and every GPO: 5136 when a GPO's extensions or permissions change"),
    ("CN=Sites,$configuration", "'CreateChild, DeleteChild'", "All", "",
     "CN=Sites: 5137/5141 for the server objects DCShadow registers (needs Enterprise Admins)"),
    *(("$domain", str(DESCENDANT_FULL), "Descendents", c, f"Defender for Identity: writes on descendant {c} objects")
      for c in ("user", "group", "computer", "msDS-ManagedServiceAccount")),
    *(("$domain", str(DESCENDANT_MSA), "Descendents", c, f"Defender for Identity: writes on descendant {c} objects")
      for c in ("msDS-GroupManagedServiceAccount", "msDS-DelegatedManagedServiceAccount")),
)

_SACL_HEAD = r"""# dcsentry: directory object auditing (SACLs) for events 4662 and 5136.
# Run as a Domain Admin (Enterprise Admin for CN=Sites), elevated, where the ActiveDirectory module is installed.
#   .\domain-sacl.ps1 -CheckOnly   lists what is missing and exits 1 if anything is; changes nothing
#   .\domain-sacl.ps1              adds the missing entries; it never removes or narrows an entry
# Audit policy must also be on: 'Audit Directory Service Access' and 'Audit Directory Service Changes' (auditpol.cmd).
param([switch]$CheckOnly)
$ErrorActionPreference = 'Stop'
Import-Module ActiveDirectory
$domain = (Get-ADDomain).DistinguishedName
$rootDse = Get-ADRootDSE
$configuration = $rootDse.configurationNamingContext
$schema = $rootDse.schemaNamingContext
$everyone = New-Object System.Security.Principal.SecurityIdentifier 'S-1-1-0'
$success = [System.Security.AccessControl.AuditFlags]::Success

function Get-ClassGuid([string]$Name) {
    if (-not $Name) { return [Guid]::Empty }
    $o = Get-ADObject -SearchBase $schema -LDAPFilter "(lDAPDisplayName=$Name)" -Properties schemaIDGUID
    if ($o) { return [Guid]$o.schemaIDGUID }
    return $null
}

function Test-Covered($Acl, $Want, [Guid]$Class) {
    $wider = @{ 'None' = @('None', 'All', 'SelfAndChildren'); 'Descendents' = @('Descendents', 'All')
                'All' = @('All') }
    foreach ($r in $Acl.GetAuditRules($true, $true, [System.Security.Principal.SecurityIdentifier])) {
        if ($r.IdentityReference.Value -ne $everyone.Value) { continue }
        if (-not ($r.AuditFlags -band $success)) { continue }
        if (($r.ActiveDirectoryRights -band $Want.Rights) -ne $Want.Rights) { continue }
        if ($r.ObjectType -ne [Guid]::Empty) { continue }
        if ($wider[$Want.Inheritance] -notcontains [string]$r.InheritanceType) { continue }
        if ($r.InheritedObjectType -ne [Guid]::Empty -and $r.InheritedObjectType -ne $Class) { continue }
        return $true
    }
    return $false
}

$wanted = @(
"""

_SACL_TAIL = r""")

$missing = 0
foreach ($w in $wanted) {
    $class = Get-ClassGuid $w.Class
    if ($null -eq $class) { Write-Output "skip: class $($w.Class) is not in this forest's schema"; continue }
    $path = "AD:$($w.Path)"
    if (-not (Test-Path $path)) { Write-Output "skip: $($w.Path) not found"; continue }
    $acl = Get-Acl -Path $path -Audit
    if (Test-Covered $acl $w $class) { Write-Output "ok: $($w.Why)"; continue }
    $missing++
    Write-Output "missing: Everyone, Success, $($w.Rights) ($($w.Inheritance)) on $($w.Path): $($w.Why)"
    if ($CheckOnly) { continue }
    $rule = New-Object System.DirectoryServices.ActiveDirectoryAuditRule($everyone, $w.Rights, $success,
        [System.DirectoryServices.ActiveDirectorySecurityInheritance]$w.Inheritance, $class)
    $acl.AddAuditRule($rule)
    Set-Acl -Path $path -AclObject $acl
    Write-Output "added: $($w.Why)"
}
if ($CheckOnly -and $missing) { Write-Output "$missing SACL entries missing"; exit 1 }
"""


def _ps_quote(text: str) -> str:
    """The inside of a PowerShell single-quoted string: a quote is doubled."""
    return text.replace("'", "''")


def domain_sacl_ps1() -> str:
    rows = []
    for path, rights, inheritance, cls, why in SACL_ENTRIES:
        rows.append(f"    @{{ Path = \"{path}\"; Rights = [System.DirectoryServices.ActiveDirectoryRights]{rights}; "
                    f"Inheritance = '{inheritance}'; Class = '{cls}'; Why = '{_ps_quote(why)}' }}")
    return _SACL_HEAD + ",\n".join(rows) + "\n" + _SACL_TAIL


def ca_audit_cmd(verdict: Verdict | None) -> str:
    cs = guid_of("Certification Services")
    name = "Audit Certification Services"
    status = {c.setting: (c.status, c.current) for c in verdict.settings} if verdict else {}
    out = ["@echo off",
           "rem dcsentry: auditing of a certification authority (AD CS events 4882-4900). Run elevated on each CA.",
           "rem Both settings are the maximum: this never lowers anything."]
    sub_status, sub_now = status.get(name, ("unknown", "no export given"))
    if sub_status != "yes":
        out += [f"rem {name}: now {sub_now} (as the exports given say; run on the CA itself)",
                f"auditpol /set /subcategory:{cs} /success:enable /failure:enable"]
    filter_status, filter_now = status.get(CA_FILTER_SETTING, ("unknown", "no export given"))
    if filter_status != "yes":
        out += [f"rem CA AuditFilter: now {filter_now}; 127 = every category (the CA reads it when it starts)",
                "certutil -setreg CA\\AuditFilter 127",
                "net stop certsvc",
                "net start certsvc"]
    if sub_status == "yes" and filter_status == "yes":
        out.append("rem Nothing to change: Certification Services auditing and AuditFilter 127 are in place.")
    out += ["certutil -getreg CA\\AuditFilter", f"auditpol /get /subcategory:{cs} /r"]
    return "\r\n".join(out) + "\r\n"
