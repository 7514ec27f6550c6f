"""The synthetic traffic generator's files read back exactly through the project's own readers,
in every format it writes.
"""

from __future__ import annotations

import io
import json

import pytest

from dcsentry.formats import ReadStats, read_stream
from dcsentry.formats.jsonl import read_jsonl
from dcsentry.formats.xml import parse_event_xml, read_xml
from dcsentry.synth import render
from synthkit import as_bytes, assert_same, small_run


# -- round trips through the project's own readers ----------------------------------------------
def test_xml_round_trip_through_read_xml():
    events, _ = small_run()
    assert {e.event_id for e in events} >= {4776, 8004, 4768, 4769, 4771, 4624, 4728, 4732, 4756, 4757, 7045, 4697,
                                            4720}
    stats = ReadStats()
    got = list(read_xml(io.BytesIO(as_bytes(events, "xml")), "synth.xml", stats))
    assert stats.skipped_total == 0, stats.problems
    assert_same(got, events)


def test_each_event_parses_alone():
    events, _ = small_run()
    one_of_each = {e.event_id: e for e in events}.values()
    for ev in one_of_each:
        back = parse_event_xml(render(ev, "xml"))
        assert_same([back], (ev,))


def test_evtx_json_round_trip_through_read_jsonl():
    events, _ = small_run()
    stats = ReadStats()
    got = list(read_jsonl(io.BytesIO(as_bytes(events, "jsonl")), "synth.jsonl", stats))
    assert stats.skipped_total == 0, stats.problems
    assert_same(got, events)
    line = render(next(e for e in events if e.event_id == 7045), "jsonl")
    assert json.loads(line)["Event"]["System"]["EventID"] == {"#attributes": {"Qualifiers": 16384}, "#text": 7045}
    assert json.loads(render(next(e for e in events if e.event_id == 8004), "jsonl"))["Event"]["EventData"][
        "SChannelType"] == 2


def test_winlogbeat_round_trip_keeps_what_winlogbeat_carries():
    """Winlogbeat has no Level/Task numbers, millisecond @timestamp, and only names audit keywords."""
    events, _ = small_run()
    stats = ReadStats()
    got = list(read_jsonl(io.BytesIO(as_bytes(events, "winlogbeat")), "wlb.jsonl", stats))
    assert stats.skipped_total == 0, stats.problems
    assert_same(got, events, ("event_id", "provider", "channel", "computer", "record_id", "data", "user_sid"))
    for a, b in zip(got, events):
        assert a.time == b.time.replace(microsecond=b.time.microsecond // 1000 * 1000)
        if b.channel == "Security" and b.provider == "Microsoft-Windows-Security-Auditing":
            assert a.keywords == b.keywords  # (1102's 0x4020... has no Winlogbeat name of its own)


@pytest.mark.parametrize("fmt", ["xml", "jsonl", "winlogbeat"])
def test_formats_are_sniffed(fmt):
    events, _ = small_run()
    stats = ReadStats()
    got = list(read_stream(io.BytesIO(as_bytes(events[:200], fmt)), "x", stats))
    assert len(got) == 200 and stats.skipped_total == 0
    assert dict(stats.formats) == {"xml" if fmt == "xml" else "jsonl": 1}


def test_xml_matches_the_documented_shape():
    events, _ = small_run()
    ev = next(e for e in events if e.event_id == 7045)
    x = render(ev, "xml")
    assert x.startswith('<Event xmlns="http://schemas.microsoft.com/win/2004/08/events/event"><System>'
                        '<Provider Name="Service Control Manager" Guid="{555908d1-a6d7-4695-8e1e-26931d2012f4}" '
                        'EventSourceName="Service Control Manager"/><EventID Qualifiers="16384">7045</EventID>')
    assert '<Keywords>0x8080000000000000</Keywords>' in x and "<Channel>System</Channel>" in x
    stamp = x.split('SystemTime="')[1].split('"')[0]
    assert len(stamp.split(".")[1]) == 8 and stamp.endswith("Z")  # 7 digits + Z
    n = render(next(e for e in events if e.event_id == 8004), "xml")
    assert "<Channel>Microsoft-Windows-NTLM/Operational</Channel>" in n and '<Security UserID="S-1-5-18"/>' in n
    assert "<Level>4</Level><Task>2</Task>" in n
    a = render(next(e for e in events if e.event_id == 4776 and e.is_failure_audit), "xml")
    assert "<Keywords>0x8010000000000000</Keywords>" in a and "<Security/>" in a

