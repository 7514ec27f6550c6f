"""`dcsentry audit --fix-script DIR`: the remediation files, read back by dcsentry's own readers.
Applying them (GPO audit.csv + GptTmpl.inf, or the .reg on the DC) must make every required event "yes"."""

from __future__ import annotations

import codecs
import json
from pathlib import Path

import pytest

from conftest import SHARED, run_cli
from dcsentry.audit.exports import read_exports
from dcsentry.audit.fixscript import AUDIT_CSV_HEADER, write_fix_script
from dcsentry.audit.verdict import decide

SAMPLES = SHARED / "audit-samples"
SPANISH = str(SAMPLES / "mpenaait-policy-es/audit.csv")  # every subcategory No Auditing
RIT_INF = str(SAMPLES / "rit-cyberforce-windows-scripts/dc-secpol.inf")  # outgoing NTLM = Deny all


def _required_statuses(paths: list[str]) -> dict[int, str]:
    read = read_exports(paths)
    assert not read.errors, read.errors
    v = decide(read.exports)
    return {e: x.status for e, x in v.events.items() if x.requirement.required}


def test_gpo_files_fix_everything(tmp_path: Path) -> None:
    before = decide(read_exports([SPANISH]).exports)
    assert before.missing_required()
    write_fix_script(tmp_path, before)
    after = _required_statuses([str(tmp_path / "audit.csv"), str(tmp_path / "GptTmpl.inf")])
    assert set(after.values()) == {"yes"}, after


def test_reg_file_fixes_8004_and_auditpol_sets_by_guid(tmp_path: Path) -> None:
    write_fix_script(tmp_path, decide(read_exports([SPANISH]).exports))
    reg = (tmp_path / "ntlm-audit.reg").read_bytes()
    assert reg.startswith(codecs.BOM_UTF16_LE) and b"\r\x00\n\x00" in reg
    (exp,) = read_exports([str(tmp_path / "ntlm-audit.reg")]).exports
    assert decide([exp]).events[8004].status == "yes"
    raw = (tmp_path / "auditpol.cmd").read_bytes()
    assert b"\r\n" in raw
    cmd = raw.decode("ascii")
    for guid in ("{0cce923f-69ae-11d9-bed3-505054503030}", "{0cce9237-69ae-11d9-bed3-505054503030}"):
        assert f"auditpol /set /subcategory:{guid} /success:enable /failure:enable" in cmd
    assert "/success:disable" not in cmd and "/failure:disable" not in cmd


def test_audit_csv_is_the_gpo_format(tmp_path: Path) -> None:
    write_fix_script(tmp_path, None)
    lines = (tmp_path / "audit.csv").read_bytes().decode("utf-8").split("\r\n")
    assert lines[0] == AUDIT_CSV_HEADER
    rows = [ln.split(",") for ln in lines[1:] if ln]
    assert all(r[0] == "" and r[1] == "System" and r[2].startswith("Audit ") and r[6] == "3" for r in rows)
    inf = (tmp_path / "GptTmpl.inf").read_bytes()
    assert inf.startswith(codecs.BOM_UTF16_LE)
    assert inf.decode("utf-16").startswith("[Unicode]\r\nUnicode=yes\r\n[Version]\r\nsignature=\"$CHICAGO$\"")


def test_outgoing_ntlm_deny_is_never_loosened(tmp_path: Path) -> None:
    v = decide(read_exports([RIT_INF]).exports)
    write_fix_script(tmp_path, v)
    assert "RestrictSendingNTLMTraffic" not in (tmp_path / "ntlm-audit.reg").read_bytes().decode("utf-16")
    assert "RestrictSendingNTLMTraffic" not in (tmp_path / "GptTmpl.inf").read_bytes().decode("utf-16")
    ps1 = (tmp_path / "ntlm-audit.ps1").read_text("utf-8-sig")
    assert "if ($now -eq 2)" in ps1 or "RestrictSendingNTLMTraffic" not in ps1
    # where the exports show it is not Deny all (here: a template that does not set it), the .reg sets Audit all
    write_fix_script(tmp_path / "again", decide(read_exports([str(tmp_path / "GptTmpl.inf")]).exports))
    reg = (tmp_path / "again" / "ntlm-audit.reg").read_bytes().decode("utf-16")
    assert '"RestrictSendingNTLMTraffic"=dword:00000001' in reg


def test_nothing_to_change_when_ready(tmp_path: Path) -> None:
    first = tmp_path / "first"
    write_fix_script(first, None)
    v = decide(read_exports([str(first / "audit.csv"), str(first / "GptTmpl.inf")]).exports)
    second = tmp_path / "second"
    write_fix_script(second, v)
    assert "auditpol /set" not in (second / "auditpol.cmd").read_text("ascii")
    assert "Nothing to change" in (second / "auditpol.cmd").read_text("ascii")


@pytest.mark.integration
def test_cli_fix_script_then_audit(tmp_path: Path) -> None:
    out = tmp_path / "fix"
    res = run_cli("audit", "--json", "--fix-script", str(out), SPANISH)
    assert res.returncode == 1 and json.loads(res.stdout)["missing_required"]
    assert sorted(p.name for p in out.iterdir()) == ["GptTmpl.inf", "README.txt", "audit.csv", "auditpol.cmd",
                                                     "ca-audit.cmd", "domain-sacl.ps1", "ntlm-audit.ps1",
                                                     "ntlm-audit.reg"]
    res = run_cli("audit", "--json", str(out / "audit.csv"), str(out / "GptTmpl.inf"))
    assert res.returncode == 0, res.stdout
    assert json.loads(res.stdout)["missing_required"] == []
