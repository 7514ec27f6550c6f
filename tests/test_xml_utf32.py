"""A DOCTYPE in UTF-32 input is seen and refused like in UTF-8/16 (issue 14 finding 7): the event
reader and the WEF SOAP parser decode UTF-32 (BOM or not) before their DTD check."""

from __future__ import annotations

import codecs

import pytest

from conftest import read_bytes
from dcsentry.sources.wef.soap import SoapError, parse

BOMB = ('<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;">]>'
        '<Event xmlns="http://schemas.microsoft.com/win/2004/08/events/event"><System><EventID>4776</EventID>'
        '<Computer>DC01</Computer><TimeCreated SystemTime="2024-01-01T00:00:00Z"/></System>'
        '<EventData><Data Name="TargetUserName">&lol2;</Data></EventData></Event>')
ENCODINGS = {"utf-32-bom": BOMB.encode("utf-32"), "utf-32-le": BOMB.encode("utf-32-le"),
             "utf-32-be": BOMB.encode("utf-32-be"), "utf-32-be-bom": codecs.BOM_UTF32_BE + BOMB.encode("utf-32-be")}


@pytest.mark.parametrize("name", sorted(ENCODINGS))
def test_event_reader_refuses_a_utf32_doctype(name: str) -> None:
    events, stats = read_bytes(ENCODINGS[name])
    assert events == [] and stats.skipped["xml-dtd"] == 1, stats.skipped  # seen as a DOCTYPE, never parsed


@pytest.mark.parametrize("name", sorted(ENCODINGS))
def test_wef_parser_refuses_a_utf32_doctype(name: str) -> None:
    with pytest.raises(SoapError) as e:
        parse(ENCODINGS[name])
    assert e.value.kind == "dtd"


@pytest.mark.parametrize("bom", [codecs.BOM_UTF16_BE, codecs.BOM_UTF16_LE, codecs.BOM_UTF32_LE, codecs.BOM_UTF8 + b"  "])
def test_a_lone_byte_order_mark_says_why_nothing_was_read(bom: bytes) -> None:
    """Found by the readers' fuzzing: input that is only a BOM gave no event and no reason."""
    events, stats = read_bytes(bom, fmt="xml")
    assert events == [] and stats.skipped_total == 1, stats.skipped
