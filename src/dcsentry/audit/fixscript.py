"""`dcsentry audit --fix-script DIR`: the remediation, ready to apply.

Written into DIR:
- `auditpol.cmd`: `auditpol /set /subcategory:{GUID} /success:enable /failure:enable` for each
  subcategory that is not yet right (GUIDs, so it works on any display language). Run elevated on
  a DC to fix it now; a GPO that sets the same subcategory wins at its next refresh.
- `ntlm-audit.reg` and `ntlm-audit.ps1`: the NTLM audit Security Options and
  SCENoApplyLegacyAuditPolicy as registry values (`reg import` / PowerShell). The PowerShell one
  only turns "Outgoing NTLM traffic" to Audit all when it is not already Deny all; the .reg
  leaves that value out unless the exports showed it is not Deny all.
- `audit.csv` and `GptTmpl.inf`: the same as a GPO's advanced audit policy file (MS-GPAC header,
  Setting Value numbers) and security template ([Registry Values]), the full set dcsentry asks
  for, for a GPO linked to the Domain Controllers OU.
- `domain-sacl.ps1` and `ca-audit.cmd`: what no export shows, the directory SACLs 4662/5136 need and
  each CA's Certification Services auditing and AuditFilter (audit/objectaudit.py).
- `README.txt`: what each file does and where it goes.
Audit settings are only ever raised to Success and Failure; nothing here turns auditing off or
blocks NTLM. Every file is read back by dcsentry's own readers in the tests.
"""

from __future__ import annotations

import codecs
from pathlib import Path

from .objectaudit import ca_audit_cmd, domain_sacl_ps1
from .requirements import (
    ALL_REQUIREMENTS,
    FORCE_SUBCATEGORIES,
    MDI_SUBCATEGORIES,
    NTLM_AUDIT_VALUES,
    SUBCATEGORIES,
    RegistryValue,
    guid_of,
)
from .verdict import EXTRA_SUBCATEGORIES, Verdict

CRLF = "\r\n"
AUDIT_CSV_HEADER = ("Machine Name,Policy Target,Subcategory,Subcategory GUID,Inclusion Setting,Exclusion Setting,"
                    "Setting Value")
_SENDING = "RestrictSendingNTLMTraffic"


def wanted_subcategories() -> list[str]:
    """Every subcategory dcsentry asks of a DC: the requirements' (not the CA's, nor the optional noisy
    Detailed File Share), Defender for Identity's list, and Audit Policy Change."""
    guids = [q.subcategory for q in ALL_REQUIREMENTS if q.subcategory and q.scope == "dc" and not q.optional]
    return list(dict.fromkeys(guids + list(MDI_SUBCATEGORIES) + list(EXTRA_SUBCATEGORIES)))


def wanted_registry() -> list[RegistryValue]:
    return [*NTLM_AUDIT_VALUES, FORCE_SUBCATEGORIES]


def _status(verdict: Verdict | None, setting: str) -> str:
    if verdict is None:
        return "unknown"
    return next((c.status for c in verdict.settings if c.setting == setting), "unknown")


def _current(verdict: Verdict | None, setting: str) -> str:
    if verdict is None:
        return "no export given"
    return next((c.current for c in verdict.settings if c.setting == setting), "unknown")


def _sending_is_deny(verdict: Verdict | None) -> bool | None:
    """True/False when the exports say whether outgoing NTLM is denied; None when they do not."""
    if verdict is None:
        return None
    check = next(c for c in verdict.settings if c.setting == NTLM_AUDIT_VALUES[1].option)
    if check.status == "unknown":
        return None
    return check.current.startswith("2 ")


def _write(path: Path, text: str, encoding: str) -> None:
    data = text.replace("\r\n", "\n").replace("\n", CRLF)
    raw = codecs.BOM_UTF16_LE + data.encode("utf-16-le") if encoding == "utf-16" else data.encode(encoding)
    path.write_bytes(raw)


def auditpol_cmd(verdict: Verdict | None) -> str:
    out = ["@echo off",
           "rem dcsentry: advanced audit policy for a domain controller. Run elevated on the DC.",
           "rem Subcategories are given by GUID, so this works whatever the display language.",
           "rem A GPO that sets the same subcategory wins at its next refresh: fix the GPO too (audit.csv)."]
    n = 0
    for guid in wanted_subcategories():
        name = f"Audit {SUBCATEGORIES[guid].name}"
        if _status(verdict, name) == "yes":
            continue
        out.append(f"rem {name}: now {_current(verdict, name)}")
        out.append(f"auditpol /set /subcategory:{guid} /success:enable /failure:enable")
        n += 1
    if not n:
        out.append("rem Nothing to change: every subcategory dcsentry asks for is already Success and Failure.")
    out.append("auditpol /get /category:* /r")
    return CRLF.join(out) + CRLF


def _registry_plan(verdict: Verdict | None) -> list[tuple[RegistryValue, int, str]]:
    """(value, data, comment) for each registry value to set."""
    plan = []
    for rv in wanted_registry():
        if rv.wanted is None or _status(verdict, rv.option) == "yes":
            continue
        if rv.name == _SENDING and _sending_is_deny(verdict) is not False:
            continue  # never risk loosening a Deny all, nor setting it blind in a static file
        plan.append((rv, rv.wanted, f"{rv.option} = {rv.wanted_text} (now {_current(verdict, rv.option)})"))
    return plan


def reg_file(verdict: Verdict | None) -> str:
    out = ["Windows Registry Editor Version 5.00", ""]
    by_key: dict[str, list[tuple[RegistryValue, int, str]]] = {}
    for item in _registry_plan(verdict):
        by_key.setdefault(item[0].key, []).append(item)
    for key, items in by_key.items():
        out.append(f"[HKEY_LOCAL_MACHINE\\{key.replace('System', 'SYSTEM', 1)}]")
        for rv, data, comment in items:
            out.append(f"; {comment}")
            out.append(f'"{rv.name}"=dword:{data:08x}')
        out.append("")
    if len(out) == 2:
        out.append("; Nothing to change: the NTLM audit values are already as dcsentry asks.")
    return CRLF.join(out) + CRLF


def powershell(verdict: Verdict | None) -> str:
    out = ["# dcsentry: NTLM audit settings for a domain controller. Run elevated on the DC.",
           "# Audit only: nothing here blocks NTLM. A GPO that sets the same options wins at its next refresh.",
           "$ErrorActionPreference = 'Stop'",
           "function Set-Dword($Key, $Name, $Value) {",
           "    $path = \"HKLM:\\$Key\"",
           "    if (-not (Test-Path $path)) { New-Item -Path $path -Force | Out-Null }",
           "    Set-ItemProperty -Path $path -Name $Name -Value $Value -Type DWord",
           "    Write-Output \"$Key\\$Name = $Value\"",
           "}"]
    for rv in wanted_registry():
        if _status(verdict, rv.option) == "yes":
            continue
        out.append(f"# {rv.option} = {rv.wanted_text} (now {_current(verdict, rv.option)})")
        if rv.name == _SENDING:
            out.append(f"$now = (Get-ItemProperty -Path 'HKLM:\\{rv.key}' -Name {rv.name} "
                       f"-ErrorAction SilentlyContinue).{rv.name}")
            out.append("if ($now -eq 2) { Write-Output 'RestrictSendingNTLMTraffic is 2 (Deny all): left as it is' }")
            out.append(f"else {{ Set-Dword '{rv.key}' '{rv.name}' {rv.wanted} }}")
        else:
            out.append(f"Set-Dword '{rv.key}' '{rv.name}' {rv.wanted}")
    return "\n".join(out) + "\n"


def audit_csv() -> str:
    rows = [AUDIT_CSV_HEADER]
    for guid in wanted_subcategories():
        rows.append(f",System,Audit {SUBCATEGORIES[guid].name},{guid},Success and Failure,,3")
    return CRLF.join(rows) + CRLF


def gpttmpl_inf(verdict: Verdict | None) -> str:
    out = ["[Unicode]", "Unicode=yes", "[Version]", 'signature="$CHICAGO$"', "Revision=1", "[Registry Values]"]
    for rv in wanted_registry():
        if rv.name == _SENDING and _sending_is_deny(verdict) is not False:
            continue
        out.append(f"MACHINE\\{rv.key}\\{rv.name}=4,{rv.wanted}")
    return CRLF.join(out) + CRLF


README = """dcsentry remediation for domain controllers
============================================

auditpol.cmd     Run elevated on each DC: sets the advanced audit subcategories that were not
                 Success and Failure (by GUID: works in any display language).
ntlm-audit.ps1   Run elevated on each DC: sets the NTLM audit Security Options (8004 needs
                 "Audit NTLM authentication in this domain" = Enable all). Leaves "Outgoing NTLM
                 traffic" alone when it is Deny all.
ntlm-audit.reg   The same values for `reg import ntlm-audit.reg`.{sending}
audit.csv        Advanced audit policy as a GPO stores it (Machine\\Microsoft\\Windows NT\\Audit\\audit.csv).
                 Test on one DC with `auditpol /restore /file:audit.csv`.
GptTmpl.inf      The Security Options as a security template: in the Group Policy Management
                 Editor of a GPO linked to the Domain Controllers OU, Security Settings > Import Policy.
domain-sacl.ps1  Object auditing (SACLs) that 4662 and 5136 need and no audit export shows: run
                 `.\\domain-sacl.ps1 -CheckOnly` as a Domain Admin to see what is missing, without
                 -CheckOnly to add it (Everyone, Success: Control Access + Write on the domain object,
                 Write on AdminSDHolder and CN=Policies, Defender for Identity's entries on
                 descendant users/groups/computers/service accounts, create/delete under CN=Sites).
                 It only adds entries, never removes or narrows one. Once per forest/domain.
ca-audit.cmd     On each certification authority, elevated: Certification Services auditing and
                 `certutil -setreg CA\\AuditFilter 127` with the CA service restart it needs.
                 Check with `certutil -getreg CA\\AuditFilter > auditfilter.txt` and
                 `dcsentry audit auditfilter.txt ...`.

Optional (noisy): event 5145 (the share-access half of remote-service-installation) needs
`auditpol /set /subcategory:{dfs} /success:enable` (Detailed File Share);
it logs every file-share access check, so it is left out of auditpol.cmd and audit.csv.

Group Policy is the lasting fix: a local change is overwritten by any GPO that sets the same
setting. After applying, check with `auditpol /get /category:* /r > auditpol.csv` and
`dcsentry audit auditpol.csv ...`. 8004 is written to the Microsoft-Windows-NTLM/Operational log:
forward that log (and System for 7045 and 104) to dcsentry as well as Security.
"""


def write_fix_script(directory: str | Path, verdict: Verdict | None) -> list[Path]:
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    sending = _sending_is_deny(verdict)
    note = ("" if sending is False else
            "\n                 It leaves out \"Outgoing NTLM traffic\" (Audit all): the exports did not show it is "
            "not Deny all;\n                 ntlm-audit.ps1 checks before setting it.")
    files = {
        "auditpol.cmd": (auditpol_cmd(verdict), "ascii"),
        "ntlm-audit.reg": (reg_file(verdict), "utf-16"),
        "ntlm-audit.ps1": (powershell(verdict), "utf-8-sig"),
        "audit.csv": (audit_csv(), "utf-8"),
        "GptTmpl.inf": (gpttmpl_inf(verdict), "utf-16"),
        "domain-sacl.ps1": (domain_sacl_ps1(), "utf-8-sig"),
        "ca-audit.cmd": (ca_audit_cmd(verdict), "ascii"),
        "README.txt": (README.format(sending=note, dfs=guid_of("Detailed File Share")), "utf-8"),
    }
    out = []
    for name, (text, enc) in files.items():
        p = d / name
        _write(p, text, enc)
        out.append(p)
    return out
