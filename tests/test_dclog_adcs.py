"""AD CS: adcs-san-mismatch (4886/4887/4888) and adcs-config-change (4882-4900, 5136 on the PKI
objects), with the CA's audit-filter health alert. Only 4885 has a public recording; the rest are
synthetic, built from the reference's layouts and the values it quotes from the ESC recordings."""

from __future__ import annotations


import pytest

from conftest import corpus
from dclog_directorykit import value
from dclog_systemkit import ADMIN, CA, TEMPLATE_ESC1, TEMPLATE_SAFE, ca_change, of, request, run
from eventfactory import DOMAIN_SID, make
from dcsentry.activities.dclog.certsvc import issued_names, parse_attributes
from dcsentry.config import Detection
from dcsentry.formats import ReadStats
from dcsentry.hunt import hunt

ESC15_ATTRS = ("CertificateTemplate:WebServer\r\nSAN:upn=administrator@essos.local\r\n"
               "ApplicationPolicies:1.3.6.1.5.5.7.3.2\r\nccm:braavos.essos.local")
PKI = "CN=Public Key Services,CN=Services,CN=Configuration,DC=contoso,DC=local"




# -- parsing -----------------------------------------------------------------------------------------------
def test_attributes_lines_and_flattened() -> None:
    assert parse_attributes(ESC15_ATTRS) == ("WebServer", ["upn=administrator@essos.local"], ["1.3.6.1.5.5.7.3.2"],
                                             "braavos.essos.local")
    flat = "CertificateTemplate:ESC1 SAN:upn=administrator@essos.local&dns=dc01.essos.local ccm:x.essos.local"
    assert parse_attributes(flat)[:2] == ("ESC1", ["upn=administrator@essos.local", "dns=dc01.essos.local"])
    assert parse_attributes("-") == ("", [], [], "")


def test_issued_names_both_layouts() -> None:
    san = "Other Name:\r\n     Principal Name=administrator@essos.local\r\nDNS Name=esc14a.essos.local\r\n" \
          "Other Name:\r\n     DS Object Guid=04 10 aa bb"
    assert issued_names(san) == ["upn=administrator@essos.local", "dns=esc14a.essos.local"]
    assert issued_names("Other Name: Principal Name=administrator") == ["upn=administrator"]


# -- SAN mismatch ----------------------------------------------------------------------------------------
def test_synthetic_esc1_request_and_issue_are_one_high_alert() -> None:
    attrs = "CertificateTemplate:ESC1\r\nSAN:upn=administrator@essos.local"
    alerts = run([request(4886, 0, "ESSOS\\missandei", attributes=attrs, template="ESC1"),
                  request(4887, 1, "ESSOS\\missandei", attributes=attrs, template="ESC1",
                          san="Other Name:\r\n     Principal Name=administrator@essos.local")])
    [a] = of(alerts, "adcs-san-mismatch")
    assert a.severity == "high" and a.count == 1 and len(a.evidence) == 2 and a.outcome == "issued"
    assert a.details["esc"] == ["ESC1/ESC6"] and a.details["requested_san"] == ["upn=administrator@essos.local"]
    assert a.accounts == ["ESSOS\\missandei"] and a.dcs == ["CA01"] and a.technique == "T1649"
    assert "certutil -revoke" in a.description and "administrator@essos.local" in a.description


@pytest.mark.parametrize(("requester", "attrs"), [
    ("ESSOS\\missandei", "CertificateTemplate:User\nSAN:upn=missandei@essos.local"),  # its own UPN
    ("ESSOS\\missandei", "CertificateTemplate:User\nSAN:email=missandei@essos.local"),
    ("ESSOS\\MEEREEN$", "CertificateTemplate:Machine\nSAN:dns=meereen.essos.local"),  # its own DNS name
    ("ESSOS\\missandei", "CertificateTemplate:User"),  # no SAN at all
])
def test_synthetic_own_identity_is_quiet(requester: str, attrs: str) -> None:
    assert not run([request(4886, 0, requester, attributes=attrs)])


def test_synthetic_computer_claiming_another_host() -> None:
    [a] = run([request(4886, 0, "ESSOS\\MEEREEN$", attributes="SAN:dns=braavos.essos.local", template="Machine")])
    assert a.severity == "medium"  # an unknown name: maybe a web alias
    [a] = run([request(4886, 0, "ESSOS\\MEEREEN$", attributes="SAN:dns=dc01.essos.local", template="Machine")],
              dcs=["DC01"])
    assert a.severity == "high"


def test_synthetic_esc9_issued_bare_upn_without_requested_san() -> None:
    """obs. ESC9: viserys.targaryen's UPN was set to `administrator`; the CA issues it."""
    [a] = run([request(4887, 0, "ESSOS\\viserys.targaryen", attributes="CertificateTemplate:ESC9", template="ESC9",
                       san="Other Name:\r\n     Principal Name=administrator")])
    assert a.severity == "high" and a.details["esc"] == ["ESC9/ESC10"]
    assert a.details["issued_san"] == ["upn=administrator"]


def test_synthetic_issued_upn_other_than_sam_is_quiet_unless_another_account() -> None:
    ev = request(4887, 0, "CONTOSO\\jsmith", san="Other Name:\r\n     Principal Name=john.smith@contoso.com")
    assert not run([ev])
    [a] = run([request(4887, 0, "CONTOSO\\jsmith", san="Other Name:\r\n     Principal Name=administrator@contoso.com")],
              accounts=["administrator"])
    assert a.severity == "high"


def test_synthetic_esc15_application_policies() -> None:
    [a] = run([request(4886, 0, "ESSOS\\missandei", attributes=ESC15_ATTRS, template="WebServer")])
    assert set(a.details["esc"]) == {"ESC1/ESC6", "ESC15"} and a.severity == "high"
    assert a.details["xdr_id"] == "xdr_SuspectedCertificateEnrollmentESC15"
    assert a.hosts == ["braavos.essos.local"] and "Client Authentication" in a.description


def test_synthetic_esc15_without_san_still_alerts() -> None:
    [a] = run([request(4886, 0, "ESSOS\\missandei", template="WebServer",
                       attributes="CertificateTemplate:WebServer\nApplicationPolicies:1.3.6.1.4.1.311.20.2.1")])
    assert a.details["esc"] == ["ESC15"] and a.severity == "high"


@pytest.mark.parametrize(("transport", "level", "esc"), [("RPC", "Connect", "ESC11"), ("DCOM", "Privacy", "ESC8")])
def test_synthetic_dc_certificate_over_ntlm_is_a_relay(transport: str, level: str, esc: str) -> None:
    [a] = run([request(4886, 0, "ESSOS\\MEEREEN$", template="DomainController", auth="NTLM", level=level,
                       transport=transport, attributes="CertificateTemplate:DomainController")], dcs=["MEEREEN"])
    assert a.details["esc"] == [esc] and a.severity == "high" and a.details["mdi_id"] == 2432


def test_synthetic_dc_template_by_dc_over_kerberos_is_quiet_but_not_by_others() -> None:
    ev = request(4886, 0, "ESSOS\\MEEREEN$", template="DomainController",
                 attributes="CertificateTemplate:DomainController")
    assert not run([ev], dcs=["MEEREEN"])
    assert run([ev], dcs=["DC01"])[0].details["esc"] == ["ESC8"]  # a known DC set without MEEREEN
    [a] = run([request(4886, 0, "ESSOS\\missandei", template="KerberosAuthentication")])
    assert "requested by a user" in a.description


def test_synthetic_allow_list_requester_and_template() -> None:
    attrs = "CertificateTemplate:IntuneUser\nSAN:upn=someone@contoso.com"
    for entry in ("CONTOSO\\ndes-svc", "ndes-svc:IntuneUser", "*:IntuneUser"):
        cfg = Detection()
        cfg.tampering.adcs_allowed = [entry]
        assert not run([request(4886, 0, "CONTOSO\\ndes-svc", attributes=attrs, template="IntuneUser")], cfg), entry
    cfg = Detection()
    cfg.tampering.adcs_allowed = ["ndes-svc:OtherTemplate"]
    assert run([request(4886, 0, "CONTOSO\\ndes-svc", attributes=attrs, template="IntuneUser")], cfg)


def test_synthetic_denied_request_is_reported_denied() -> None:
    [a] = run([request(4888, 0, "ESSOS\\missandei", attributes="SAN:upn=administrator@essos.local")])
    assert a.outcome == "denied" and "denied" in a.description


def test_synthetic_several_requests_grow_one_alert() -> None:
    evs = [request(4886, i, "ESSOS\\missandei", attributes=f"SAN:upn=user{i}@essos.local", request_id=str(20 + i))
           for i in range(3)]
    [a] = run(evs)
    assert a.count == 3 and len(a.details["requested_san"]) == 3


# -- configuration changes ---------------------------------------------------------------------------------
def test_audit_filter_recording_raises_change_and_ca_health() -> None:
    alerts, _ = hunt([str(corpus("dc-log/evtx/evtx-to-mitre-attack/ID4885,4876,4877,5123,5124-ADCS PKI OCSP.evtx"))],
                     Detection(), ReadStats())
    [a] = of(alerts, "adcs-config-change")
    [h] = of(alerts, "health:ca-audit-filter")
    assert a.severity == "medium" and a.details["audit_filter"] == 111 and "CA security settings" in a.description
    assert h.kind == "health" and h.dcs == ["CDCWPKI01"] and "certutil -setreg CA\\AuditFilter 127" in h.description
    assert a.details["health_alert"] == h.id and h.details["security_alert"] == a.id


def test_synthetic_audit_filter_restored_closes_health_and_full_filter_is_quiet() -> None:
    assert not run([ca_change(4885, 0, AuditFilter="127")])
    alerts = run([ca_change(4885, 0, AuditFilter="111"), ca_change(4885, 60, AuditFilter="127")])
    [h] = of(alerts, "health:ca-audit-filter")
    assert h.status == "closed" and "back to 127" in h.description


def test_synthetic_ca_permissions_settings_and_rows() -> None:
    alerts = run([ca_change(4882, 0, SecuritySettings="Allow\tCONTOSO\\eve\tManage CA"),
                  ca_change(4890, 1, EnableRestrictedPermissions="0", RestrictedPermissions="-"),
                  ca_change(4896, 2, TableId="1", Filter="RequestID <= 20", RowsDeleted="20")])
    [a] = of(alerts, "adcs-config-change")
    assert a.count == 3 and a.severity == "medium" and a.accounts == ["CONTOSO\\dadmin"]
    text = a.description
    assert "ESC7" in text and "manager restrictions" in text and "20 rows deleted" in text


def test_synthetic_template_update_to_esc1_is_high() -> None:
    fields = {"TemplateInternalName": "ESC1Vuln", "TemplateVersion": "100.3", "TemplateSchemaVersion": "2",
              "TemplateOID": "1.3.6.1.4.1.311.21.8.1.2",
              "TemplateDSObjectFQDN": f"CN=ESC1Vuln,CN=Certificate Templates,{PKI}",
              "DCDNSName": "DC01.contoso.local"}
    [a] = run([ca_change(4899, 0, NewTemplateContent=TEMPLATE_ESC1, OldTemplateContent=TEMPLATE_SAFE, **fields)])
    assert a.severity == "high" and "ESC1" in a.description
    [a] = run([ca_change(4899, 0, NewTemplateContent=TEMPLATE_SAFE, OldTemplateContent=TEMPLATE_SAFE, **fields)])
    assert a.severity == "medium"
    assert not run([ca_change(4898, 0, TemplateContent=TEMPLATE_ESC1, SecurityDescriptor="O:SY", **fields)])


def test_synthetic_ldap_edits_of_pki_objects() -> None:
    tpl = f"CN=ESC1Vuln,CN=Certificate Templates,{PKI}"
    [a] = run([value(0, tpl, "pKICertificateTemplate", "msPKI-Certificate-Name-Flag", "1", syntax="2.5.5.9")])
    assert a.type == "adcs-config-change" and a.severity == "high" and "supplies the subject" in a.description
    oid = f"CN=1234.ABCD,CN=OID,{PKI}"
    [a] = run([value(0, oid, "msPKI-Enterprise-Oid", "msDS-OIDToGroupLink", "CN=Admins,DC=contoso,DC=local",
                     syntax="2.5.5.1")])
    assert a.severity == "high" and "ESC13" in a.description
    [a] = run([value(0, tpl, "pKICertificateTemplate", "displayName", "Renamed")])
    assert a.severity == "medium" and a.accounts == ["CONTOSO\\Administrator"]
    assert not [x for x in run([value(0, "CN=eve,CN=Users,DC=contoso,DC=local", "user", "displayName", "x")])
                if x.type == "adcs-config-change"]


def test_ca_host_key_and_actor() -> None:
    [a] = run([ca_change(4896, 0, TableId="1", Filter="-", RowsDeleted="3", actor=ADMIN)])
    assert a.key == f"{CA.split('.')[0]}|dadmin" and a.details["mdi_id"] == 2433


def test_synthetic_certificate_then_pkinit_tgt_for_the_claimed_identity_is_marked_used() -> None:
    pkinit = make(4768, {"TargetUserName": "administrator", "TargetDomainName": "ESSOS.LOCAL",
                         "TargetSid": f"{DOMAIN_SID}-500", "ServiceName": "krbtgt", "ServiceSid": f"{DOMAIN_SID}-502",
                         "TicketOptions": "0x40800010", "Status": "0x0", "TicketEncryptionType": "0x12",
                         "PreAuthType": "16", "IpAddress": "::ffff:10.0.0.66", "IpPort": "50123",
                         "CertIssuerName": "ESSOS-CA", "CertSerialNumber": "1a00", "CertThumbprint": "ab"}, 120)
    attrs = "CertificateTemplate:ESC1\r\nSAN:upn=administrator@essos.local"
    [a] = of(run([request(4886, 0, "ESSOS\\missandei", attributes=attrs), pkinit]), "adcs-san-mismatch")
    assert a.details["used"] and "10.0.0.66" in a.description and len(a.evidence) == 2
    [a] = of(run([request(4886, 0, "ESSOS\\missandei", attributes="SAN:upn=other@essos.local"), pkinit]),
             "adcs-san-mismatch")
    assert "used" not in a.details


def test_synthetic_dc_template_right_after_an_ntlm_logon_of_that_dc_on_the_ca_is_esc8() -> None:
    """Older 4886 layouts carry no AuthenticationService: the CA's own 4624 tells of the relay."""
    logon = make(4624, {"SubjectUserSid": "S-1-0-0", "TargetUserSid": f"{DOMAIN_SID}-1001",
                        "TargetUserName": "MEEREEN$", "TargetDomainName": "ESSOS", "TargetLogonId": "0x9a1b2",
                        "LogonType": "3", "LogonProcessName": "NtLmSsp ", "AuthenticationPackageName": "NTLM",
                        "WorkstationName": "KALI", "LmPackageName": "NTLM V2", "KeyLength": "128",
                        "IpAddress": "10.0.0.66", "IpPort": "40000"}, 0, computer=CA)
    req = request(4886, 2, "ESSOS\\MEEREEN$", template="DomainController", auth="-", level="-", transport="-",
                  attributes="CertificateTemplate:DomainController")
    [a] = run([logon, req], dcs=["MEEREEN"])
    assert a.details["esc"] == ["ESC8"] and "10.0.0.66" in a.description
    assert not run([req], dcs=["MEEREEN"])
