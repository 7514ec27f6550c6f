"""CEF formatting and the syslog envelope, read back with an independent parser (PyPI `pycef`).

pycef returns extension values still escaped, so `unescape` below applies the CEF spec's three rules
(``\\\\``, ``\\=``, ``\\n``/``\\r``) to what pycef split out. pycef cannot parse a header that contains a
backslash or ``=`` (its header regex excludes them), so header escaping is checked on the exact string
and with a spec tokenizer instead.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

import pycef
import pytest

import dcsentry
from dcsentry.alerts import ALERT_TYPES, CEF_SEVERITY, Alert
from dcsentry.sinks.cef import CefFormatter, cef_time, escape_header, escape_value, format_cef, signature_of
from dcsentry.sinks.forward import CefSink
from dcsentry.sinks.file import FileTransport
from dcsentry.sinks.syslog import SyslogEnvelope, pri

T0 = datetime(2024, 3, 5, 14, 19, 2, 604541, tzinfo=timezone.utc)
NASTY = "a|b c=d e\\f\nsecond line\r\nthird\rfourth – Ünïcödé 漢字 🙂 k=v x\\=y trailing\\"
ORDER = ["start", "end", "app", "shost", "suser", "outcome", "msg", "cnt", "externalId",
         "cs1Label", "cs1", "cs2Label", "cs2", "cs3Label", "cs3"]


def make_alert(type_: str = "brute-force", **kw: object) -> Alert:
    at = ALERT_TYPES.get(type_)
    base: dict[str, object] = {
        "type": type_, "key": "client1", "title": at.title if at else "Custom",
        "description": "Something happened.", "severity": at.severity if at else "medium",
        "technique": at.technique if at else "", "start": T0, "end": T0 + timedelta(minutes=3), "count": 7,
        "accounts": ["CONTOSO\\jdoe"], "hosts": ["client1.contoso.com"], "outcome": "Failure"}
    base.update(kw)
    return Alert(**base)  # type: ignore[arg-type]


def unescape(value: str) -> str:
    """CEF extension unescaping (spec rules), applied to pycef's raw value."""
    return re.sub(r"\\(.)", lambda m: {"n": "\n", "r": "\r"}.get(m.group(1), m.group(1)), value)


def parse(line: str) -> dict[str, str]:
    rec = pycef.parse(line)
    assert rec is not None, line
    return rec


def ext_keys(line: str) -> list[str]:
    """Extension keys in order of appearance (an unescaped `=` only follows a key)."""
    ext = line.split("|", 7)[7]
    return re.findall(r"(?:^| )([A-Za-z0-9]+)=", ext)


def split_header(line: str) -> list[str]:
    """Spec tokenizer for the 8 header parts: fields are runs of escapes or non-`|` chars."""
    fields, pos = [], 0
    tok = re.compile(r"((?:\\.|[^\\|])*)\|")
    for _ in range(7):
        m = tok.match(line, pos)
        assert m, line
        fields.append(re.sub(r"\\(.)", r"\1", m.group(1)))
        pos = m.end()
    return fields + [line[pos:]]


@pytest.mark.parametrize("type_", sorted(ALERT_TYPES))
def test_every_alert_type_round_trips_through_pycef(type_: str) -> None:
    at = ALERT_TYPES[type_]
    alert = make_alert(type_, description=NASTY, revision=0)
    line = format_cef(alert, console_url="http://127.0.0.1:8080/")
    rec = parse(line)
    assert line.startswith("CEF:0|dcsentry|dcsentry|")
    assert rec["CEFVersion"] == "0"
    assert rec["DeviceVendor"] == "dcsentry" and rec["DeviceProduct"] == "dcsentry"
    assert rec["DeviceVersion"] == dcsentry.__version__
    assert rec["DeviceEventClassID"] == at.signature
    assert rec["Name"] == at.title
    assert rec["Severity"] == str(CEF_SEVERITY[at.severity])
    expected = {
        "start": "2024-03-05T14:19:02.6045410Z", "end": "2024-03-05T14:22:02.6045410Z", "app": at.app,
        "shost": "client1", "suser": "CONTOSO\\jdoe", "outcome": "Failure",
        "msg": NASTY.replace("\r\n", "\n"), "cnt": "7", "externalId": str(at.external_id),
        "url": f"http://127.0.0.1:8080/alerts/{alert.id}", "trigger": "new", "shostfqdn": "client1.contoso.com",
        "xdrDetectorId": at.xdr_id, "mitreTechnique": at.technique,
    }
    order = list(ORDER) + ["cs4Label", "cs4", "cs5Label", "cs5"]
    if not at.external_id:  # dcsentry's own types claim no Defender for Identity id
        del expected["externalId"]
        order.remove("externalId")
    if not at.xdr_id:
        del expected["xdrDetectorId"]
        order = [k for k in order if k not in ("cs4Label", "cs4")]
    header = {"CEFVersion", "DeviceVendor", "DeviceProduct", "DeviceVersion", "DeviceEventClassID", "Name",
              "DeviceName", "Severity", "DeviceSeverity"}
    assert set(rec) - header == set(expected)
    for key, value in expected.items():
        assert unescape(rec[key]) == value, key
    assert ext_keys(line) == order
    assert "\n" not in line and "\r" not in line


def test_start_has_seven_fraction_digits_and_z() -> None:
    assert cef_time(T0) == "2024-03-05T14:19:02.6045410Z"
    assert cef_time(datetime(2024, 1, 1, 0, 0, 0)) == "2024-01-01T00:00:00.0000000Z"  # naive = UTC
    plus2 = timezone(timedelta(hours=2))
    assert cef_time(datetime(2024, 1, 1, 2, 0, 0, 5, tzinfo=plus2)) == "2024-01-01T00:00:00.0000050Z"


def test_values_with_special_characters_in_every_field() -> None:
    acct = "DOM\\ü=ser|x"
    alert = make_alert(accounts=[acct], hosts=["ws-ü1"], outcome="success", protocol="Kerb=eros\\x",
                       description="line\\n not a newline = still text")
    rec = parse(format_cef(alert))
    assert unescape(rec["suser"]) == acct
    assert unescape(rec["shost"]) == "ws-ü1" and "shostfqdn" not in rec
    assert unescape(rec["app"]) == "Kerb=eros\\x"
    assert unescape(rec["msg"]) == "line\\n not a newline = still text"
    assert rec["outcome"] == "Success"


def test_update_trigger_ip_host_and_many_accounts() -> None:
    alert = make_alert(revision=3, hosts=["10.1.2.3", "dc1.contoso.com"], accounts=["a", "b", "c"],
                       outcome=None, count=1)
    line = format_cef(alert)
    rec = parse(line)
    assert rec["trigger"] == "update"
    assert rec["shost"] == "10.1.2.3" and "shostfqdn" not in rec
    assert "suser" not in rec and "outcome" not in rec
    assert rec["cnt"] == "1"
    assert ext_keys(line) == [k for k in ORDER if k not in ("suser", "outcome", "cs3Label", "cs3")] + [
        "cs4Label", "cs4", "cs5Label", "cs5"]  # brute force: its XDR detector id and ATT&CK technique


def test_no_hosts_no_description() -> None:
    rec = parse(format_cef(make_alert(hosts=[], description="")))
    assert "shost" not in rec and "msg" not in rec and "shostfqdn" not in rec


def test_unknown_type_still_formats_without_external_id() -> None:
    rec = parse(format_cef(make_alert("not-in-catalogue", title="Odd thing")))
    assert rec["DeviceEventClassID"] == "not-in-catalogue" and rec["Name"] == "Odd thing"
    assert "externalId" not in rec and "app" not in rec


def test_health_alert() -> None:
    alert = make_alert("SinkUnreachableMonitoringAlert", kind="health", title="Syslog sink unreachable",
                       severity="high", description="Could not reach cef+tcp://siem:514 for 5 minutes.\nLast: refused",
                       details={"external_id": 1105})
    line = CefFormatter("https://sensor.example:8443").format(alert)
    rec = parse(line)
    assert rec["DeviceEventClassID"] == rec["Name"] == "SinkUnreachableMonitoringAlert"
    assert rec["Severity"] == "10"
    assert ext_keys(line) == ["externalId", "cs1Label", "cs1", "msg"]
    assert rec["externalId"] == "1105"
    assert rec["url"] == f"https://sensor.example:8443/health/{alert.id}"
    assert unescape(rec["msg"]) == "Could not reach cef+tcp://siem:514 for 5 minutes.\nLast: refused"
    assert "start" not in rec
    # class name can also come from details (the alert type then stays dcsentry's own id)
    alert2 = make_alert("sink-unreachable", kind="health", details={"class": "SinkUnreachableMonitoringAlert"})
    assert signature_of(alert2) == "SinkUnreachableMonitoringAlert"
    assert "|SinkUnreachableMonitoringAlert|SinkUnreachableMonitoringAlert|5|cs1Label=url" in format_cef(alert2)


def test_header_escaping() -> None:
    assert escape_header("a|b\\c") == "a\\|b\\\\c"
    assert escape_header("x\r\ny\nz") == "x y z"
    assert escape_header("k=v") == "k=v"  # `=` is only special in the extension
    f = CefFormatter(vendor="Ven|dor", product="Pro\\duct", version="1|2")
    line = f.format(make_alert(title="Title | with \\ pipes\nand = signs ü"))
    assert line.startswith("CEF:0|Ven\\|dor|Pro\\\\duct|1\\|2|BruteForceSecurityAlert|"
                           "Title \\| with \\\\ pipes and = signs ü|5|start=")
    fields = split_header(line)
    assert fields[:7] == ["CEF:0", "Ven|dor", "Pro\\duct", "1|2", "BruteForceSecurityAlert",
                          "Title | with \\ pipes and = signs ü", "5"]
    assert fields[7].startswith("start=")


def test_value_escaping() -> None:
    assert escape_value("a\\b=c|d") == "a\\\\b\\=c|d"  # `|` needs no escape in the extension
    assert escape_value("1\r\n2\n3\r4") == "1\\n2\\n3\\r4"
    assert unescape(escape_value(NASTY)) == NASTY.replace("\r\n", "\n")


@pytest.mark.parametrize("severity,expected", [("low", 36), ("medium", 36), ("high", 35)])
def test_pri_is_auth_warning_or_error(severity: str, expected: int) -> None:
    assert pri(severity) == expected
    env = SyslogEnvelope(hostname="DC1", procid=42)
    assert env.wrap("CEF:0|x", severity, "Sig").startswith(f"<{expected}>1 ".encode())


def test_rfc5424_envelope_and_msgid_truncation() -> None:
    alert = make_alert("sensitive-group-addition", description="é\nx")
    sink = CefSink(FileTransport("/dev/null"), CefFormatter(), SyslogEnvelope(hostname="DC1", procid=6076))
    raw = sink.encode(alert).decode("utf-8")
    m = re.fullmatch(r"<(\d+)>1 (\S+) (\S+) (\S+) (\S+) (\S+) - (.*)", raw)
    assert m, raw
    assert m.group(1) == "36"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}\+00:00", m.group(2))
    assert m.group(3, 4, 5) == ("DC1", "CEF", "6076")
    assert m.group(6) == "AbnormalSensitiveGroupMembership"  # as in MDI's samples: 32 characters
    assert len(m.group(6)) == 32
    rec = parse(raw)
    assert rec["DeviceEventClassID"] == "AbnormalSensitiveGroupMembershipChangeSecurityAlert"
    assert unescape(rec["msg"]) == "é\nx"
    sink.close()


def test_rfc3164_envelope() -> None:
    env = SyslogEnvelope("rfc3164", hostname="DC1", procid=7)
    local = datetime(2024, 5, 3, 9, 5, 1).astimezone()  # a local wall-clock time
    raw = env.wrap("CEF:0|v|p|1|S|N|10|msg=x", "high", "S", now=local).decode()
    assert raw == "<35>May  3 09:05:01 DC1 CEF[7]: CEF:0|v|p|1|S|N|10|msg=x"


def test_envelope_header_tokens_are_printable_ascii() -> None:
    env = SyslogEnvelope(hostname="my host ü", app_name="", procid=1)
    raw = env.wrap("CEF:0|x", "low", "Sig with space", now=T0).decode()
    assert raw.startswith("<36>1 2024-03-05T14:19:02.604541+00:00 my_host__ - 1 Sig_with_space - ")
    with pytest.raises(ValueError, match="rfc5424 or rfc3164"):
        SyslogEnvelope("json")
