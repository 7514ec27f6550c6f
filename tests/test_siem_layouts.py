"""Every catalogue event rendered in every SIEM layout reads back as the same WindowsEvent as its XML.

The renderings are synthetic: built here from the layouts of ../shared/reference/siem-input-formats.md
and the field lists / sample XML of ../shared/reference/events.md, with the message text written
the way Windows renders it (English templates, upper-case hex). The reference defines layouts for
4776 only; for the other events each layout carries what it can (message text for QRadar, Splunk
and Snare; `ad.<Name>` raw EventData for CEF; positional EventData for RSA, dcsentry's extension).
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from xml.sax.saxutils import escape, quoteattr

import msgspec
import pytest

from dcsentry.catalogue import CATALOGUE, CORE_IDS
from dcsentry.formats.siem import BadMessage, NotWindows, UnknownLayout, parse_message, parse_with_layout
from dcsentry.formats.syslog import split_header
from dcsentry.formats.xml import parse_event_xml
from dcsentry.model import Origin, WindowsEvent

T = datetime(2024, 3, 4, 9, 0, 0, 123000, tzinfo=timezone.utc)
SID = "S-1-5-21-3457937927-2839227994-823803824"
GROUPS = {4728: ("Domain Admins", "512"), 4729: ("Domain Admins", "512"), 4732: ("Account Operators", "548"),
          4733: ("Account Operators", "548"), 4756: ("Enterprise Admins", "519"), 4757: ("Schema Admins", "518")}
KEYWORDS = {4776: "0x8010000000000000", 8004: "0x8000000000000000", 7045: "0x8080000000000000"}
TASKS = {4776: 14336, 8004: 2, 7045: 0}


def sample_data(eid: int) -> dict[str, str]:
    """EventData of the events.md samples (4732's for every group event, with the group varied)."""
    if eid == 4776:
        return {"PackageName": "MICROSOFT_AUTHENTICATION_PACKAGE_V1_0", "TargetUserName": "John Smith",
                "Workstation": "WIN81", "Status": "0xc0000234"}
    if eid == 8004:
        return {"SChannelName": "VICTIM_PC", "UserName": "backup", "DomainName": "NULL",
                "WorkstationName": "WIN-SHKRDLDI338", "SChannelType": "2"}
    if eid == 7045:
        return {"ServiceName": "Vendor Agent", "ImagePath": r'"C:\Program Files\Vendor\agent.exe" -k run',
                "ServiceType": "user mode service", "StartType": "demand start", "AccountName": "LocalSystem"}
    name, rid = GROUPS[eid]
    return {"MemberName": "CN=Eve Adams,CN=Users,DC=contoso,DC=local", "MemberSid": f"{SID}-500",
            "TargetUserName": name, "TargetDomainName": "Builtin" if rid == "548" else "CONTOSO",
            "TargetSid": f"S-1-5-32-{rid}" if rid == "548" else f"{SID}-{rid}", "SubjectUserSid": f"{SID}-1104",
            "SubjectUserName": "dadmin", "SubjectDomainName": "CONTOSO", "SubjectLogonId": "0x3031e",
            "PrivilegeList": "-"}


def xml_of(eid: int) -> str:
    spec = CATALOGUE[eid]
    data = sample_data(eid)
    rows = "".join(f"<Data Name={quoteattr(n)}>{escape(data[n])}</Data>" for n in spec.fields)
    qual = ' Qualifiers="16384"' if eid == 7045 else ""
    return (f'<Event xmlns="http://schemas.microsoft.com/win/2004/08/events/event"><System>'
            f'<Provider Name={quoteattr(spec.provider)}/><EventID{qual}>{eid}</EventID><Version>0</Version>'
            f"<Level>0</Level><Task>{TASKS.get(eid, 13826)}</Task><Keywords>{KEYWORDS.get(eid, '0x8020000000000000')}"
            f"</Keywords><TimeCreated SystemTime='{T:%Y-%m-%dT%H:%M:%S.%f}0Z'/><EventRecordID>174856</EventRecordID>"
            f"<Channel>{escape(spec.channel)}</Channel><Computer>DC01.contoso.local</Computer><Security/></System>"
            f"<EventData>{rows}</EventData></Event>")


# ---- the rendered message text, as Windows writes it -----------------------------------------------

_GROUP_TEXT = ("{title}.\r\n\r\nSubject:\r\n\tSecurity ID:\t\t{SubjectUserSid}\r\n\tAccount Name:\t\t{SubjectUserName}"
               "\r\n\tAccount Domain:\t\t{SubjectDomainName}\r\n\tLogon ID:\t\t{SubjectLogonId}\r\n\r\nMember:\r\n\t"
               "Security ID:\t\t{MemberSid}\r\n\tAccount Name:\t\t{MemberName}\r\n\r\nGroup:\r\n\tSecurity ID:\t\t"
               "{TargetSid}\r\n\tGroup Name:\t\t{TargetUserName}\r\n\tGroup Domain:\t\t{TargetDomainName}\r\n\r\n"
               "Additional Information:\r\n\tPrivileges:\t\t{PrivilegeList}")
TEXTS = {
    4776: ("The computer attempted to validate the credentials for an account.\r\n\r\nAuthentication Package:\t"
           "{PackageName}\r\nLogon Account:\t{TargetUserName}\r\nSource Workstation:\t{Workstation}\r\nError Code:\t"
           "{Status}"),
    8004: ("Domain Controller Blocked Audit: Audit NTLM authentication to this domain controller.\r\nSecure Channel "
           "name: {SChannelName}\r\nUser name: {UserName}\r\nDomain name: {DomainName}\r\nWorkstation name: "
           "{WorkstationName}\r\nSecure Channel type: {SChannelType}\r\n\r\nAudit NTLM authentication requests within "
           "the domain {DomainName} that would be blocked if the security policy Network Security: Restrict NTLM: "
           "NTLM authentication in this domain is set to Deny all domain accounts."),
    7045: ("A service was installed in the system.\r\n\r\nService Name:  {ServiceName}\r\nService File Name:  "
           "{ImagePath}\r\nService Type:  {ServiceType}\r\nService Start Type:  {StartType}\r\nService Account:  "
           "{AccountName}"),
}


def message_text(ev: WindowsEvent) -> str:
    shown = {k: ("0x" + v[2:].upper() if re.fullmatch(r"0x[0-9a-f]+", v) else v) for k, v in ev.data.items()}
    template = TEXTS.get(ev.event_id, _GROUP_TEXT)
    return template.format(title=CATALOGUE[ev.event_id].title, **shown)


def snare_flat(text: str) -> str:
    return re.sub(r"[\r\n\t]", " ", text)


def qradar_flat(text: str) -> str:
    return " ".join(text.split())


def cef_escape(v: str) -> str:
    return v.replace("\\", "\\\\").replace("=", "\\=").replace("\r", "\\r").replace("\n", "\\n")


# ---- one renderer per layout ----------------------------------------------------------------------

def ms(t: datetime) -> int:
    return round(t.timestamp() * 1000)


def render_rsa(ev: WindowsEvent, sep: str = "\n") -> bytes:
    values = [ev.data[k] for k in ("TargetUserName", "Workstation", "Status")] if ev.event_id == 4776 else \
        list(ev.data.values())
    stamp = ev.time.strftime("%Y-%b-%d %H:%M:%S.%f")[:-3]
    fields = ["RsaSA", stamp, str(ev.event_id), ev.provider, ev.channel, ev.computer, *values]
    return ("<13>Mar  4 09:00:00 siem01 " + sep.join(fields)).encode()


def render_cef(ev: WindowsEvent) -> bytes:
    head = (f"CEF:0|Microsoft|Microsoft Windows||{ev.provider}:{ev.event_id}|{CATALOGUE[ev.event_id].title}.|Low| "
            f"externalId={ev.event_id} cat={ev.channel} rt={ms(ev.time)} dhost={ev.computer}")
    if ev.event_id == 4776:  # the MDI layout: no raw EventData, labelled custom strings
        d = ev.data
        ext = (f" shost={d['Workstation']} duser={cef_escape(d['TargetUserName'])} cs2=Security cs3={ev.provider} "
               f"cs4={d['Status'].upper().replace('X', 'x')} cs3Label=EventSource cs4Label=Reason or Error Code")
    else:  # the Windows SmartConnector: raw EventData as ad.<Name>
        ext = "".join(f" ad.{k}={cef_escape(v)}" for k, v in ev.data.items())
    return (head + ext).encode()


def render_qradar(ev: WindowsEvent) -> bytes:
    kv = {"AgentDevice": "WindowsLog", "AgentLogFile": ev.channel, "Source": ev.provider, "Computer": ev.computer,
          "User": "", "Domain": "", "EventID": ev.event_id, "EventIDCode": ev.event_id,
          "EventType": 16 if ev.is_failure_audit else 8, "EventCategory": ev.task, "RecordNumber": ev.record_id,
          "TimeGenerated": ms(ev.time), "TimeWritten": ms(ev.time), "Message": qradar_flat(message_text(ev))}
    return ("<13>Mar  4 09:00:00 10.1.1.1 " + "\t".join(f"{k}={v}" for k, v in kv.items())).encode()


def render_splunk(ev: WindowsEvent) -> bytes:
    kw = "Audit Failure" if ev.is_failure_audit else "Audit Success"
    lines = [ev.time.strftime("%m/%d/%Y %I:%M:%S %p"), f"LogName={ev.channel}", f"EventCode={ev.event_id}",
             f"SourceName={ev.provider}", f"TimeGenerated={ev.time:%Y%m%d%H%M%S.%f}-000", f"ComputerName={ev.computer}",
             f"RecordNumber={ev.record_id}", f"Keywords={kw}", f"Message={message_text(ev)}"]
    return "\r\n".join(lines).encode()


def render_snare(ev: WindowsEvent) -> bytes:
    kind = ("Failure Audit" if ev.is_failure_audit else "Success Audit") if ev.channel == "Security" else "Information"
    fields = ["MSWinEventLog", "1", ev.channel, "6862", ev.time.strftime("%a %b %d %H:%M:%S %Y"), str(ev.event_id),
              ev.provider, "N/A", "N/A", kind, ev.computer, "Category", "", snare_flat(message_text(ev)), "15"]
    return ("<14>Mar  4 09:00:00 DC01 " + "\t".join(fields)).encode()


def render_winlogbeat(ev: WindowsEvent) -> bytes:
    doc = {"@timestamp": ev.time.isoformat().replace("+00:00", "Z"),
           "winlog": {"event_id": ev.event_id, "provider_name": ev.provider, "channel": ev.channel,
                      "computer_name": ev.computer, "record_id": ev.record_id, "event_data": ev.data}}
    return b"<13>1 2024-03-04T09:00:05Z shipper winlogbeat - - - " + msgspec.json.encode(doc)


def render_xml(ev: WindowsEvent) -> bytes:
    return b"<13>1 2024-03-04T09:00:05Z wec01 forwarder - - [meta x=\"a\\]b\"] " + xml_of(ev.event_id).encode()


RENDERERS = {"rsa": render_rsa, "rsa-literal": lambda ev: render_rsa(ev, "\\n"), "cef": render_cef,
             "qradar": render_qradar, "splunk": render_splunk, "snare": render_snare,
             "winlogbeat": render_winlogbeat, "event-xml": render_xml}
CARRIES_KEYWORDS = {"qradar", "splunk", "snare", "event-xml"}
LAYOUT_NAMES = {"rsa-literal": "rsa", "winlogbeat": "json"}


@pytest.mark.parametrize("layout", sorted(RENDERERS))
@pytest.mark.parametrize("eid", sorted(CORE_IDS))
def test_synthetic_layout_gives_the_xml_event(eid: int, layout: str) -> None:
    ref = parse_event_xml(xml_of(eid))
    raw = RENDERERS[layout](ref)
    name, got = parse_with_layout(raw, Origin("synthetic", 1))
    assert name == LAYOUT_NAMES.get(layout, layout)
    assert parse_message(raw, Origin("synthetic", 1)) == got
    assert (got.event_id, got.provider, got.channel, got.computer) == \
           (ref.event_id, ref.provider, ref.channel, ref.computer)
    assert got.data == ref.data
    precision = timedelta(seconds=1) if layout == "snare" else timedelta(milliseconds=1)
    assert abs(got.time - ref.time) < precision and got.time.tzinfo is not None
    if layout in CARRIES_KEYWORDS and ref.channel == "Security":
        assert got.keywords == ref.keywords
    assert got.origin == Origin("synthetic", 1)


# ---- header and time rules ------------------------------------------------------------------------

NOW = datetime(2024, 1, 10, tzinfo=timezone.utc)


def test_rfc3164_header_year_and_tag() -> None:
    h, body = split_header("<13>Dec 31 23:59:58.250 dc01 winlog[42]: CEF:0|x", NOW)
    assert (h.pri, h.facility, h.severity, h.host, h.app) == (13, 1, 5, "dc01", "winlog")
    assert h.time == datetime(2023, 12, 31, 23, 59, 58, 250000, tzinfo=timezone.utc) and body == "CEF:0|x"
    h, _ = split_header("<13>Jan  9 10:00:00 dc01 x", NOW)
    assert h.time == datetime(2024, 1, 9, 10, tzinfo=timezone.utc)


def test_rfc5424_header_with_structured_data_and_offset() -> None:
    h, body = split_header('<165>1 2024-03-04T10:00:00.5+01:00 dc01 app 12 ID7 [a b="]\\]"][c d="e"] \ufeffRsaSA', NOW)
    assert (h.version, h.host, h.app, body) == (1, "dc01", "app", "RsaSA")
    assert h.time == datetime(2024, 3, 4, 9, 0, 0, 500000, tzinfo=timezone.utc)


def test_headerless_and_original_address() -> None:
    h, body = split_header("CEF:0|Microsoft|", NOW)
    assert (h.pri, h.time, body) == (None, None, "CEF:0|Microsoft|")
    h, body = split_header("<13>Original Address=10.9.9.9 Jan 01 08:00:00 dc7 AgentDevice=WindowsLog", NOW)
    assert (h.original_address, h.host, body) == ("10.9.9.9", "dc7", "AgentDevice=WindowsLog")


@pytest.mark.parametrize("stamp, want", [
    ("20240304090000.123456-000", datetime(2024, 3, 4, 9, 0, 0, 123456)),
    ("20240304100000.123456+060", datetime(2024, 3, 4, 9, 0, 0, 123456)),  # CIM: minutes east of UTC
    ("20240304040000.000000-300", datetime(2024, 3, 4, 9, 0, 0)),
    ("1709542800123", datetime(2024, 3, 4, 9, 0, 0, 123000)),
])
def test_splunk_and_qradar_time_generated(stamp: str, want: datetime) -> None:
    ev = render_splunk(parse_event_xml(xml_of(4776))).replace(b"20240304090000.123000-000", stamp.encode())
    assert parse_message(ev).time == want.replace(tzinfo=timezone.utc)


def test_payload_time_wins_over_header_time() -> None:
    raw = render_rsa(parse_event_xml(xml_of(4776)))
    assert raw.startswith(b"<13>Mar  4 09:00:00 ") and parse_message(raw).time == T


def test_rsa_doc_typo_and_padding() -> None:
    raw = b"<Syslog Header>RsaSA\\n2015-May-19 09:07:09\\n4776\\nMicrosoft-Windows-Security-Auditing\\nSecurity\\DC1" \
          b".contoso.com\\nYYYYY$\\nMMMMM \\n0xC000006A"
    ev = parse_message(raw)
    assert (ev.computer, ev.data["Workstation"], ev.data["Status"]) == ("DC1.contoso.com", "MMMMM", "0xc000006a")


# ---- what is refused, and how --------------------------------------------------------------------

@pytest.mark.parametrize("raw, error, reason", [
    (b"<13>Mar  4 09:00:00 host sshd[1]: session opened", UnknownLayout, "no SIEM layout"),
    (b"", BadMessage, "empty"),
    (b"CEF:0|Palo Alto|PAN-OS|1|end|x|3| src=1.2.3.4", NotWindows, "Palo Alto"),
    (b"<14>Oct  1 15:10:28 fw LEEF:1.0|Palo Alto Networks|PAN-OS|11|deny|", NotWindows, "LEEF"),
    (b"CEF:0|Microsoft|Microsoft Windows||x|y", BadMessage, "pipe-separated"),
    (b"CEF:0|Microsoft|Microsoft Windows||Microsoft-Windows-Security-Auditing:4776|n|Low| rt=yesterday",
     BadMessage, "unreadable rt"),
    (b"RsaSA\\n2015-May-19 09:07:09\\n4776\\nprov\\nSecurity\\nDC1\\nuser", BadMessage, "4776 needs"),
    (b"RsaSA\\nsoon\\n4776\\nprov\\nSecurity\\nDC1\\nu\\nw\\n0x0", BadMessage, "unreadable event time"),
    (b"AgentDevice=WindowsLog\tEventID=4776\tMessage=x", BadMessage, "Computer="),
    (b"AgentDevice=WindowsLog\tComputer=DC1\tEventID=4776\tMessage=nothing useful", BadMessage, "Message="),
    (b"AgentDevice=NetApp\tComputer=DC1\tEventID=4776", NotWindows, "NetApp"),
    (b"EventCode=banana\r\nComputerName=DC1\r\nMessage=x", BadMessage, "no event id"),
    (b"MSWinEventLog\t1\tSecurity\t1\tnot a date", BadMessage, "14 needed"),
    (b'{"payload": "<13>Jan 1 00:00:00 fw something", "logSourceType": "Cisco ASA"}', NotWindows, "Cisco ASA"),
    (b'{"payload": "<13>Jan 1 00:00:00 dc gibberish", "logSourceType": "Microsoft Windows Security Event Log"}',
     BadMessage, "no known layout"),
    (b'{"level": "info", "msg": "hello"}', UnknownLayout, "no known Windows layout"),
    (b"{not json", BadMessage, "malformed JSON"),
    (b"<13>1 - host app - - - <Event><System>", BadMessage, "event XML"),
])
def test_refusals_say_why(raw: bytes, error: type, reason: str) -> None:
    with pytest.raises(error, match=re.escape(reason)) as info:
        parse_message(raw)
    assert isinstance(info.value, ValueError)


def test_not_windows_is_an_unknown_layout() -> None:
    assert issubclass(NotWindows, UnknownLayout) and issubclass(BadMessage, ValueError)


def test_non_catalogue_events_are_kept_without_fields() -> None:
    raw = render_snare(parse_event_xml(xml_of(4776))).replace(b"\t4776\t", b"\t4688\t")
    ev = parse_message(raw)
    assert (ev.event_id, ev.data, ev.computer) == (4688, {}, "DC01.contoso.local")


def test_splunk_classic_names_and_provider_alias() -> None:
    raw = (b"03/04/2024 09:00:00 AM\nLogName=Security\nSourceName=Microsoft Windows security auditing.\n"
           b"EventCode=4776\nEventType=0\nType=Information\nComputerName=DC01.contoso.local\nTaskCategory=Credential "
           b"Validation\nKeywords=Audit Failure\nMessage=" + message_text(parse_event_xml(xml_of(4776))).encode())
    ev = parse_message(raw)
    assert (ev.provider, ev.keywords, ev.time) == ("Microsoft-Windows-Security-Auditing", "0x8010000000000000",
                                                   T.replace(microsecond=0))
    assert ev.data == sample_data(4776)


def test_cef_labels_and_standard_keys_for_group_events() -> None:
    """Without ad.* keys a group event is read from labelled custom strings and suser/duser/duid."""
    raw = (b"CEF:0|Microsoft|Microsoft Windows||Microsoft-Windows-Security-Auditing:4728|A member was added|Low| "
           b"externalId=4728 rt=1709542800123 dvchost=DC01.contoso.local dhost=ignored suser=dadmin sntdom=CONTOSO "
           b"suid=0x3031E duser=CN\\=Eve,CN\\=Users,DC\\=contoso duid=S-1-5-21-1-2-3-1601 cs1=Domain Admins "
           b"cs1Label=Group Name cs2=S-1-5-21-1-2-3-512 cs2Label=Group Security ID")
    ev = parse_message(raw)
    assert ev.computer == "DC01.contoso.local" and ev.channel == "Security"
    assert ev.data == {"MemberName": "CN=Eve,CN=Users,DC=contoso", "MemberSid": "S-1-5-21-1-2-3-1601",
                       "TargetUserName": "Domain Admins", "TargetSid": "S-1-5-21-1-2-3-512",
                       "SubjectUserName": "dadmin", "SubjectDomainName": "CONTOSO", "SubjectLogonId": "0x3031e"}
