"""The synthetic traffic generator's DC Security log events (reference/dc-log-alerts.md): they read
back in every format, every DC-log attack is labelled and shaped right, the everyday population is stable.
"""

from __future__ import annotations

import io
import json
from datetime import datetime, timedelta

from dcsentry.formats import ReadStats
from dcsentry.formats.jsonl import read_jsonl
from dcsentry.formats.xml import read_xml
from dcsentry.synth import ATTACK_TYPES, render
from synthkit import DC_LOG_IDS, GET_CHANGES_ALL, _by_label, as_bytes, assert_same, day_run, small_run


# -- the DC's wider Security log (reference/dc-log-alerts.md) ----------------------------------------------
def test_dc_log_events_read_back_in_every_format():
    events, _ = small_run()
    assert {e.event_id for e in events} >= DC_LOG_IDS
    cleared = next(e for e in events if e.event_id == 1102)
    x = render(cleared, "xml")
    assert "<UserData><LogFileCleared" in x and "<EventData>" not in x and 'Name="Microsoft-Windows-Eventlog"' in x
    assert json.loads(render(cleared, "winlogbeat"))["winlog"]["user_data"]["xml_name"] == "LogFileCleared"
    trust = next(e for e in events if e.event_id == 4706)
    assert json.loads(render(trust, "jsonl"))["Event"]["EventData"]["TdoDirection"] == 3
    for fmt, reader in (("xml", read_xml), ("jsonl", read_jsonl)):
        picked = tuple(e for e in events if e.event_id in DC_LOG_IDS)
        got = list(reader(io.BytesIO(as_bytes(picked, fmt)), f"x.{fmt}", ReadStats()))
        assert_same(got, picked)


def test_every_dc_log_attack_is_labelled_and_shaped_right():
    events, labels = day_run("all")
    by = {lb.type: lb for lb in labels}
    assert set(by) == set(ATTACK_TYPES)
    mine = _by_label(events)
    ev = {lb.type: mine[lb.id] for lb in labels}
    assert all(lb.entities and (lb.entities.get("source_ip") or lb.entities.get("ca")) for lb in labels
               if lb.type in ("dcsync", "kerberoasting", "asrep-roasting", "golden-ticket", "nopac", "log-cleared"))
    # spray -> success -> Kerberoast -> DCSync, from one workstation, in that order
    spray = next(lb for lb in labels if lb.variant == "kerberos-chain")
    roast, sync = by["kerberoasting"], by["dcsync"]
    assert spray.end < roast.start < roast.end < sync.start
    assert spray.entities["source_ip"] == roast.entities["source_ip"] == sync.entities["source_ip"]
    assert roast.entities["account"] in spray.entities["guessed_accounts"]
    tickets = [e for e in ev["kerberoasting"] if e.event_id == 4769]
    assert len({e.data["ServiceName"] for e in tickets}) >= 3
    assert {e.data["TicketEncryptionType"] for e in tickets} == {"0x17"}
    rights = [e for e in ev["dcsync"] if e.event_id == 4662]
    assert any(GET_CHANGES_ALL in e.data["Properties"] for e in rights)
    assert {e.data["AccessMask"] for e in rights} == {"0x100"}
    logon = next(e for e in ev["dcsync"] if e.event_id == 4624)
    assert {e.data["SubjectLogonId"] for e in rights} == {logon.data["TargetLogonId"]}
    assert logon.data["IpAddress"] == sync.entities["source_ip"] and logon.computer == rights[0].computer
    # noPac: computer created -> SPNs cleared -> renamed to the DC's name -> TGT as that name -> back -> S4U2self
    chain = [(e.event_id, e.data.get("NewTargetUserName") or e.data.get("TargetUserName"))
             for e in ev["nopac"] if e.event_id in (4741, 4742, 4781, 4768, 4769)]
    dc_name = by["nopac"].entities["impersonated"]
    computer = by["nopac"].entities["computer"]
    ids = [i for i, _ in chain]
    assert ids[ids.index(4741):] == [4741, 4742, 4781, 4768, 4781, 4769], chain
    assert (4781, dc_name) in chain and (4768, dc_name) in chain and (4781, computer) in chain
    assert next(e for e in ev["nopac"] if e.event_id == 4742).data["ServicePrincipalNames"] == "%%1793"
    assert [e for e in ev["nopac"] if e.event_id == 4769][-1].data["TicketOptions"] == "0x40800018"
    # shadow credentials, then a PKINIT TGT for the same account
    key = next(e for e in ev["shadow-credentials"] if e.event_id == 5136)
    pkinit = next(e for e in ev["shadow-credentials"] if e.event_id == 4768 and e.data["PreAuthType"] == "16")
    assert key.data["AttributeLDAPDisplayName"] == "msDS-KeyCredentialLink" and key.data["OperationType"] == "%%14674"
    assert key.data["AttributeValue"].startswith("B:828:") and key.time < pkinit.time
    assert pkinit.data["TargetUserName"] == by["shadow-credentials"].entities["target"]
    assert pkinit.data["CertThumbprint"]
    # the log cleared on a DC: 1102 (Security, UserData) and 104 (System)
    cleared = {e.event_id: e for e in ev["log-cleared"]}
    assert cleared[1102].computer.startswith("DC") and cleared[1102].provider == "Microsoft-Windows-Eventlog"
    assert cleared[104].channel == "System" and cleared[104].data["Channel"] == "System"
    # one-event shapes
    asrep = [e for e in ev["asrep-roasting"] if e.event_id == 4768]
    assert len(asrep) >= 2 and {e.data["PreAuthType"] for e in asrep} == {"0"}
    assert {e.event_id for e in ev["golden-ticket"]} == {4769}
    assert next(e for e in ev["overpass-the-hash"] if e.event_id == 4768).data["TicketEncryptionType"] == "0x17"
    pth = next(e for e in ev["pass-the-hash"] if e.event_id == 4624)
    assert (pth.data["AuthenticationPackageName"], pth.data["KeyLength"], pth.data["LogonType"]) == ("NTLM", "0", "3")
    assert any("BCKUPKEY" in e.data.get("ObjectName", "") for e in ev["dpapi-backup-key"])
    assert any(e.event_id == 4697 for e in ev["remote-service-installation"])
    attr = {t: {e.data["AttributeLDAPDisplayName"] for e in ev[t] if e.event_id == 5136} for t in ev}
    assert attr["dcsync-rights"] == attr["adminsdholder-change"] == attr["acl-change"] == {"nTSecurityDescriptor"}
    assert "msDS-AllowedToActOnBehalfOfOtherIdentity" in attr["rbcd-change"]
    assert "servicePrincipalName" in attr["spn-added-to-user"] and "primaryGroupID" in attr["primary-group-change"]
    assert "gPCMachineExtensionNames" in attr["gpo-change"]
    assert any("%%2096" in e.data.get("UserAccountControl", "") for e in ev["preauth-disabled"])
    assert {4765} <= {e.event_id for e in ev["sid-history"]}
    assert {4742, 5137, 5141, 4662} <= {e.event_id for e in ev["dcshadow"]}
    for t, eid in (("dsrm-password-change", 4794), ("audit-policy-disabled", 4719), ("trust-created", 4706),
                   ("adcs-config-change", 4885)):
        assert eid in {e.event_id for e in ev[t]}, t
    esc = {e.event_id: e for e in ev["adcs-san-mismatch"]}
    assert "SAN:upn=administrator@" in esc[4886].data["Attributes"] and esc[4768].data["PreAuthType"] == "16"


def test_everyday_dc_log_population_is_the_same_every_day():
    """What detectors learn (RC4 pairs, no-pre-auth host, replicating accounts, key writers, GPO editors) comes
    from the domain's fixed population; everyday tickets follow a TGT; NTLM logons carry a session key."""
    from dcsentry.synth import build_domain

    d = build_domain(11, 200, 2)
    events, _ = day_run("none")
    rc4 = {(e.data["IpAddress"].removeprefix("::ffff:"), e.data["ServiceName"]) for e in events
           if e.event_id == 4769 and e.data["TicketEncryptionType"] == "0x17"}
    assert rc4 == {(m.ip, s.sam) for m, s in d.rc4_clients}
    no_preauth = {(e.data["TargetUserName"], e.data["IpAddress"]) for e in events
                  if e.event_id == 4768 and e.data["PreAuthType"] == "0"}
    assert no_preauth == {(a.sam, f"::ffff:{d.legacy_host.ip}") for a in d.no_preauth}
    rc4_tgts = {e.data["TargetUserName"] for e in events
                if e.event_id == 4768 and e.data["TicketEncryptionType"] == "0x17"}
    assert rc4_tgts == {a.sam for a in d.no_preauth}
    replicators = {e.data["SubjectUserName"] for e in events if e.event_id == 4662}
    assert replicators == {m.account for m in d.dcs} | {d.msol.sam}
    writers = {(e.data["SubjectUserName"], e.data["AttributeLDAPDisplayName"]) for e in events if e.event_id == 5136}
    assert {w for w, a in writers if a == "msDS-KeyCredentialLink"} == {d.msol.sam}
    assert {w for w, a in writers if a == "versionNumber"} <= {a.sam for a in d.gpo_admins}
    assert {e.data["SubjectUserName"] for e in events if e.event_id == 4741} <= {d.join_account.sam}
    assert all(e.data["KeyLength"] == "128" for e in events
               if e.event_id == 4624 and e.data["AuthenticationPackageName"] == "NTLM")
    resets = [e for e in events if e.event_id == 4738 and e.data["PasswordLastSet"] != "-"]
    assert resets and all(e.data["UserAccountControl"] == "-" for e in events if e.event_id == 4738)
    assert sum(e.event_id == 4724 for e in events) == len(resets)
    refresh = [e for e in events if e.event_id == 4719]
    assert all(e.data["AuditPolicyChanges"] == "%%8449, %%8451" and e.data["SubjectUserSid"] == "S-1-5-18"
               for e in refresh)
    assert any(e.event_id == 4742 and e.data["PasswordLastSet"] != "-" for e in events)
    tgt: dict[tuple[str, str], datetime] = {}
    orphans = []
    for e in events:
        if e.event_id == 4768 and e.data["Status"] == "0x0":
            tgt[(e.data["TargetUserName"].lower(), e.data["IpAddress"])] = e.time
        elif e.event_id == 4769:
            t = tgt.get((e.data["TargetUserName"].split("@")[0].lower(), e.data["IpAddress"]))
            if t is None or e.time - t > timedelta(hours=10):
                orphans.append(e)
    assert not orphans, orphans[:3]

