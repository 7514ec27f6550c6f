"""`dcsentry audit` on the real exports of ../shared/audit-samples: every entry of expected.json
(file(s) -> verdict per event) must come out exactly, through the library and through the CLI."""

from __future__ import annotations

import json
from typing import Any

import pytest

from conftest import SHARED, run_cli
from dcsentry.audit.exports import read_exports
from dcsentry.audit.verdict import decide

SAMPLES = SHARED / "audit-samples"
EXPECTED: list[dict[str, Any]] = json.loads((SAMPLES / "expected.json").read_text(encoding="utf-8"))


def test_expected_covers_every_sample_file() -> None:
    listed = {f for e in EXPECTED for f in e["files"]}
    on_disk = {str(p.relative_to(SAMPLES)) for p in SAMPLES.rglob("*") if p.is_file()} - {"README.md", "expected.json"}
    assert listed == on_disk


@pytest.mark.parametrize("entry", EXPECTED, ids=lambda e: "+".join(e["files"]))
def test_real_export_verdicts(entry: dict[str, Any]) -> None:
    read = read_exports([str(SAMPLES / f) for f in entry["files"]])
    assert not read.errors and not read.skipped
    verdict = decide(read.exports)
    got = {eid: verdict.events[int(eid)].status for eid in entry["events"]}
    assert got == entry["events"], entry["why"]
    for eid, status in got.items():
        v = verdict.events[int(eid)]
        if status == "yes":
            assert v.fix == [] and v.blind == []
        elif int(eid) != 7045:
            assert v.fix, f"{eid} is {status} but says nothing to change"
            assert v.blind, f"{eid} is {status} but names no blind detection"


@pytest.mark.integration
@pytest.mark.parametrize("entry", [EXPECTED[0], EXPECTED[10], EXPECTED[12], EXPECTED[17]],
                         ids=lambda e: "+".join(e["files"]))
def test_cli_json_matches_expected(entry: dict[str, Any]) -> None:
    res = run_cli("audit", "--json", *(str(SAMPLES / f) for f in entry["files"]))
    doc = json.loads(res.stdout)
    for eid, status in entry["events"].items():
        e = doc["events"][eid]
        assert e["status"] == status
        assert set(e) >= {"status", "fix", "blind"}
        assert all(isinstance(x, str) for x in e["fix"] + e["blind"])
    missing = [eid for eid, s in entry["events"].items() if s == "no"]
    assert sorted(doc["missing_required"]) == sorted(missing)
    assert res.returncode == (1 if missing else 0) == doc["exit_status"]


def test_spanish_backup_is_read_by_guid_and_number() -> None:
    """Windows-1252, translated header with ', ' separators, 'Sistema', 'Opción:' rows: every row by GUID."""
    read = read_exports([str(SAMPLES / "mpenaait-policy-es/audit.csv")])
    (exp,) = read.exports
    assert exp.kind == "auditpol-backup" and exp.machine == "AIT-MPENA"
    cv = exp.subcategories["{0cce923f-69ae-11d9-bed3-505054503030}"]
    assert [s.value for s in cv] == [0] and cv[0].text == "Sin auditoría"
    v = decide(read.exports).events[4776]
    assert v.status == "no" and "No Auditing" in v.detail
    assert v.fix == ['Computer configuration > Policies > Windows Settings > Security Settings > Advanced Audit Policy '
                     'Configuration > Audit Policies > Account Logon > "Audit Credential Validation" = Success and '
                     'Failure']


def test_deny_ntlm_settings_are_warned() -> None:
    """The RIT DC template denies NTLM in the domain and outgoing from the DC: 8004 audit is on, but say so."""
    read = read_exports([str(SAMPLES / "rit-cyberforce-windows-scripts/dc-secpol.inf")])
    v = decide(read.exports)
    assert v.events[8004].status == "yes"
    text = "\n".join(v.warnings)
    assert "NTLM authentication in this domain = 7 (Deny all)" in text
    assert "Outgoing NTLM traffic to remote servers = 2 (Deny all)" in text
    assert "dc-secpol.inf:" in text  # names the line


@pytest.mark.integration
def test_gpo_directory_combines_audit_csv_and_template() -> None:
    """A GPO folder: audit.csv decides the subcategories, GptTmpl.inf the NTLM option."""
    res = run_cli("audit", "--json", str(SAMPLES / "nextinstall-gpo-audit"))
    doc = json.loads(res.stdout)
    assert {k: v["status"] for k, v in doc["events"].items() if v["required"]} == {
        "4776": "yes", "8004": "yes", "4728": "yes", "4729": "yes", "4732": "yes", "4733": "yes", "4756": "yes",
        "4757": "yes", "7045": "yes"}
    assert res.returncode == 0
    assert {i["format"] for i in doc["inputs"]} == {"gpo-audit-csv", "inf"}
