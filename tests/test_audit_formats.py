"""`dcsentry audit` on exports written exactly in the documented formats (reference/audit-policy.md):
auditpol /get /r and /backup CSV, GPO audit.csv, secedit/GptTmpl INF, reg export, gpresult /x.
Everything set; each setting missing in turn; Failure-only where Success is needed; translated
auditpol output; legacy vs advanced policy; malformed files (the error names file and line)."""

from __future__ import annotations

import codecs
import json
from pathlib import Path

import pytest

from conftest import run_cli
from dcsentry.audit.exports import read_exports
from dcsentry.catalogue import CATALOGUE
from dcsentry.audit.requirements import ALL_REQUIREMENTS, BY_KEY, REQUIREMENTS
from dcsentry.audit.verdict import Verdict, decide

GUID = "{%s-69AE-11D9-BED3-505054503030}"
CV, SGM, KAS, KST, LOGON, SSE, UAM = (GUID % p for p in ("0CCE923F", "0CCE9237", "0CCE9242", "0CCE9240", "0CCE9215",
                                                         "0CCE9211", "0CCE9235"))
DSA, DSC, CAM, APC, AUTHPC, DFS, CS = (GUID % p for p in ("0CCE923B", "0CCE923C", "0CCE9236", "0CCE922F", "0CCE9230",
                                                          "0CCE9244", "0CCE9221"))
NAMES = {CV: "Credential Validation", SGM: "Security Group Management", KAS: "Kerberos Authentication Service",
         KST: "Kerberos Service Ticket Operations", LOGON: "Logon", SSE: "Security System Extension",
         UAM: "User Account Management", DSA: "Directory Service Access", DSC: "Directory Service Changes",
         CAM: "Computer Account Management", APC: "Audit Policy Change", AUTHPC: "Authentication Policy Change",
         DFS: "Detailed File Share", CS: "Certification Services"}
TEXT = {0: "No Auditing", 1: "Success", 2: "Failure", 3: "Success and Failure"}
GROUP = ("4728", "4729", "4732", "4733", "4756", "4757")
NTLM_KEY = r"MACHINE\System\CurrentControlSet\Services\Netlogon\Parameters\AuditNTLMInDomain"
LSA = r"MACHINE\System\CurrentControlSet\Control\Lsa"


def utf16(text: str) -> bytes:
    """As Windows writes INF, reg export and (often) auditpol redirections: UTF-16LE, BOM, CRLF."""
    return codecs.BOM_UTF16_LE + text.replace("\n", "\r\n").encode("utf-16-le")


def auditpol_get(settings: dict[str, int], machine: str = "DC01", names: dict[int, str] = TEXT,
                 target: str = "System") -> str:
    """`auditpol /get /category:* /r`: blank first line, 6 columns, no Setting Value."""
    rows = ["", "Machine Name,Policy Target,Subcategory,Subcategory GUID,Inclusion Setting,Exclusion Setting"]
    rows += [f'{machine},{target},"{NAMES[g]}",{g},{names[v]},' for g, v in settings.items()]
    return "\n".join(rows) + "\n"


def audit_csv(settings: dict[str, int]) -> str:
    """A GPO's audit.csv as GPMC writes it (MS-GPAC 2.2): Machine Name empty, 'Audit ' prefix, lower case GUIDs."""
    rows = ["Machine Name,Policy Target,Subcategory,Subcategory GUID,Inclusion Setting,Exclusion Setting,Setting Value"]
    rows += [f",System,Audit {NAMES[g]},{g.lower()},{TEXT.get(v, 'No Auditing')},,{v}" for g, v in settings.items()]
    return "\n".join(rows) + "\n"


def inf(event_audit: dict[str, int] | None = None, registry: dict[str, int] | None = None) -> str:
    out = ["[Unicode]", "Unicode=yes"]
    if event_audit is not None:
        out.append("[Event Audit]")
        out += [f"{k} = {v}" for k, v in event_audit.items()]
    if registry is not None:
        out.append("[Registry Values]")
        out += [f"{k}=4,{v}" for k, v in registry.items()]
    out += ["[Version]", 'signature="$CHICAGO$"', "Revision=1"]
    return "\n".join(out) + "\n"


def reg_export(key: str, values: dict[str, int]) -> str:
    body = "".join(f'"{n}"=dword:{v:08x}\n' for n, v in values.items())
    return f"Windows Registry Editor Version 5.00\n\n[HKEY_LOCAL_MACHINE\\{key}]\n{body}\n"


ALL_SET = {g: 3 for g in NAMES}
# `certutil -getreg CA\AuditFilter` on a CA (synthetic, in certutil's exact layout)
CERTUTIL_127 = ("HKEY_LOCAL_MACHINE\\SYSTEM\\CurrentControlSet\\Services\\CertSvc\\Configuration\\contoso-CA01-CA:\n\n"
                "  AuditFilter REG_DWORD = 7f (127)\nCertUtil: -getreg command completed successfully.\n")
NTLM_ALL = {NTLM_KEY: 7, LSA + r"\MSV1_0\RestrictSendingNTLMTraffic": 1,
            LSA + r"\MSV1_0\AuditReceivingNTLMTraffic": 2, LSA + r"\SCENoApplyLegacyAuditPolicy": 1}


def write(tmp: Path, name: str, data: str | bytes) -> str:
    p = tmp / name
    p.write_bytes(data if isinstance(data, bytes) else data.replace("\n", "\r\n").encode("utf-8"))
    return str(p)


def verdict_of(*paths: str) -> Verdict:
    read = read_exports(paths)
    assert not read.errors, read.errors
    return decide(read.exports)


def statuses(v: Verdict) -> dict[str, str]:
    return {str(e): x.status for e, x in v.events.items()}


# -- everything set -------------------------------------------------------------------------------

def test_everything_set_is_ready(tmp_path: Path) -> None:
    v = verdict_of(write(tmp_path, "auditpol.csv", utf16(auditpol_get(ALL_SET))),
                   write(tmp_path, "secpol.inf", utf16(inf(registry=NTLM_ALL))),
                   write(tmp_path, "auditfilter.txt", CERTUTIL_127))
    assert set(statuses(v).values()) == {"yes"}
    assert v.missing_required() == [] and v.unknown_required() == []
    assert all(c.status == "yes" for c in v.settings if c.required)
    assert v.conflicts == []


@pytest.mark.integration
def test_cli_everything_set_exit_zero_and_json_shape(tmp_path: Path) -> None:
    res = run_cli("audit", "--json", write(tmp_path, "a.csv", utf16(auditpol_get(ALL_SET))),
                  write(tmp_path, "s.inf", utf16(inf(registry=NTLM_ALL))), write(tmp_path, "f.txt", CERTUTIL_127))
    assert res.returncode == 0, res.stderr
    doc = json.loads(res.stdout)
    assert set(doc["events"]) == {str(e) for e in CATALOGUE}
    for e in doc["events"].values():
        assert e["status"] == "yes" and e["fix"] == [] and e["blind"] == []


@pytest.mark.integration
def test_cli_table_names_each_event(tmp_path: Path) -> None:
    res = run_cli("audit", write(tmp_path, "a.csv", audit_csv({CV: 2, SGM: 1})))
    out = res.stdout.decode()
    assert res.returncode == 1
    for eid in ("4776", "8004", "4728", "4757", "7045"):
        assert eid in out
    assert "Audit Credential Validation" in out and "brute-force" in out


# -- each setting missing in turn ----------------------------------------------------------------

@pytest.mark.parametrize("missing", ["credential-validation", "security-group-management", "ntlm-auditing"])
def test_each_required_setting_missing_in_turn(tmp_path: Path, missing: str) -> None:
    subs = dict(ALL_SET)
    reg = dict(NTLM_ALL)
    if missing == "credential-validation":
        subs[CV] = 0
    elif missing == "security-group-management":
        subs[SGM] = 0
    else:
        del reg[NTLM_KEY]
    v = verdict_of(write(tmp_path, "gpo.csv", audit_csv(subs)),
                   write(tmp_path, "GptTmpl.inf", utf16(inf(registry=reg))), write(tmp_path, "f.txt", CERTUTIL_127))
    req = BY_KEY[missing]
    for eid, x in v.events.items():
        assert x.status == ("no" if eid in req.event_ids else "yes"), (eid, x.detail)
    for eid in req.event_ids:
        if eid in v.events:
            x = v.events[eid]
            assert x.fix[0] == req.fix() and x.blind == list(req.blind)
    assert sorted(v.missing_required()) == sorted(e for e in req.event_ids if e in v.events)


@pytest.mark.parametrize("guid", [CV, SGM])
def test_row_absent_is_unknown_not_no(tmp_path: Path, guid: str) -> None:
    subs = {g: x for g, x in ALL_SET.items() if g != guid}
    v = verdict_of(write(tmp_path, "audit.csv", audit_csv(subs)))
    ids = (4776,) if guid == CV else (4728, 4729, 4732, 4733, 4756, 4757)
    for eid in ids:
        assert v.events[eid].status == "unknown"
        assert "no file sets" in v.events[eid].detail


def test_missing_ntlm_setting_in_reg_export_is_no(tmp_path: Path) -> None:
    key = r"SYSTEM\CurrentControlSet\Services\Netlogon\Parameters"
    v = verdict_of(write(tmp_path, "netlogon.reg", utf16(reg_export(key, {"DisablePasswordChange": 0}))))
    assert v.events[8004].status == "no" and "not set" in v.events[8004].detail
    v = verdict_of(write(tmp_path, "netlogon.reg", utf16(reg_export(key, {"AuditNTLMInDomain": 7}))))
    assert v.events[8004].status == "yes" and v.events[8004].source.endswith("netlogon.reg:4")
    # an export of another key says nothing about Netlogon
    v = verdict_of(write(tmp_path, "netlogon.reg", utf16(reg_export(r"SYSTEM\CurrentControlSet\Control\Lsa", {}))))
    assert v.events[8004].status == "unknown"


@pytest.mark.parametrize("value", [1, 3, 5])
def test_partial_ntlm_audit_is_no_with_reason(tmp_path: Path, value: int) -> None:
    v = verdict_of(write(tmp_path, "t.inf", utf16(inf(registry={NTLM_KEY: value}))))
    x = v.events[8004]
    assert x.status == "no" and x.detail.startswith("partial:") and "Enable all" in x.fix[0]


# -- Failure-only where Success is needed --------------------------------------------------------

def test_failure_only_where_success_is_needed(tmp_path: Path) -> None:
    v = verdict_of(write(tmp_path, "auditpol.csv", auditpol_get({**ALL_SET, SGM: 2, CV: 2})))
    for eid in (4728, 4729, 4732, 4733, 4756, 4757):
        assert v.events[eid].status == "no"
        assert v.events[eid].detail.startswith("Failure where Success is needed")
    assert v.events[4776].status == "no"
    assert v.events[4776].detail.startswith("Failure where Success and Failure is needed")


def test_success_only_credential_validation_misses_wrong_passwords(tmp_path: Path) -> None:
    v = verdict_of(write(tmp_path, "auditpol.csv", auditpol_get({**ALL_SET, CV: 1})))
    x = v.events[4776]
    assert x.status == "no" and "wrong passwords are not logged" in x.detail
    assert "brute-force" in x.blind and "password-spray" in x.blind
    assert v.events[4728].status == "yes"


def test_success_only_group_management_is_enough(tmp_path: Path) -> None:
    """The subcategory has no failure events: Success suffices (MDI's S+F is only recommended)."""
    v = verdict_of(write(tmp_path, "auditpol.csv", auditpol_get({**ALL_SET, SGM: 1})))
    assert all(v.events[e].status == "yes" for e in (4728, 4729, 4732, 4733, 4756, 4757))
    sgm = next(c for c in v.settings if c.setting == "Audit Security Group Management")
    assert sgm.status == "no" and sgm.minimum == "Success"  # short of the recommendation, not of the requirement


# -- translated auditpol output ------------------------------------------------------------------

SPANISH = {0: "Sin auditoría", 1: "Aciertos", 2: "Errores", 3: "Aciertos y errores"}
GERMAN = {0: "Keine Überwachung", 1: "Erfolgreich", 2: "Fehler", 3: "Erfolg und Fehler"}


@pytest.mark.parametrize("names", [SPANISH, GERMAN], ids=["es", "de"])
def test_translated_auditpol_get(tmp_path: Path, names: dict[int, str]) -> None:
    text = auditpol_get({**ALL_SET, CV: 1, SGM: 0}, names=names, target="Sistema").replace(
        "Machine Name,Policy Target,Subcategory", "Nombre de equipo, destino de directiva, subcategoría")
    v = verdict_of(write(tmp_path, "auditpol.csv", utf16(text)))
    assert v.events[4776].status == "no" and v.events[4776].detail.startswith("Success where")
    assert v.events[4728].status == "no"
    assert v.events[4768].status == "yes"


def test_unknown_translation_is_unknown_and_says_why(tmp_path: Path) -> None:
    names = {0: "Pas d'audit", 1: "Succès", 2: "Échec", 3: "Succès et échec"}  # not in the table on purpose
    v = verdict_of(write(tmp_path, "auditpol.csv", auditpol_get(ALL_SET, names=names).encode("utf-8-sig")))
    assert v.events[4776].status == "unknown"
    assert any("auditpol /backup" in w and "Succès et échec" in w for w in v.warnings)


def test_auditpol_backup_rows_and_options(tmp_path: Path) -> None:
    """/backup adds Option: and global SACL rows (no GUID): skipped; per-user rows skipped too."""
    text = audit_csv({CV: 3, SGM: 1}) + (",,Option:CrashOnAuditFail,,Disabled,,0\n"
                                         ",,FileGlobalSacl,,,,S:(AU;FA;KA;;;WD)\n"
                                         f"DC01,S-1-5-21-1-2-3-500,Audit Credential Validation,{CV},,,4\n")
    v = verdict_of(write(tmp_path, "backup.csv", text))
    assert v.events[4776].status == "yes" and v.events[4728].status == "yes"


# -- legacy vs advanced audit policy -------------------------------------------------------------

def test_legacy_wins_when_force_subcategories_disabled(tmp_path: Path) -> None:
    v = verdict_of(write(tmp_path, "audit.csv", audit_csv({CV: 3, SGM: 3})),
                   write(tmp_path, "GptTmpl.inf", utf16(inf({"AuditAccountLogon": 1, "AuditAccountManage": 3},
                                                            {LSA + r"\SCENoApplyLegacyAuditPolicy": 0, NTLM_KEY: 7}))))
    x = v.events[4776]
    assert x.status == "no" and "legacy 'Audit account logon events'" in x.detail
    assert any("Force audit policy subcategory settings" in f and f.endswith("= Enabled") for f in x.fix)
    assert any("overrides the advanced setting" in c and "GptTmpl.inf:" in c for c in v.conflicts)
    assert v.events[4728].status == "yes"  # legacy AuditAccountManage = 3 agrees


def test_advanced_wins_when_force_subcategories_enabled(tmp_path: Path) -> None:
    v = verdict_of(write(tmp_path, "audit.csv", audit_csv({CV: 3, SGM: 3})),
                   write(tmp_path, "GptTmpl.inf", utf16(inf({"AuditAccountLogon": 0},
                                                            {LSA + r"\SCENoApplyLegacyAuditPolicy": 1}))))
    assert v.events[4776].status == "yes"
    assert any("disagrees with the advanced setting" in c for c in v.conflicts)


def test_legacy_only_applies_unless_skipped(tmp_path: Path) -> None:
    v = verdict_of(write(tmp_path, "a.inf", utf16(inf({"AuditAccountLogon": 3, "AuditAccountManage": 2}))))
    assert v.events[4776].status == "yes" and "legacy" in v.events[4776].detail
    assert v.events[4728].status == "no"  # Failure only, from the legacy category
    v = verdict_of(write(tmp_path, "b.inf", utf16(inf({"AuditAccountLogon": 3},
                                                      {LSA + r"\SCENoApplyLegacyAuditPolicy": 1}))))
    assert v.events[4776].status == "unknown"
    assert any("is not applied" in c for c in v.conflicts)


def test_force_disabled_with_advanced_only_warns(tmp_path: Path) -> None:
    v = verdict_of(write(tmp_path, "audit.csv", audit_csv(ALL_SET)),
                   write(tmp_path, "lsa.reg", utf16(reg_export(r"SYSTEM\CurrentControlSet\Control\Lsa",
                                                               {"SCENoApplyLegacyAuditPolicy": 0}))))
    assert v.events[4776].status == "yes"
    assert any("is Disabled" in c and "lsa.reg:4" in c for c in v.conflicts)


def test_machine_state_beats_gpo_file_and_says_so(tmp_path: Path) -> None:
    v = verdict_of(write(tmp_path, "auditpol.csv", auditpol_get({CV: 0, SGM: 1})),
                   write(tmp_path, "audit.csv", audit_csv({CV: 3})))
    assert v.events[4776].status == "no" and "auditpol output" in v.events[4776].detail
    assert any("not applied to this DC" in c for c in v.conflicts)


def test_gpresult_rsop_reads_winning_gpo_only(tmp_path: Path) -> None:
    def setting(value: int, precedence: int) -> str:
        return (f"<q2:AuditSetting><GPO xmlns='http://www.microsoft.com/GroupPolicy/Settings/Base'/>"
                f"<Precedence xmlns='http://www.microsoft.com/GroupPolicy/Settings/Base'>{precedence}</Precedence>"
                f"<q2:PolicyTarget>System</q2:PolicyTarget><q2:SubcategoryName>Audit Credential Validation"
                f"</q2:SubcategoryName><q2:SubcategoryGuid>{CV.lower()}</q2:SubcategoryGuid>"
                f"<q2:SettingValue>{value}</q2:SettingValue></q2:AuditSetting>")
    xml = ('<?xml version="1.0" encoding="utf-16"?>\n<Rsop xmlns="http://www.microsoft.com/GroupPolicy/Rsop">'
           "<ComputerResults><Name>CONTOSO\\DC01$</Name><ExtensionData><Extension "
           "xmlns:q2='http://www.microsoft.com/GroupPolicy/Settings/Auditing'>"
           + setting(3, 1) + setting(0, 2) +
           "<q2:Audit xmlns:q2='http://www.microsoft.com/GroupPolicy/Settings/Security'><q2:Name>AuditAccountManage"
           "</q2:Name><q2:SuccessAttempts>true</q2:SuccessAttempts><q2:FailureAttempts>false</q2:FailureAttempts>"
           "</q2:Audit></Extension></ExtensionData></ComputerResults>"
           "<UserResults><ExtensionData><Extension xmlns:q2='http://www.microsoft.com/GroupPolicy/Settings/Auditing'>"
           + setting(0, 1) + "</Extension></ExtensionData></UserResults>"
           "</Rsop>")
    v = verdict_of(write(tmp_path, "rsop.xml", utf16(xml)))
    assert v.events[4776].status == "yes"
    assert v.events[4728].status == "yes" and "legacy" in v.events[4728].detail
    assert v.inputs[0].machine == "CONTOSO\\DC01$"


def test_7045_never_depends_on_an_audit_setting(tmp_path: Path) -> None:
    req = BY_KEY["service-installs"]
    assert req.subcategory is None and req.registry is None and req.always
    v = verdict_of(write(tmp_path, "a.csv", auditpol_get({CV: 0, SGM: 0, SSE: 0})))
    assert v.events[7045].status == "yes" and v.events[7045].fix == []
    assert "no audit setting" in v.events[7045].detail
    assert all(7045 not in r.event_ids for r in ALL_REQUIREMENTS if r.subcategory)


def test_requirements_keep_their_public_names() -> None:
    """The service's health alerts import these: same keys, same fix text as before."""
    assert [r.key for r in REQUIREMENTS] == ["ntlm-auditing", "credential-validation", "security-group-management",
                                             "service-installs"]
    assert BY_KEY["ntlm-auditing"].fix() == (
        'Computer configuration > Policies > Windows Settings > Security Settings > Local Policies > Security '
        'Options > "Network security: Restrict NTLM: Audit NTLM authentication in this domain" = Enable all')


# -- malformed files: a clear error naming the file and the line ---------------------------------

MALFORMED = [
    ("row.csv", audit_csv({CV: 3}) + ",System,Audit Security Group Management,{0cce9237-69ae-11d9-bed3-505054503030}\n",
     3, "columns"),
    ("guid.csv", audit_csv({CV: 3}).replace("{0cce923f-69ae-11d9-bed3-505054503030}", "{not-a-guid}"), 2, "not a GUID"),
    ("value.csv", audit_csv({CV: 3}).replace(",,3", ",,9"), 2, "Setting Value"),
    ("nohead.csv", audit_csv({CV: 3}).split("\n", 1)[1], 1, "header"),
    ("audit.inf", utf16(inf({"AuditAccountLogon": 3})).replace("3".encode("utf-16-le"), "x".encode("utf-16-le")),
     4, "not a number"),
    ("range.inf", utf16(inf({"AuditAccountLogon": 7})), 4, "0-3"),
    ("regline.inf", utf16(inf(registry={NTLM_KEY: 7}).replace("=4,7", "")), 4, "Registry Values"),
    ("before.inf", utf16("AuditAccountLogon = 3\n[Event Audit]\n"), 1, "before the first [section]"),
    ("dword.reg", utf16(reg_export(r"SYSTEM\CurrentControlSet\Services\Netlogon\Parameters",
                                   {"AuditNTLMInDomain": 7}).replace("dword:00000007", "dword:zz")), 4, "dword"),
    ("sz.reg", utf16(reg_export(r"SYSTEM\CurrentControlSet\Services\Netlogon\Parameters",
                                {"AuditNTLMInDomain": 7}).replace("dword:00000007", '"7"')), 4, "REG_DWORD"),
    ("broken.xml", "<?xml version='1.0'?>\n<Rsop>\n<ComputerResults>\n</Rsop>\n", 4, "not well-formed"),
    ("dtd.xml", utf16("<?xml version='1.0'?>\n<!DOCTYPE Rsop [<!ENTITY x 'y'>]>\n<Rsop/>\n"), 2, "DOCTYPE"),
]


@pytest.mark.parametrize("name,data,line,words", MALFORMED, ids=[m[0] for m in MALFORMED])
def test_malformed_file_error_names_file_and_line(tmp_path: Path, name: str, data: str | bytes, line: int,
                                                  words: str) -> None:
    path = write(tmp_path, name, data)
    read = read_exports([path])
    assert read.exports == [] and len(read.errors) == 1
    err = read.errors[0]
    assert (err.path, err.line) == (path, line), str(err)
    assert words in str(err) and str(err).startswith(f"{path}:{line}: ")


@pytest.mark.integration
def test_cli_malformed_exit_2_with_file_and_line(tmp_path: Path) -> None:
    good = write(tmp_path, "good.csv", audit_csv(ALL_SET))
    bad = write(tmp_path, "bad.csv", audit_csv({CV: 3}).replace(",,3", ",,9"))
    res = run_cli("audit", good, bad)
    assert res.returncode == 2
    assert f"{bad}:2: Setting Value '9' is not 0-4" in res.stderr.decode()


def test_unknown_file_is_an_error_but_skipped_inside_a_directory(tmp_path: Path) -> None:
    gpo = tmp_path / "gpo"
    gpo.mkdir()
    write(gpo, "Backup.xml", "<?xml version='1.0'?>\n<GroupPolicyBackupScheme/>\n")
    write(gpo, "registry.pol", b"PReg\x01\x00\x00\x00")
    write(gpo, "audit.csv", audit_csv(ALL_SET))
    read = read_exports([str(gpo)])
    assert not read.errors and len(read.exports) == 1 and len(read.skipped) == 2
    read = read_exports([str(gpo / "Backup.xml")])
    assert len(read.errors) == 1 and "neither gpresult" in str(read.errors[0])
