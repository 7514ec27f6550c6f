"""The intake's fast decoding paths (issue #18) read exactly what the general ones read.

formats/syslog.py matches the usual RFC 5424 header in one regex and reads the header time only
when asked; formats/siem detects the built-in layouts without a call per layout; siem/cef.py
splits the CEF header in one match and the extension with `re.split`. Each shortcut is checked
here against the code it replaced (kept below as the reference), on every SIEM sample line, the
wire benchmark's three renderings, header variants and mutated messages.
"""

from __future__ import annotations

import io
import random
import re
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dcsentry.formats import siem, syslog
from dcsentry.formats.siem import BadMessage, cef, messagetext, parse_with_layout
from dcsentry.formats.syslog import SyslogHeader, iter_messages, split_header
from dcsentry.model import Origin

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT.parent / "shared" / "siem-samples"
NOW = datetime(2024, 6, 1, tzinfo=UTC)


# ---- the replaced code, as it was --------------------------------------------------------------

def ref_split_header(text: str, now: datetime | None = None) -> tuple[dict[str, Any], str]:
    """split_header before the fast path and the lazy time (the header as a dict of its parts)."""
    h: dict[str, Any] = dict.fromkeys(("pri", "time", "host", "app", "version", "original_address"))
    i = 0
    m = syslog._PRI.match(text)
    if m and int(m.group(1)) <= 191:
        h["pri"] = int(m.group(1))
        i = m.end()
    m = syslog._PLACEHOLDER.match(text, i)
    if m:
        return h, text[m.end():].lstrip()
    m = syslog._V5424.match(text, i) if h["pri"] is not None else None
    if m and (m.group(2) == "-" or syslog._ISO.fullmatch(m.group(2))):
        h["version"] = int(m.group(1))
        ts = syslog._ISO.fullmatch(m.group(2))
        h["time"] = syslog._iso(ts) if ts else None
        h["host"] = None if m.group(3) == "-" else m.group(3)
        h["app"] = None if m.group(4) == "-" else m.group(4)
        j = syslog._skip_sd(text, m.end(6) + 1)
        return h, text[j:].lstrip(" ").removeprefix("\ufeff").lstrip()
    while i < len(text) and text[i] == " ":
        i += 1
    m = syslog._ORIGINAL.match(text, i)
    if m:
        h["original_address"] = m.group(1)
        i = m.end()
    m = syslog._TS3164.match(text, i) or syslog._ISO.match(text, i)
    if m is None:
        return h, text[i:].lstrip()
    h["time"] = syslog._iso(m) if m.re is syslog._ISO else syslog._rfc3164_time(m, now or datetime.now(UTC))
    i = m.end()
    while i < len(text) and text[i] in " \t":
        i += 1
    host = re.match(r"[^\s]+", text[i:])
    if host and "=" not in host.group(0) and not host.group(0).startswith(("CEF:", "LEEF:", "RsaSA", "MSWinEventLog")):
        h["host"] = host.group(0)
        i += host.end()
        if i < len(text) and text[i] == " ":
            tag = syslog._TAG.match(text, i + 1)
            if tag:
                h["app"] = tag.group(1)
                i = tag.end()
    return h, text[i:].lstrip()


def ref_split_cef(text: str) -> tuple[list[str], dict[str, str]]:
    """split_cef before the one-match header and `re.split`."""
    cuts: list[int] = []
    while len(cuts) < 7:
        m = cef._FIELD.match(text, cuts[-1] if cuts else 0)
        if m is None:
            break
        cuts.append(m.end())
    if len(cuts) < 7:
        raise BadMessage(f"CEF: header has {len(cuts) + 1} of its 8 pipe-separated parts")
    bounds = [0, *cuts]
    header = [cef._unescape(text[bounds[i]:bounds[i + 1] - 1]) for i in range(7)]
    ext_text = text[cuts[6]:]
    keys = list(cef._EXT_KEY.finditer(ext_text))
    ext: dict[str, str] = {}
    for i, k in enumerate(keys):
        end = keys[i + 1].start() if i + 1 < len(keys) else len(ext_text)
        ext.setdefault(cef._LONG.get(k.group(1), k.group(1)), cef._unescape(ext_text[k.end():end].rstrip()))
    return header, ext


def ref_fields_from_text(event_id: int, text: str) -> dict[str, str]:
    """messagetext.fields_from_text before the literal-first pattern and `re.split`."""
    if event_id not in messagetext.TEMPLATES or not text:
        return {}
    _, headers, table = messagetext._compiled(event_id)
    labels = {label for _, entries in messagetext.TEMPLATES[event_id] for label, _, _ in entries} | headers
    alternation = "|".join(re.escape(x) for x in sorted(labels, key=len, reverse=True))
    matches = list(re.compile(rf"(?<![^\s.])({alternation}):").finditer(text))
    out: dict[str, str] = {}
    section: str | None = None
    for i, m in enumerate(matches):
        label = m.group(1)
        if label in headers:
            section = label
            continue
        hit = table.get((section, label)) or table.get((None, label))
        if hit is None or hit[0] in out:
            continue
        end = matches[i + 1].start() if i + 1 < len(matches) else len(text)
        out[hit[0]] = messagetext._clip(text[m.end():end], hit[1])
    return out


_NEVER = re.compile(r"(?!)")


def _header_dict(h: SyslogHeader) -> dict[str, Any]:
    return {a: getattr(h, a) for a in ("pri", "time", "host", "app", "version", "original_address")}


# ---- inputs --------------------------------------------------------------------------------------

BODIES = [
    b'{"Event":{"System":{"EventID":4776,"Computer":"dc1"},"EventData":{"Status":"0xC000006A"}}}',
    b"CEF:0|Microsoft|Microsoft Windows||Microsoft-Windows-Security-Auditing:4776|x|Low| externalId=4776 dhost=dc1 "
    b"duser=bob shost=WS1 cs4Label=Reason or Error Code cs4=0xC000006A",
    b"CEF:0|Micro\\|soft|Microsoft Windows||S:4624|a\\\\b|Low| externalId=4624 dhost=dc1 ad.TargetUserName=a\\=b\\nc",
    b'{"EventID":4624,"Computer":"dc1","TargetUserName":"x"}',
    b'{"Event":{"System":{"EventID":4776}},"payload":"x"}',
    b'{"Event":{"System":{"EventID":4776}}} \x00\r\n',
    b'@cee:{"Event":{"System":{"EventID":4776}}}',
    b"MSWinEventLog\t1\tSecurity\t7\tTue Mar 05 09:00:00 2024\t4776\tWindows\tN/A\tN/A\tFailure Audit\tdc1\tC\t\t"
    b"Event.   Logon Account:  bob   Source Workstation:  WS1   Error Code:  0xc000006a\t7",
    b"RsaSA\\n2024-Mar-05 09:00:00\\n4776\\nMicrosoft-Windows-Security-Auditing\\nSecurity\\ndc1\\nbob\\nWS1\\n0x0",
    b"AgentDevice=WindowsLog\tAgentLogFile=Security\tSource=Microsoft-Windows-Security-Auditing\tComputer=dc1\t"
    b"EventID=4776\tMessage=Logon Account: bob Source Workstation: WS1 Error Code: 0x0",
    b"LEEF:1.0|x|y|1|2|a=b",
    b'<Event xmlns="http://schemas.microsoft.com/win/2004/08/events/event"><System><EventID>4776</EventID></System></Event>',
]
HEADS = [
    b"", b"<14>1 2024-03-05T09:00:00.000Z DC00 app - - - ", b"<14>1 - DC00 app - - - ",
    b"<192>1 2024-03-05T09:00:00Z DC00 app - - - ", b'<14>1 2024-03-05T09:00:00.123456789+01:30 h a p m [x y="]\\]"] ',
    b"<14>1 2024-03-05 09:00:00Z h a p m - ", b"<14>1 2024-03-05T09:00:00Z h a p m -",
    b"<14>1 2024-13-05T09:00:00Z h a p m - ", b"<14>1 2024-03-05T09:00:00-0500 h a p m - \xef\xbb\xbf",
    b"<14>Mar  5 09:00:00 DC00 app[12]: ", b"<14>Dec 31 23:59:58.250 dc01 winlog[42]: ", b"Mar  5 09:00:00 2023 DC00 ",
    b"<13>Original Address=10.9.9.9 Jan 01 08:00:00 dc7 ", b"<14><Syslog Header> ", b"&lt;Syslog Header&gt; ",
    b"<14>2024-03-05T09:00:00+02:00 host tag: ", b"<14>1 2024-03-05T09:00:00Z\th a p m - ", b"<999>1 - h a p m - ",
    b"<14>11 2024-03-05T09:00:00Z h a p m - ", b"<14>1 2024-03-05T09:00:00.Z h a p m - ",
    b"<14>1 2024-02-30T09:00:00Z h a p m - ", b"<14>1 2024-03-05T09:00:00Z h\x1ca p m - ", b"<14>Feb 30 09:00:00 h ",
]


def _wire_mix() -> list[bytes]:
    sys.path.insert(0, str(ROOT / "bench"))
    try:
        from wire_mix import DETECTOR_MIX, MIX, RENDER, plan
    finally:
        sys.path.remove(str(ROOT / "bench"))
    out: list[bytes] = []
    for mix in (MIX, DETECTOR_MIX):
        events = plan(1500, 4, 2, mix).events
        for render in RENDER.values():
            out += [render(ev) for ev in events]
    return out


def _messages() -> list[bytes]:
    out: list[bytes] = []
    if SAMPLES.is_dir():
        for f in sorted(SAMPLES.rglob("*")):
            if f.is_file() and f.suffix != ".md" and f.name != "manifest.json":
                data = f.read_bytes()
                out += [m for _, m in iter_messages(io.BytesIO(data)) if m]
                out += data.splitlines()
    wire = _wire_mix()
    synthetic = [h + b for h in HEADS for b in BODIES]
    rng = random.Random(18)
    mutated: list[bytes] = []
    for m in out + wire[::40] + synthetic:
        for _ in range(2):
            b = bytearray(m)
            for _ in range(rng.randrange(1, 4)):
                if b:
                    b[rng.randrange(len(b))] = rng.randrange(256)
            mutated.append(bytes(b))
        mutated += [m[:rng.randrange(len(m) + 1)], b"  " + m + b"\r\n\x00"]
    return out + wire + synthetic + mutated


MESSAGES = _messages()


def _decode_all(messages: list[bytes]) -> list[tuple]:
    out: list[tuple] = []
    for i, raw in enumerate(messages):
        try:
            layout, ev = parse_with_layout(raw, Origin("t", i), NOW)
            out.append(("ok", layout, ev, ev.time, tuple(ev.data.items())))
        except ValueError as exc:
            out.append(("error", type(exc).__name__, str(exc)))
    return out


# ---- tests ---------------------------------------------------------------------------------------

def test_inputs_cover_every_layout() -> None:
    layouts = {r[1] for r in _decode_all(MESSAGES) if r[0] == "ok"}
    assert {"json", "cef", "snare", "rsa", "qradar", "splunk", "event-xml"} <= layouts


def test_fast_paths_decode_exactly_as_the_general_ones(monkeypatch: pytest.MonkeyPatch) -> None:
    """Same events (field order included), same layouts, same errors, on every input."""
    fast = _decode_all(MESSAGES)
    monkeypatch.setattr(syslog, "_FAST5424", _NEVER)
    monkeypatch.setattr(siem, "_builtin", False)
    monkeypatch.setattr(cef, "split_cef", ref_split_cef)
    general = _decode_all(MESSAGES)
    assert len(fast) == len(general) == len(MESSAGES)
    for raw, a, b in zip(MESSAGES, fast, general, strict=True):
        assert a == b, raw[:200]


def test_split_header_as_before_on_every_input() -> None:
    for raw in MESSAGES:
        text = siem._decode(raw).strip("\r\n\x00")
        h, body = split_header(text, NOW)
        assert (_header_dict(h), body) == ref_split_header(text, NOW), raw[:200]


_token = st.text(alphabet=st.sampled_from("ab-:.Z+09T \t\x1c\ufeff[]\"\\="), min_size=0, max_size=8)


@settings(max_examples=400, deadline=None)
@given(st.lists(st.one_of(_token, st.sampled_from(["<14>", "<200>", "1 ", "2024-03-05T09:00:00", ".5", "Z", "+01:00",
                                                   "-0500", " - ", "Mar  5 09:00:00", "[a b=\"c\"]", "CEF:"])),
                max_size=12))
def test_split_header_as_before_on_generated_headers(parts: list[str]) -> None:
    text = "".join(parts) + " {}"
    h, body = split_header(text, NOW)
    assert (_header_dict(h), body) == ref_split_header(text, NOW)


def test_header_time_is_read_when_asked_and_can_be_set() -> None:
    h, _ = split_header("<14>1 2024-03-05T09:00:00.5+01:00 h a - - - x")
    assert h.time == datetime(2024, 3, 5, 8, 0, 0, 500000, tzinfo=UTC)
    h.time = None
    assert h.time is None
    h, _ = split_header("<14>Dec 31 23:59:58 h x", datetime(2025, 1, 2, tzinfo=UTC))
    assert h.time == datetime(2024, 12, 31, 23, 59, 58, tzinfo=UTC)
    assert SyslogHeader(pri=14, time=NOW).time == NOW
    assert SyslogHeader(pri=14) == SyslogHeader(pri=14) != SyslogHeader(pri=13)


def test_header_time_still_the_fallback_event_time() -> None:
    """A CEF event without `rt` takes the header's time (build_event), through the lazy read."""
    body = b"CEF:0|Microsoft|Microsoft Windows||S:4776|x|Low| externalId=4776 dhost=dc1 duser=bob"
    _, ev = parse_with_layout(b"<13>1 2024-03-05T09:00:00.250Z h a - - - " + body)
    assert ev.time == datetime(2024, 3, 5, 9, 0, 0, 250000, tzinfo=UTC)
    _, ev = parse_with_layout(b"<13>Mar  5 09:00:00 h " + body, now=NOW)
    assert ev.time == datetime(2024, 3, 5, 9, tzinfo=UTC)


def test_split_cef_as_before() -> None:
    for raw in MESSAGES:
        text = siem._decode(raw)
        if "CEF:" not in text:
            continue
        text = text[text.index("CEF:"):].rstrip("\r\n")
        try:
            want: Any = ref_split_cef(text)
        except BadMessage as exc:
            want = str(exc)
        try:
            got: Any = cef.split_cef(text)
        except BadMessage as exc:
            got = str(exc)
        assert got == want, raw[:200]


def test_message_text_fields_as_before() -> None:
    """Every template read over the message texts of the inputs (and texts built to trip it)."""
    texts = [siem._decode(raw) for raw in MESSAGES[::7] if b":" in raw]
    texts += ["Logon ID:x.Logon ID:  0x1", "xLinked Logon ID: 0x2 Logon ID: 0x3", "\u2003Logon ID:\t0x4",
              "Account Name:\nAccount Name: a   b", "Subject:Security ID: S-1 Member: Security ID: S-2"]
    for text in texts:
        for eid in messagetext.TEMPLATES:
            assert messagetext.fields_from_text(eid, text) == ref_fields_from_text(eid, text), (eid, text[:200])
            assert list(messagetext.fields_from_text(eid, text)) == list(ref_fields_from_text(eid, text))


def test_cef_custom_field_set_is_the_old_pattern() -> None:
    old = re.compile(r"(?:cs[1-6]|cn[1-3]|c6a[1-4]|cfp[1-4]|flexString[12]|flexNumber[12]|deviceCustomDate[12])")
    names = {f"{p}{i}" for p in ("cs", "cn", "c6a", "cfp", "flexString", "flexNumber", "deviceCustomDate")
             for i in range(11)} | {"cs", "cs1Label", "c6a1x", "flexString"}
    assert {n for n in names if old.fullmatch(n)} == {n for n in names if n in cef._CUSTOM}


def test_register_turns_the_detection_shortcut_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(siem, "LAYOUTS", dict(siem.LAYOUTS))
    monkeypatch.setattr(siem, "_builtin", True)
    siem.register(siem.Layout("first", lambda body: True, siem.LAYOUTS["json"].parse))
    assert not siem._builtin
    monkeypatch.setattr(siem, "LAYOUTS", {"first": siem.LAYOUTS.pop("first"), **siem.LAYOUTS})
    assert siem.detect_layout('{"Event":{}}') is siem.LAYOUTS["first"]
