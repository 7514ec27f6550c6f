"""The RFC 6587 deframer on its own: mixed framing, any chunking, oversized and garbage frames."""

from __future__ import annotations

from itertools import pairwise

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from syslogkit import EXPECTED, STREAM, octet

from dcsentry.sources.syslog import Deframer


def feed_all(d: Deframer, chunks: list[bytes]) -> list[bytes]:
    return [m for c in chunks for m in d.feed(c)] + d.close()


def test_deframer_mixed_framing_one_chunk() -> None:
    d = Deframer()
    assert feed_all(d, [STREAM]) == [*EXPECTED, b"<13>seven"]
    assert (d.oversized, d.framing_errors) == (0, 0)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=len(STREAM)), max_size=12))
def test_deframer_any_chunking_same_messages(cuts: list[int]) -> None:
    edges = sorted({0, len(STREAM), *cuts})
    chunks = [STREAM[a:b] for a, b in pairwise(edges)]
    assert feed_all(Deframer(), chunks) == [*EXPECTED, b"<13>seven"]


def test_deframer_byte_by_byte_large_and_oversized() -> None:
    big = b"<13>" + bytes(range(32, 127)) * 2200  # ~209 KB, no delimiter inside
    stream = octet(big) + big + b"\n" + b"<13>after\n"
    d = Deframer()
    assert feed_all(d, [stream[i:i + 1000] for i in range(0, len(stream), 1000)]) == [big, big, b"<13>after"]
    small = Deframer(max_message=65536)  # lengths up to 16 x max_message are trusted (beyond: garbage)
    out = feed_all(small, [stream[i:i + 7] for i in range(0, 100_002, 7)] + [stream[100_002:]])
    assert out == [big[:65536], big[:65536], b"<13>after"] and small.oversized == 2


@pytest.mark.parametrize("junk", [b"99999999999 junk", b"0 zero length", b"0123 leading zero", b"4000000000 x",
                                  b"123456789012345"])
def test_deframer_garbage_prefix_resyncs_at_newline(junk: bytes) -> None:
    d = Deframer(max_message=65536)
    assert feed_all(d, [junk + b"\n" + octet(b"<13>a") + b"<13>b\n"]) == [b"<13>a", b"<13>b"]
    assert d.framing_errors == 1


def test_deframer_cut_octet_frame_at_close_is_an_error() -> None:
    d = Deframer()
    assert feed_all(d, [b"<13>x\n20 <13>cut"]) == [b"<13>x"] and d.framing_errors == 1


_plain = st.builds(lambda b, end: b"<1>" + b.replace(b"\n", b"_").replace(b"\0", b"_") + end,
                   st.binary(max_size=300), st.sampled_from([b"", b"", b"\r", b"\r\r", b" "]))
_any = st.binary(min_size=1, max_size=3000).filter(lambda b: b[-1] not in b"\r\n\0")


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(st.tuples(st.sampled_from([b"\n", b"\r\n", b"\0"]), _plain),
                          st.tuples(st.just(b"octet"), _any)), min_size=1, max_size=40),
       st.lists(st.integers(min_value=1, max_value=5000), min_size=1, max_size=30), st.data())
def test_deframer_random_messages_framings_and_chunkings(frames: list[tuple[bytes, bytes]], sizes: list[int],
                                                         data: st.DataObject) -> None:
    expected, stream = [], b""
    for how, msg in frames:
        if how == b"octet":
            stream += octet(msg)
            expected.append(msg)
        else:
            stream += msg + how
            if how != b"\r\n" and msg.endswith(b"\r"):
                msg = msg[:-1]  # one CR before the delimiter goes, as in CRLF
            expected.append(msg)
    chunks, pos = [], 0
    while pos < len(stream):
        step = sizes[len(chunks) % len(sizes)]
        chunks.append(stream[pos:pos + step])
        pos += step
    d = Deframer(max_message=data.draw(st.sampled_from([65536, 1000])))
    got = feed_all(d, chunks)
    mx = d.max_message
    assert got == [m[:mx] for m in expected]
    assert d.oversized == sum(len(m) > mx for m in expected) and d.framing_errors == 0
