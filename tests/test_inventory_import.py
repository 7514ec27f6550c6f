"""The account inventory: exports parsed (LDIF from ldifde / ldapsearch, CSV from Export-Csv), what an
import tells the detectors (exists, DC, sensitive, DN), stored on both backends and replaced whole,
the CLI round trip (`inventory import` / `inventory list`, `hunt --inventory`), and a running
engine taking a new import and the replication allow-list from the store (settings_watch)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import corpus, jsonl_objects, run_cli
from dcsentry.activities.context import Inventory
from dcsentry.activities.inventory_import import (decode_text, parse_export, read_export, read_exports, sid_text,
                                                  sniff)
from dcsentry.config import Detection
from dcsentry.detectors.engine import DetectionEngine
from dcsentry.runtime.settings import Applied, SettingsWatch
from dcsentry.store.inventory import inventory_summary, list_inventory, load_inventory, save_inventory
from dcsentry.store.settings import put_setting
from dcsentry.store.store import open_store
from inventorykit import (DOMAIN_SID, GET_ADCOMPUTER_CSV, GET_ADDC_CSV, GET_ADUSER_CSV, LDAPSEARCH, LDIFDE, b64,
                          sid_bytes)
from storekit import pg_database, pg_url, store_url  # noqa: F401 (fixtures)


def by_name(res) -> dict:
    return {a.name: a for a in res.accounts}


# -- parsers ---------------------------------------------------------------------------------------------------------
def test_sid_from_binary() -> None:
    assert sid_text(sid_bytes(DOMAIN_SID + "-500")) == DOMAIN_SID + "-500"
    assert sid_text(sid_bytes("S-1-5-18")) == "S-1-5-18"
    assert sid_text(b"\x01\x05\x00") == "" and sid_text(b"S-1-5-21-1-2-3-4") == ""


def test_ldifde_export_synthetic() -> None:
    res = parse_export(LDIFDE)
    got = by_name(res)
    assert res.format == "ldif" and res.skipped == 1  # the group
    assert sorted(got) == ["Administrator", "DC01$", "RODC01$", "WS0042$", "jweiss", "svc-sql"]
    admin = got["Administrator"]
    assert (admin.sid, admin.sensitive, admin.dc, admin.kind, admin.disabled) == (
        DOMAIN_SID + "-500", True, False, "user", False)
    svc = got["svc-sql"]
    assert svc.spns == ["MSSQLSvc/sql01.contoso.local:1433-a-very-long-instance-name-that-ldifde-folds-over-two-lines",
                        "MSSQLSvc/sql01.contoso.local"], "folded lines are joined"
    assert (svc.enc_types, svc.upn, svc.dn) == (24, "svc-sql@contoso.local",
                                                 "CN=SQL Service,OU=Service Accounts,DC=contoso,DC=local")
    assert got["jweiss"].dn == "CN=Jürgen Weiß,OU=Staff,DC=contoso,DC=local" and got["jweiss"].disabled
    dc = got["DC01$"]
    assert (dc.dc, dc.kind, dc.dns_host_name, dc.uac) == (True, "computer", "dc01.contoso.local", 532480)
    assert got["RODC01$"].dc and got["RODC01$"].dn == "CN=RODC01,OU=Domain Controllers,DC=contoso,DC=local"
    assert not got["WS0042$"].dc and got["WS0042$"].kind == "computer"


def test_ldapsearch_output_with_comments_referral_and_trailer_synthetic() -> None:
    res = parse_export(LDAPSEARCH)
    assert sorted(by_name(res)) == ["MSOL_0a1b2c3d4e5f", "krbtgt"] and res.skipped == 0
    krbtgt = by_name(res)["krbtgt"]
    assert krbtgt.sensitive and krbtgt.disabled and krbtgt.sid == DOMAIN_SID + "-502"


def test_get_aduser_export_csv_synthetic() -> None:
    res = parse_export(GET_ADUSER_CSV.encode("ascii"))  # Windows PowerShell 5.1's Export-Csv default
    got = by_name(res)
    assert res.format == "csv" and sorted(got) == ["Administrator", "ajones", "oldtemp", "svc-backup"]
    assert got["Administrator"].sensitive and got["Administrator"].spns == []  # the collection's type name is no SPN
    assert got["ajones"].sid == DOMAIN_SID + "-1104" and got["ajones"].upn == "ajones@contoso.local"
    assert got["oldtemp"].disabled and not got["ajones"].disabled
    assert got["svc-backup"].spns == ["BKP/bkp01.contoso.local", "BKP/bkp01"] and got["svc-backup"].enc_types == 28


def test_get_adcomputer_semicolons_and_dc_export_synthetic() -> None:
    comp = by_name(parse_export(GET_ADCOMPUTER_CSV.encode("utf-8-sig")))
    assert sorted(comp) == ["DC01$", "DC02$", "FS01$"]
    assert comp["DC01$"].dc and comp["DC02$"].dns_host_name == "dc02.contoso.local" and not comp["FS01$"].dc
    dcs = parse_export(GET_ADDC_CSV.encode("utf-16"))  # `Export-Csv -Encoding Unicode`
    (dc3,) = dcs.accounts
    assert (dc3.name, dc3.dc, dc3.kind, dc3.dns_host_name) == ("DC03$", True, "computer", "dc03.contoso.local")


def test_ldif_record_without_its_blank_line_synthetic() -> None:
    text = "dn: CN=a,DC=x\nobjectClass: group\nsAMAccountName: g\ndn: CN=b,DC=x\nobjectClass: user\nsAMAccountName: b\n"
    res = parse_export(text)
    assert [a.name for a in res.accounts] == ["b"] and res.skipped == 1 and res.accounts[0].dn == "CN=b,DC=x"


def test_encodings_and_sniffing() -> None:
    assert decode_text(LDIFDE.encode("utf-16-le")) == LDIFDE  # ldifde -u (no BOM)
    assert decode_text("é".encode("cp1252")) == "é"
    assert sniff("version: 1\ndn: CN=x") == "ldif"
    with pytest.raises(ValueError, match="neither an LDIF"):
        parse_export(b"hello,world\n1,2\n")


def test_read_export_refuses_a_file_without_accounts(tmp_path: Path) -> None:
    p = tmp_path / "groups.ldf"
    p.write_text("dn: CN=G,DC=x\nobjectClass: group\nsAMAccountName: G\n")
    with pytest.raises(ValueError, match="no user or computer account"):
        read_export(p)


# -- what an import tells the detectors --------------------------------------------------------------------------------
def test_inventory_load_is_authoritative_synthetic() -> None:
    inv = Inventory()
    inv.learn("seen-in-stream")
    assert inv.exists("nobody") is None
    inv.load(parse_export(LDIFDE).accounts)
    assert inv.exists("svc-sql") and inv.exists("CONTOSO\\Administrator") and inv.exists("nobody") is False
    assert inv.exists("seen-in-stream"), "what the stream taught stays"
    assert inv.is_dc("dc01.contoso.local") and inv.is_dc("RODC01$") and not inv.is_dc("WS0042")
    assert inv.is_sensitive("administrator") and not inv.is_sensitive("svc-sql")
    assert inv.get(sid=DOMAIN_SID + "-1107").name == "svc-sql"
    assert inv.by_dn["cn=sql service,ou=service accounts,dc=contoso,dc=local"] == "svc-sql"
    inv.replace_imported(parse_export(LDAPSEARCH).accounts)
    assert inv.exists("svc-sql") is False and inv.exists("krbtgt") and inv.exists("seen-in-stream")
    assert not inv.by_dn.get("cn=sql service,ou=service accounts,dc=contoso,dc=local")


# -- the store -------------------------------------------------------------------------------------------------------
def test_store_round_trip_and_replace(store_url: str, tmp_path: Path) -> None:  # noqa: F811
    store = open_store(store_url, tmp_path)
    try:
        summary = save_inventory(store, parse_export(LDIFDE).accounts, "tester", "contoso.ldf", "ldif")
        assert summary == {"filename": "contoso.ldf", "format": "ldif", "accounts": 6, "computers": 3, "dcs": 2,
                           "sensitive": 1}
        s = inventory_summary(store)
        assert (s["accounts"], s["users"], s["dcs"], s["disabled"], s["imported_by"], s["filename"]) == (
            6, 3, 2, 1, "tester", "contoso.ldf")
        assert [a["name"] for a in list_inventory(store, kind="dc")] == ["DC01$", "RODC01$"]
        assert [a["name"] for a in list_inventory(store, q="service accounts")] == ["svc-sql"]
        assert [a["name"] for a in list_inventory(store, q=DOMAIN_SID.lower() + "-500")] == ["Administrator"]
        assert list_inventory(store, q="50%_!") == []
        inv = load_inventory(store)
        assert inv is not None and inv.imported and inv.is_dc("DC01") and inv.get("svc-sql").spns[1].startswith("MSSQL")
        save_inventory(store, parse_export(GET_ADUSER_CSV).accounts, "tester", "users.csv", "csv")
        assert [a["name"] for a in list_inventory(store)] == ["Administrator", "ajones", "oldtemp", "svc-backup"]
        audit = store.query("SELECT detail FROM audit_log WHERE action = 'inventory.import' ORDER BY at")
        assert [json.loads(d)["replaced"] for (d,) in audit] == [0, 6]
    finally:
        store.close()


def test_running_engine_takes_a_new_import_and_the_allow_list(tmp_path: Path) -> None:
    """What `serve` does between batches: the watch sees the import's version, the engine's
    inventory is replaced in place (the DC set its detectors hold stays the same object)."""
    store = open_store(f"sqlite:///{tmp_path / 's.db'}", tmp_path)
    try:
        engine = DetectionEngine(Detection())
        dcs = engine.builder.dcs
        watch = SettingsWatch(store, Detection(), every=0)
        applied = Applied(watch, engine)
        watch.poll(True)
        assert applied.sync() is False and engine.ctx.inventory.imported is False
        save_inventory(store, parse_export(GET_ADCOMPUTER_CSV).accounts, "tester", "computers.csv")
        put_setting(store, "replication_allowed", ["MSOL_0a1b2c3d4e5f", "SVC-BACKUP=10.0.0.7"], "tester")
        watch.poll(True)
        assert applied.sync() is True
        assert engine.ctx.inventory.exists("FS01$") and engine.ctx.inventory.is_dc("DC02")
        assert engine.builder.dcs is dcs and {"DC01", "DC02"} <= dcs
        assert engine.cfg.replication_allowed == ["MSOL_0a1b2c3d4e5f", "SVC-BACKUP=10.0.0.7"]
        assert applied.sync() is False
    finally:
        store.close()


def test_detector_with_configure_gets_the_run_time_lists() -> None:
    """A detector keeping its own copy of a list (the DCSync allow-list) is handed the new settings."""

    class Keeps:
        seen: list[str] = []

        def configure(self, cfg: Detection) -> None:
            Keeps.seen = list(cfg.replication_allowed)

        def on_activity(self, act):  # noqa: ANN001, ANN201
            return ()

    engine = DetectionEngine(Detection())
    engine.detectors.append(Keeps())
    engine.update_lists(Detection(replication_allowed=["MSOL_1"]))
    assert Keeps.seen == ["MSOL_1"]


# -- CLI ---------------------------------------------------------------------------------------------------------------
@pytest.mark.integration
def test_cli_import_and_list_through_the_store_synthetic(tmp_path: Path) -> None:
    ldf = tmp_path / "contoso.ldf"
    ldf.write_bytes(LDIFDE.encode("utf-16"))
    db = tmp_path / "store.db"
    r = run_cli("inventory", "import", str(ldf), "--store", str(db))
    assert r.returncode == 0, r.stderr
    out = r.stdout.decode()
    assert "6 account(s)" in out and "2 DC(s)" in out and "1 other record(s) skipped" in out
    assert "dc01.contoso.local, rodc01.contoso.local" in out
    r = run_cli("inventory", "list", "--store", f"sqlite:///{db}", "--json")
    assert r.returncode == 0, r.stderr
    rows = jsonl_objects(r.stdout)
    assert [x["name"] for x in rows] == ["Administrator", "DC01$", "jweiss", "RODC01$", "svc-sql", "WS0042$"]
    assert "6 account(s): 3 user(s), 3 computer(s), 2 DC(s), 1 sensitive" in r.stderr.decode()
    r = run_cli("inventory", "list", "--store", str(db), "--kind", "sensitive")
    assert r.stdout.decode().split()[:2] == ["Administrator", "user"]
    bad = tmp_path / "x.txt"
    bad.write_text("not an export\n")
    r = run_cli("inventory", "import", str(bad), "--store", str(db))
    assert r.returncode == 1 and b"neither an LDIF" in r.stderr
    dry = run_cli("inventory", "import", str(ldf), "--dry-run")
    assert dry.returncode == 0 and b"stored" not in dry.stdout


@pytest.mark.integration
def test_cli_takes_users_computers_and_dcs_together_synthetic(tmp_path: Path) -> None:
    """The PowerShell route gives one file per cmdlet: imported (and hunted with) as one inventory."""
    files = {"users.csv": GET_ADUSER_CSV, "computers.csv": GET_ADCOMPUTER_CSV,
             "dcs.csv": GET_ADDC_CSV.replace("DC03", "FS01").replace("dc03", "fs01")}
    for name, text in files.items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    paths = [str(tmp_path / n) for n in files]
    res = read_exports(paths)
    got = by_name(res)
    assert len(got) == 7 and got["FS01$"].dc and got["FS01$"].sid == DOMAIN_SID + "-1200"
    assert got["FS01$"].dn == "CN=FS01,OU=Servers,DC=contoso,DC=local", "the first export's DN is kept"
    db = tmp_path / "s.db"
    r = run_cli("inventory", "import", *paths, "--store", str(db))
    assert r.returncode == 0 and "7 account(s) in users.csv, computers.csv, dcs.csv (CSV)" in r.stdout.decode()
    assert b"3 DC(s)" in r.stdout
    r = run_cli("hunt", str(corpus("evtx/deepbluecli/smb-password-guessing-security.evtx")), "--jsonl",
                "--inventory", paths[0], "--inventory", paths[1])
    assert r.returncode == 0, r.stderr


@pytest.mark.integration
def test_hunt_with_inventory_knows_the_honeytoken_dn(tmp_path: Path) -> None:
    """A real 5136 on honey-pot1's object; the decoy listed by a name its CN does not show: only the
    imported DN ties the two (the export is hand-written, the recording real)."""
    rel = "dc-log/evtx/evtx-to-mitre-attack/ID4738,5136-SPN set on user account.evtx"
    ldif = tmp_path / "offsec.ldf"
    ldif.write_text("\n".join([
        "dn: CN=honey-pot1,OU=Test-OU,OU=OFFSEC-COMPANY,DC=offsec,DC=lan", "objectClass: user",
        "sAMAccountName: hp-decoy",
        "objectSid:: " + b64(sid_bytes("S-1-5-21-4230534742-2542757381-3142984815-4242")), ""]))
    conf = tmp_path / "c.toml"
    conf.write_text('[detection]\nhoneytokens = ["hp-decoy"]\n')
    args = ("hunt", str(corpus(rel)), "--jsonl", "--config", str(conf))
    without = [a for a in jsonl_objects(run_cli(*args).stdout) if a["type"] == "honeytoken-activity"]
    r = run_cli(*args, "--inventory", str(ldif))
    assert r.returncode == 0, r.stderr
    alerts = [a for a in jsonl_objects(r.stdout) if a["type"] == "honeytoken-activity"]
    assert without == [] and len(alerts) == 1 and alerts[0]["severity"] == "high"
    assert "servicePrincipalName" in alerts[0]["description"]
