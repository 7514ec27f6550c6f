"""Forward URLs: every form the docs show parses, and every malformed one is refused with its reason."""

from __future__ import annotations

import pytest

from dcsentry.sinks.forward import CefSink, JsonSink, open_sink, parse_forward_url
from dcsentry.sinks.file import FileTransport
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
    ocsf = open_sink("ocsf:///var/log/a.ocsf.jsonl")
    assert isinstance(ocsf, JsonSink) and isinstance(ocsf.transport, FileTransport)
    assert ocsf.transport.rotate_bytes == 100 * 1024 ** 2 and ocsf.transport.keep == 5  # rotated by default
    assert open_sink("ecs:///a.jsonl?rotate=0").transport.rotate_bytes == 0
    assert open_sink("jsonl:///a.jsonl").transport.rotate_bytes == 0  # as before: logrotate's job
    assert open_sink("cef+file:///a.cef?rotate=1G&keep=2").transport.rotate_bytes == 1024 ** 3
    tcp = open_sink("ecs+tcp://127.0.0.1:5170")
    assert isinstance(tcp.transport, TcpTransport) and tcp.transport.framing == "lf"
    t = parse_forward_url("webhook+https://soar.example.com/hooks/a%20b?format=ocsf")
    assert (t.host, t.port, t.path, t.options) == ("soar.example.com", 443, "/hooks/a%20b", {"format": "ocsf"})
    assert parse_forward_url("webhook+http://[::1]:9000/").port == 9000


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
    ("ocsf:///a.jsonl?rotate=lots", "must be a size like 100M"),
    ("ecs:///a.jsonl?keep=0", "keep must be a positive integer"),
    ("ocsf+tcp://siem:5170?format=rfc5424", "unknown option 'format' for ocsf+tcp"),
    ("ecs+tls://siem:6514?key=/k.pem", "key= needs cert="),
    ("ocsf+udp://siem:514", "unknown scheme 'ocsf+udp'"),
    ("ecs://host/a.jsonl", "three slashes"),
])
def test_bad_forward_urls(url: str, why: str) -> None:
    with pytest.raises(ValueError, match="bad forward URL") as e:
        open_sink(url)
    assert why in str(e.value)
