"""Readiness for the DC-log detections (reference/dc-log-alerts.md parts A-C): the catalogue's new
events, `dcsentry audit`'s checks for them on real exports (../shared/audit-samples), the CA's
`certutil -getreg CA\\AuditFilter` reader (synthetic text in certutil's exact layout), the fix
scripts (directory SACLs, CA), and the default WEF subscription that selects them."""

from __future__ import annotations

import codecs
import json
import re
from pathlib import Path

import pytest

from conftest import SHARED, corpus, read_file_events, run_cli
from dcsentry.audit.exports import read_exports
from dcsentry.audit.fixscript import audit_csv, wanted_subcategories, write_fix_script
from dcsentry.audit.objectaudit import DESCENDANT_FULL, DESCENDANT_MSA
from dcsentry.audit.requirements import ALL_REQUIREMENTS, BY_KEY, SUBCATEGORIES, guid_of, requirement_for
from dcsentry.audit.verdict import CA_FILTER_SETTING, SACL_SETTING, Verdict, decide
from dcsentry.catalogue import CATALOGUE, CORE_IDS
from dcsentry.config import default_select
from dcsentry.sources.wef.subscriptions import query_list

SAMPLES = SHARED / "audit-samples"
DISA_DC = str(SAMPLES / "disa-stig-gpo/ws2019-dc_audit.csv")  # DSA 3, DSC 3, UAM 3, CAM 1, AuthPC 1; no KAS/CS/DFS
RIT = str(SAMPLES / "rit-cyberforce-windows-scripts/auditpol.csv")  # auditpol backup: KAS/KSTO 3, CS 3, DFS 1
SPANISH = str(SAMPLES / "mpenaait-policy-es/audit.csv")  # every subcategory No Auditing
Z3R0 = str(SAMPLES / "z3r0page-gpocopy/audit.csv")  # CAM 1, UAM 3, AuthPC 1, no DS Access
NEW_IDS = (4662, 4738, 4741, 4742, 4743, 4722, 4724, 4725, 4726, 4781, 4765, 4766, 4794, 5136, 5137, 5141, 4719, 4706,
           4865, 1102, 104, 5145, 4882, 4885, 4886, 4887, 4888, 4890, 4896, 4898, 4899, 4900)
ALERT_TYPES = ("log-cleared", "audit-policy-disabled", "dcsync", "kerberoasting", "asrep-roasting", "golden-ticket",
               "overpass-the-hash", "pass-the-hash",
               "dpapi-backup-key", "remote-service-installation", "dcsync-rights", "shadow-credentials",
               "rbcd-change", "spn-added-to-user", "primary-group-change", "adminsdholder-change", "acl-change",
               "gpo-change", "preauth-disabled", "nopac", "sid-history", "dcshadow", "dsrm-password-change",
               "trust-created", "adcs-san-mismatch", "adcs-config-change")


def certutil_text(ca: str, value: int | None) -> str:
    """`certutil -getreg CA\\AuditFilter` as certutil prints it (hex, then decimal when they differ)."""
    head = f"HKEY_LOCAL_MACHINE\\SYSTEM\\CurrentControlSet\\Services\\CertSvc\\Configuration\\{ca}:\r\n\r\n"
    if value is None:
        return head + ("CertUtil: -getreg command FAILED: 0x80070002 (WIN32: 2 ERROR_FILE_NOT_FOUND)\r\n"
                       "CertUtil: The system cannot find the file specified.\r\n")
    shown = f"{value:x}" if value < 10 else f"{value:x} ({value})"
    return head + f"  AuditFilter REG_DWORD = {shown}\r\nCertUtil: -getreg command completed successfully.\r\n"


def write(tmp: Path, name: str, text: str, encoding: str = "cp1252") -> str:
    p = tmp / name
    p.write_bytes(codecs.BOM_UTF16_LE + text.encode("utf-16-le") if encoding == "utf-16" else text.encode(encoding))
    return str(p)


def verdict_of(*paths: str) -> Verdict:
    read = read_exports(paths)
    assert not read.errors and not read.skipped, (read.errors, read.skipped)
    return decide(read.exports)


def status(v: Verdict, *ids: int) -> dict[int, str]:
    return {e: v.events[e].status for e in ids}


# -- the catalogue ----------------------------------------------------------------------------------

def test_every_new_event_is_catalogued_with_a_requirement() -> None:
    for eid in NEW_IDS:
        spec, req = CATALOGUE[eid], requirement_for(eid)
        assert spec.fields and not spec.core and req is not None, eid
        if req.subcategory:
            assert spec.subcategory == SUBCATEGORIES[req.subcategory].name, eid
    assert CATALOGUE[1102].provider == CATALOGUE[104].provider == "Microsoft-Windows-Eventlog"
    assert (CATALOGUE[1102].channel, CATALOGUE[104].channel) == ("Security", "System")
    assert len(CORE_IDS) == 9  # the core stays the nine events


def test_field_lists_follow_the_real_recordings() -> None:
    """Every catalogued event of the dc-log corpus carries its fields in the catalogue's order (a
    version that appends fields, like 4768 v2, extends it; an older one may stop early)."""
    checked: set[int] = set()
    for entry in json.loads(corpus("dc-log/manifest.json").read_text(encoding="utf-8")):
        if entry["format"] != "evtx" or not set(map(int, entry["event_counts"])) & set(NEW_IDS):
            continue
        events, _ = read_file_events(corpus("dc-log/" + entry["path"]))
        for ev in events:
            if ev.event_id not in NEW_IDS or ev.event_id in checked or not ev.data:
                continue
            names, spec = list(ev.data), list(CATALOGUE[ev.event_id].fields)
            n = min(len(names), len(spec))
            assert names[:n] == spec[:n], (ev.event_id, entry["path"], names)
            checked.add(ev.event_id)
    assert checked >= {4662, 4738, 4741, 4742, 4781, 4765, 4794, 5136, 5137, 4719, 4706, 4865, 1102, 104, 4885}


# -- audit on real exports -------------------------------------------------------------------------

def test_disa_dc_gpo_new_checks() -> None:
    v = verdict_of(DISA_DC)
    assert status(v, 4662, 5136, 5137, 4738, 4794, 4766, 4741, 4742, 4706, 4865) == dict.fromkeys(
        (4662, 5136, 5137, 4738, 4794, 4766, 4741, 4742, 4706, 4865), "yes")
    assert status(v, 4768, 4769, 4886, 4882, 5145) == dict.fromkeys((4768, 4769, 4886, 4882, 5145), "unknown")
    assert status(v, 4719, 1102, 104) == dict.fromkeys((4719, 1102, 104), "yes")  # always logged
    assert "domain-sacl.ps1" in v.events[4662].detail and "SACL" in v.events[4662].detail
    assert "AdminSDHolder" in v.events[5136].detail
    sacl = next(c for c in v.settings if c.setting == SACL_SETTING)
    assert sacl.status == "unknown" and "cannot be read from an audit export" in sacl.current
    assert next(c for c in v.settings if c.setting == "Audit Audit Policy Change").status == "yes"
    assert next(c for c in v.settings if c.setting == "Audit Authentication Policy Change").current == "Success"


def test_spanish_backup_says_no_to_the_new_subcategories() -> None:
    v = verdict_of(SPANISH)
    ids = (4662, 5136, 4738, 4741, 4768, 4769, 4706, 5145, 4886)
    assert status(v, *ids) == dict.fromkeys(ids, "no")
    assert v.events[4662].blind == ["dcsync", "dpapi-backup-key", "dcshadow", "honeytoken-activity"]
    assert set(v.events[5136].blind) >= {"shadow-credentials", "rbcd-change", "adminsdholder-change", "gpo-change",
                                         "dcsync-rights", "acl-change", "spn-added-to-user", "primary-group-change"}
    assert v.events[4769].blind[0] == "kerberoasting" and "asrep-roasting" in v.events[4768].blind
    assert v.events[4719].status == "yes" and v.events[4719].blind == []  # audit-policy-disabled: always logged
    assert v.missing_required() == [4776, 4728, 4729, 4732, 4733, 4756, 4757]  # the new ones are context


def test_z3r0page_gpo_without_ds_access() -> None:
    v = verdict_of(Z3R0)
    assert status(v, 4741, 4738, 4706, 4662, 5136) == {4741: "yes", 4738: "yes", 4706: "yes", 4662: "unknown",
                                                        5136: "unknown"}


def test_real_auditpol_backup_and_a_ca_filter(tmp_path: Path) -> None:
    """RIT's auditpol backup audits Certification Services and Detailed File Share; the CA events still
    need the CA's AuditFilter, which only certutil shows."""
    v = verdict_of(RIT)
    assert status(v, 4768, 4769, 4771, 5145, 4662) == dict.fromkeys((4768, 4769, 4771, 5145, 4662), "yes")
    assert v.events[4886].status == "unknown" and "certutil" in v.events[4886].detail
    assert any("AuditFilter 127" in f for f in v.events[4886].fix)
    v = verdict_of(RIT, write(tmp_path, "filter.txt", certutil_text("essos-CA", 127)))
    ca_ids = (4882, 4885, 4886, 4887, 4888, 4890, 4896, 4898, 4899, 4900)
    assert status(v, *ca_ids) == dict.fromkeys(ca_ids, "yes")
    assert next(c for c in v.settings if c.setting == CA_FILTER_SETTING).status == "yes"


@pytest.mark.integration
def test_cli_json_lists_blind_alert_types_per_event(tmp_path: Path) -> None:
    res = run_cli("audit", "--json", SPANISH)
    doc = json.loads(res.stdout)
    assert res.returncode == 1
    for eid in NEW_IDS:
        e = doc["events"][str(eid)]
        assert {"status", "fix", "blind", "subcategory", "on", "detections", "also"} <= set(e)
    assert doc["events"]["4662"]["subcategory"] == "Audit Directory Service Access"
    assert any("domain-sacl.ps1" in x for x in doc["events"]["4662"]["also"])
    assert doc["events"]["4886"]["on"] == "each CA" and doc["events"]["4886"]["blind"] == ["adcs-san-mismatch"]
    assert doc["events"]["1102"]["blind"] == [] and doc["events"]["1102"]["detections"] == ["log-cleared"]
    named = {a for e in doc["events"].values() for a in e["detections"]}
    assert named >= set(ALERT_TYPES), set(ALERT_TYPES) - named


# -- certutil -getreg CA\AuditFilter (synthetic: certutil's exact layout) ---------------------------

def test_synthetic_certutil_security_bit_off(tmp_path: Path) -> None:
    """111 = 127 without 16 (CA security), as seen after an attacker's change: request events still
    audited, permission changes not; events whose bit is not documented cannot be told."""
    v = verdict_of(RIT, write(tmp_path, "f.txt", certutil_text("essos-CA", 111)))
    assert status(v, 4886, 4887, 4882, 4890, 4885, 4896) == {4886: "yes", 4887: "yes", 4882: "no", 4890: "no",
                                                              4885: "unknown", 4896: "unknown"}
    assert "16 (CA security)" in v.events[4882].detail and v.events[4882].blind == ["adcs-config-change"]


def test_synthetic_certutil_value_not_set_and_utf16(tmp_path: Path) -> None:
    v = verdict_of(RIT, write(tmp_path, "f.txt", certutil_text("CA01", None), "utf-16"))
    assert v.events[4886].status == "no" and "not set" in v.events[4886].detail
    (exp,) = read_exports([write(tmp_path, "g.txt", certutil_text("CA01", 5), "utf-16")]).exports
    assert exp.kind == "certutil-auditfilter" and exp.machine == "CA01"
    assert [s.value for s in exp.ca_filters["CA01"]] == [5]


def test_synthetic_certutil_two_cas_one_lacking(tmp_path: Path) -> None:
    text = certutil_text("CA01", 127) + certutil_text("CA02", 0)
    v = verdict_of(RIT, write(tmp_path, "f.txt", text))
    assert v.events[4887].status == "no" and "CA02" in v.events[4887].detail and "CA01" not in v.events[4887].detail


def test_synthetic_certutil_malformed_names_the_line(tmp_path: Path) -> None:
    bad = certutil_text("CA01", 127).replace("7f (127)", "7f (111)")
    read = read_exports([write(tmp_path, "f.txt", bad)])
    assert read.errors and ":3:" in str(read.errors[0]) and "disagree" in str(read.errors[0])


# -- fix scripts ----------------------------------------------------------------------------------

def test_fix_script_sets_new_subcategories_and_never_lowers(tmp_path: Path) -> None:
    write_fix_script(tmp_path, verdict_of(SPANISH))
    cmd = (tmp_path / "auditpol.cmd").read_text("ascii")
    for name in ("Directory Service Access", "Directory Service Changes", "Kerberos Authentication Service",
                 "Kerberos Service Ticket Operations", "User Account Management", "Computer Account Management",
                 "Audit Policy Change", "Authentication Policy Change", "Security System Extension"):
        assert f"auditpol /set /subcategory:{guid_of(name)} /success:enable /failure:enable" in cmd, name
    for name in ("Detailed File Share", "Certification Services"):  # noisy optional / on the CA: not on every DC
        assert guid_of(name) not in cmd and guid_of(name) not in audit_csv()
    assert "disable" not in cmd
    after = verdict_of(str(tmp_path / "audit.csv"))
    ids = (4662, 5136, 5137, 4738, 4766, 4794, 4741, 4768, 4769, 4771, 4706, 4697, 4624, 4625)
    assert status(after, *ids) == dict.fromkeys(ids, "yes")
    assert set(wanted_subcategories()) >= {guid_of("Directory Service Access"), guid_of("Audit Policy Change")}


def test_domain_sacl_script(tmp_path: Path) -> None:
    write_fix_script(tmp_path, None)
    raw = (tmp_path / "domain-sacl.ps1").read_bytes()
    assert raw.startswith(codecs.BOM_UTF8)
    ps1 = raw.decode("utf-8-sig")
    assert "param([switch]$CheckOnly)" in ps1 and "Get-Acl -Path $path -Audit" in ps1
    assert "'S-1-1-0'" in ps1 and "AuditFlags]::Success" in ps1
    assert "AddAuditRule" in ps1 and "RemoveAuditRule" not in ps1 and "SetAuditRule" not in ps1
    domain = re.search(r'Path = "\$domain"; Rights = \[[^\]]+\]\'([^\']+)\'; Inheritance = \'None\'', ps1)
    assert domain and {"ExtendedRight", "WriteProperty", "WriteDacl"} <= set(domain.group(1).split(", "))
    assert 'Path = "CN=AdminSDHolder,CN=System,$domain"' in ps1
    assert 'Path = "CN=Policies,CN=System,$domain"' in ps1
    for cls, mask in (("user", DESCENDANT_FULL), ("computer", DESCENDANT_FULL),
                      ("msDS-GroupManagedServiceAccount", DESCENDANT_MSA)):
        assert f"ActiveDirectoryRights]{mask}; Inheritance = 'Descendents'; Class = '{cls}'" in ps1
    assert (DESCENDANT_FULL, DESCENDANT_MSA) == (0xD016B, 0xD006B)  # audit-policy.md section 7
    assert "lDAPDisplayName=$Name" in ps1  # classes from the schema: no hard-coded GUID, any language


def test_ca_script(tmp_path: Path) -> None:
    write_fix_script(tmp_path, verdict_of(SPANISH))
    cmd = (tmp_path / "ca-audit.cmd").read_bytes().decode("ascii")
    assert "certutil -setreg CA\\AuditFilter 127" in cmd and "net stop certsvc\r\nnet start certsvc" in cmd
    assert f"auditpol /set /subcategory:{guid_of('Certification Services')} /success:enable /failure:enable" in cmd
    ready = tmp_path / "ready"
    write_fix_script(ready, verdict_of(RIT, write(tmp_path, "f.txt", certutil_text("CA01", 127))))
    cmd = (ready / "ca-audit.cmd").read_text("ascii")
    assert "setreg" not in cmd and "auditpol /set" not in cmd and "Nothing to change" in cmd


# -- the default WEF subscription --------------------------------------------------------------------

def test_default_subscription_selects_every_catalogued_event_within_windows_limits() -> None:
    select = default_select()
    q = query_list(select)
    selects = re.findall(r'<Select Path="([^"]+)">([^<]+)</Select>', q)
    by_channel: dict[str, set[int]] = {}
    for channel, xpath in selects:
        assert len(re.findall(r"EventID=", xpath)) <= 20, xpath
        by_channel.setdefault(channel, set()).update(int(x) for x in re.findall(r"EventID=(\d+)", xpath))
    for eid, spec in CATALOGUE.items():
        assert eid in by_channel.get(spec.channel, set()), (eid, spec.channel)
    assert any("svcctl" in x for _, x in selects)  # 5145 only for the service control manager's pipe


@pytest.mark.parametrize("key", ["kerberos-authentication", "kerberos-service-tickets", "directory-service-access",
                                 "directory-service-changes"])
def test_stopped_requirements_name_their_setting(key: str) -> None:
    req = BY_KEY[key]
    assert req.health == "stopped" and req.subcategory_name.startswith("Audit ")
    assert all(r.health in ("", "absent", "stopped") for r in ALL_REQUIREMENTS)


def test_a_channel_may_have_several_selects_in_toml(tmp_path: Path) -> None:
    from dcsentry.config import load_config

    conf = tmp_path / "c.toml"
    conf.write_text('[[wef.subscriptions]]\nname = "x"\nselect = { Security = ["*[System[(EventID=4662)]]", '
                    '"*[System[(EventID=5136)]]"], System = "*[System[(EventID=104)]]" }\n', encoding="utf-8")
    (sub,) = load_config(conf).wef.subscriptions
    assert query_list(sub.select).count('<Select Path="Security">') == 2
    conf.write_text('[[wef.subscriptions]]\nname = "x"\nselect = { Security = ["*", 3] }\n', encoding="utf-8")
    with pytest.raises(ValueError, match="list of"):
        load_config(conf)


def test_synthetic_reg_export_of_the_ca_configuration(tmp_path: Path) -> None:
    """`reg export HKLM\\SYSTEM\\CurrentControlSet\\Services\\CertSvc\\Configuration`: the same facts."""
    base = "HKEY_LOCAL_MACHINE\\SYSTEM\\CurrentControlSet\\Services\\CertSvc\\Configuration"
    text = (f"Windows Registry Editor Version 5.00\r\n\r\n[{base}]\r\n\"Active\"=\"CA01\"\r\n\r\n"
            f"[{base}\\CA01]\r\n\"AuditFilter\"=dword:0000006f\r\n\"CRLPeriodUnits\"=dword:00000001\r\n\r\n"
            f"[{base}\\CA01\\CSP]\r\n\"ProviderType\"=dword:00000000\r\n\r\n"
            f"[{base}\\CA02]\r\n\"CRLFlags\"=dword:00000002\r\n")
    (exp,) = read_exports([write(tmp_path, "ca.reg", text, "utf-16")]).exports
    assert exp.kind == "reg" and {ca: [s.value for s in v] for ca, v in exp.ca_filters.items()} == {
        "CA01": [0x6F], "CA02": [None]}
    v = verdict_of(RIT, str(tmp_path / "ca.reg"))
    assert v.events[4882].status == "no" and "CA01: AuditFilter = 111" in v.events[4882].detail
    assert "CA02: AuditFilter = not set" in v.events[4886].detail and v.events[4886].status == "no"


def test_domain_sacl_script_quotes_are_balanced() -> None:
    """Every single-quoted PowerShell string closes on its line (a stray apostrophe would break the script)."""
    from dcsentry.audit.objectaudit import domain_sacl_ps1

    for line in domain_sacl_ps1().splitlines():
        code = re.sub(r'"[^"]*"', '""', line.split(" #", 1)[0]) if not line.lstrip().startswith("#") else ""
        assert code.replace("''", "").count("'") % 2 == 0, line
