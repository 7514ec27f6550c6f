"""Forward URLs: every form the docs show parses, and every malformed one is refused with its reason."""

from __future__ import annotations

import pytest

from dcsentry.sinks.forward import CefSink, open_sink, parse_forward_url
from dcsentry.sinks.syslog import TcpTransport

def test_parse_forward_urls() -> None:
    t = parse_forward_url("cef+udp://siem.example.com")
    assert (t.scheme, t.host, t.port) == ("cef+udp", "siem.example.com", 514)
    assert parse_forward_url("cef+tcp://10.0.0.5:1514").port == 1514
    assert parse_forward_url("cef+tls://[::1]").port == 6514 and parse_forward_url("cef+tls://[::1]").host == "::1"
    t = parse_forward_url("cef+tls://siem:6514?ca=/etc/ca.pem&cert=/c.pem&key=/k.pem&format=rfc3164")
    assert t.options == {"ca": "/etc/ca.pem", "cert": "/c.pem", "key": "/k.pem", "format": "rfc3164"}
    assert parse_forward_url("cef+file:///var/log/a.cef").path == "/var/log/a.cef"
    assert parse_forward_url("jsonl:///var/log/a.jsonl").path == "/var/log/a.jsonl"
    sink = open_sink("cef+tcp://127.0.0.1:9?format=rfc3164&queue=5")
    assert isinstance(sink, CefSink) and isinstance(sink.transport, TcpTransport)
    assert sink.envelope is not None and sink.envelope.fmt == "rfc3164"
    bare = open_sink("cef+file:///dev/null")
    assert isinstance(bare, CefSink) and bare.envelope is None  # bare CEF lines by default


@pytest.mark.parametrize("url,why", [
    ("syslog://siem:514", "unknown scheme 'syslog'"),
    ("siem:514", "unknown scheme 'siem'"),
    ("cef+udp://", "no host"),
    ("cef+tcp://siem:99999", "bad port"),
    ("cef+tcp://siem:abc", "bad port"),
    ("cef+tcp://siem:514/path", "has no path"),
    ("cef+tls://siem?cafile=/x", "unknown option 'cafile'"),
    ("cef+udp://siem?format=rfc5424&format=rfc3164", "given twice"),
    ("cef+udp://siem?format=json", "format must be one of rfc5424, rfc3164"),
    ("cef+udp://siem?ca=/x", "unknown option 'ca' for cef+udp"),
    ("cef+udp://siem?queue=0", "queue must be a positive integer"),
    ("cef+tls://siem?verify=maybe", "verify='maybe' must be true or false"),
    ("cef+tls://siem?key=/k.pem", "key= needs cert="),
    ("cef+tls://siem?ca=/nonexistent/ca.pem", "TLS setup failed"),
    ("cef+file://relative/path.cef", "three slashes"),
    ("jsonl:///var/log/", "no file name"),
    ("jsonl:///a.jsonl?format=cef", "unknown option 'format' for jsonl"),
])
def test_bad_forward_urls(url: str, why: str) -> None:
    with pytest.raises(ValueError, match="bad forward URL") as e:
        open_sink(url)
    assert why in str(e.value)
