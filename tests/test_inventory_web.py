"""The inventory against a running `dcsentry serve`: `dcsentry inventory import` into its store, the
API and the console page show it, the detection process takes it within seconds (a decoy known
only by its imported DN raises on a 5136 of its object), and the replication allow-list is a
run-time setting beside honeytokens."""

from __future__ import annotations

import time

import pytest
from conftest import run_cli
from eventfactory import event_xml
from inventorykit import LDIFDE
from servekit import frame, send_tcp, wait_for
from test_dclog_honeytoken import ADMIN  # noqa: F401 (its import registers the 5136 field table)
from webkit import cli_token, client, start, wait_alert

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]
DECOY_DN = "CN=Decoy Service,OU=Service Accounts,DC=contoso,DC=local"


@pytest.fixture(scope="module")
def svc(tmp_path_factory: pytest.TempPathFactory):
    s = start(tmp_path_factory.mktemp("inv") / "data")
    yield s
    assert s.stop() == 0


@pytest.fixture(scope="module")
def imported(svc, tmp_path_factory: pytest.TempPathFactory):
    ldf = tmp_path_factory.mktemp("export") / "contoso.ldf"
    ldf.write_text(LDIFDE + "\n".join([
        "", "dn: " + DECOY_DN, "changetype: add", "objectClass: user", "userAccountControl: 512",
        "sAMAccountName: svc-decoy", ""]))
    r = run_cli("inventory", "import", str(ldf), "--data-dir", str(svc.data_dir))
    assert r.returncode == 0, r.stderr
    return ldf


def test_api_and_page_show_the_import_synthetic(svc, imported) -> None:
    with client(svc, cli_token(svc, "read-only", "auditor")) as ro:
        view = ro.get("/api/v1/inventory").json()
        s = view["summary"]
        assert (s["accounts"], s["dcs"], s["sensitive"], s["filename"]) == (7, 2, 1, "contoso.ldf")
        assert s["imported_by"].startswith("cli (")
        assert [a["name"] for a in ro.get("/api/v1/inventory", params={"kind": "dc"}).json()["accounts"]] == [
            "DC01$", "RODC01$"]
        one = ro.get("/api/v1/inventory", params={"q": "sql service"}).json()["accounts"]
        assert [a["name"] for a in one] == ["svc-sql"] and one[0]["enc_types"] == 24 and len(one[0]["spns"]) == 2
        assert ro.get("/api/v1/inventory", params={"kind": "nonsense"}).status_code == 422
        page = ro.get("/inventory", params={"kind": "sensitive"})
        assert page.status_code == 200 and 'id="inventory"' in page.text and "Administrator" in page.text
        assert "svc-sql" not in page.text and "<strong>2</strong> domain controllers" in page.text
        assert 'href="/inventory"' in ro.get("/alerts").text
    with client(svc) as anon:
        assert anon.get("/api/v1/inventory").status_code == 401


def test_detection_takes_the_import_and_allow_list_is_a_setting_synthetic(svc, imported) -> None:
    with client(svc, svc.token) as api:
        r = api.put("/api/v1/settings/honeytokens", json={"values": ["svc-decoy"], "comment": "decoy"})
        assert r.status_code == 200
        r = api.put("/api/v1/settings/replication_allowed", json={"values": ["MSOL_0a1b2c3d4e5f=10.0.0.40"],
                                                                  "comment": "Entra Connect"})
        assert r.status_code == 200 and r.json()["added"] == ["MSOL_0a1b2c3d4e5f=10.0.0.40"]
        view = api.get("/api/v1/settings").json()["settings"]["replication_allowed"]
        assert view["effective"] == ["MSOL_0a1b2c3d4e5f=10.0.0.40"] and "DCSync" in view["description"]
        assert 'id="setting-replication_allowed"' in api.get("/settings").text
        time.sleep(2.5)  # the processor looks every 2 s
        t = time.time() - 30
        xml = event_xml(5136, {
            "OpCorrelationID": "{5c3b7a7e-0000-4000-8000-00000000b001}", "AppCorrelationID": "-",
            "SubjectUserSid": "S-1-5-21-1004336348-1177238915-682003330-1104", "SubjectUserName": "eve",
            "SubjectDomainName": "CONTOSO", "SubjectLogonId": "0x5a3b1", "DSName": "contoso.local",
            "DSType": "%%14676", "ObjectDN": DECOY_DN, "ObjectGUID": "{6a1b0d32-7d3a-4c39-9a77-1f1e0b6a0c56}",
            "ObjectClass": "user", "AttributeLDAPDisplayName": "servicePrincipalName", "AttributeSyntaxOID": "2.5.5.12",
            "AttributeValue": "HTTP/decoy.contoso.local", "OperationType": "%%14674"}, t)
        send_tcp(svc.ports["tcp"], [frame(xml.encode())])
        alert = wait_alert(api, "the honeytoken alert from the imported DN", type="honeytoken-activity")
        assert alert["severity"] == "high"
        detail = api.get(f"/api/v1/alerts/{alert['id']}").json()["alert"]
        assert "servicePrincipalName" in detail["description"] and "eve" in detail["entities"]["accounts"]
        wait_for(lambda: svc.query("SELECT COUNT(*) FROM audit_log WHERE action = 'inventory.import'")[0][0] == 1,
                 what="the import audited")
