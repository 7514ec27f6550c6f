"""EVTX files through the Rust `evtx` parser, decoded with typed msgspec structs.

The parser renders each record as JSON; decoding that into small structs (instead of generic
dicts) is the cheapest route from the Rust side to a `WindowsEvent`. A damaged chunk or record
raises inside the parser's iterator: it is reported and reading carries on with the next one.
"""

from __future__ import annotations

import shutil
import tempfile
from collections import Counter
from collections.abc import Iterator
from operator import attrgetter
from typing import IO, Any

import msgspec

from ..catalogue import canonical_channel
from ..model import EPOCH, Origin, WindowsEvent
from .evtx_native import Lines, NativeParser
from .stats import ReadStats
from .values import as_text, flatten_user_data, parse_time

MAGIC = b"ElfFile\x00"


class _Name(msgspec.Struct):
    Name: str = ""


class _Provider(msgspec.Struct):
    attrs: _Name = msgspec.field(name="#attributes", default_factory=_Name)


class _SystemTime(msgspec.Struct):
    SystemTime: str = ""


class _TimeCreated(msgspec.Struct):
    attrs: _SystemTime = msgspec.field(name="#attributes", default_factory=_SystemTime)


class _EventIdText(msgspec.Struct):
    text: int = msgspec.field(name="#text", default=0)


class _UserID(msgspec.Struct):
    UserID: str | None = None


class _Security(msgspec.Struct):
    attrs: _UserID = msgspec.field(name="#attributes", default_factory=_UserID)


class _System(msgspec.Struct):
    Provider: _Provider | None = None
    EventID: int | _EventIdText | None = 0
    Level: int | None = None
    Task: int | None = None
    Keywords: str | None = None
    TimeCreated: _TimeCreated | None = None
    EventRecordID: int | None = None
    Channel: str | None = None
    Computer: str | None = None
    Security: _Security | None = None


class _Event(msgspec.Struct):
    System: _System
    EventData: Any = None
    UserData: Any = None


class _Root(msgspec.Struct):
    Event: _Event


_decode = msgspec.json.Decoder(_Root).decode


def event_data(ed: Any) -> dict[str, str]:
    """EventData as the evtx JSON renders it -> flat Name -> text mapping."""
    if type(ed) is not dict:
        return {} if ed is None else {"param1": as_text(ed)}
    for v in ed.values():  # 40 % of the corpus's records: all strings, nothing to fix, no copy
        if type(v) is not str:
            break
    else:
        if "Data" not in ed and "#attributes" not in ed:
            return ed
    out = ed.copy()  # most values are already strings: copy, then fix the few that are not
    for k, v in ed.items():
        if type(v) is not str:
            out[k] = as_text(v)
    if "#attributes" in out:
        del out["#attributes"]
    if "Data" in out:
        del out["Data"]
        unnamed = ed["Data"]
        if type(unnamed) is dict:
            unnamed = unnamed.get("#text")
        if type(unnamed) is not list:
            unnamed = [] if unnamed is None else [unnamed]
        for i, v in enumerate(unnamed, 1):
            out[f"param{i}"] = as_text(v)
    if "Binary" in out and ed["Binary"] is None:
        del out["Binary"]
    return out


def from_evtx_json(doc: bytes | str, fallback_time: str = "", origin: Origin | None = None) -> WindowsEvent:
    """One record of the evtx parser's JSON (also what `evtx_dump -o jsonl` writes)."""
    ev = _decode(doc).Event
    s = ev.System
    eid = s.EventID
    if type(eid) is not int:
        eid = eid.text if isinstance(eid, _EventIdText) else (eid or 0)
    if ev.EventData is not None or ev.UserData is None:
        data = event_data(ev.EventData)
    else:
        data = {}
        user_data = next(iter(ev.UserData.values()), {}) if isinstance(ev.UserData, dict) else ev.UserData
        flatten_user_data(user_data, "", data)
    tc, provider, security = s.TimeCreated, s.Provider, s.Security
    t = (parse_time(tc.attrs.SystemTime) if tc is not None else None) or parse_time(fallback_time) or EPOCH
    # positional, in WindowsEvent's field order: cheaper than keywords on the per-record path
    return WindowsEvent(eid, provider.attrs.Name if provider is not None else "", canonical_channel(s.Channel or ""),
                        s.Computer or "", t, s.EventRecordID, data, origin, s.Keywords, s.Level, s.Task,
                        security.attrs.UserID if security is not None else None)


def read_evtx(src: str | IO[bytes], source: str, stats: ReadStats, member: str | None = None,
              threads: int = 0, decode_in_helper: bool = False) -> Iterator[WindowsEvent]:
    """Every readable record of an EVTX file, damaged chunks and records reported and skipped.

    The native parser runs in a helper process (evtx_native): a parser stuck on a corrupted
    record costs this file, not the program. A stream (a zip/gz member, stdin) is copied to a
    temporary file first, since the parser needs random access. With `decode_in_helper` the helper
    also decodes the records into events, on its own core, for a consumer that has heavy work of its
    own per event (`hunt`'s detection); without, this process decodes the parser's JSON, which
    costs less CPU in all (no msgpack round trip) and is faster when the consumer is light
    (`events --jsonl`: 1.36 s against 1.50 s on the corpus x10 with --jobs 1). `events --jsonl` on
    several files does not come here: its helpers write the lines themselves (`encode_lines`).
    """
    if isinstance(src, str):
        yield from _read_native(src, source, stats, member, threads, decode_in_helper)
        return
    with tempfile.NamedTemporaryFile(prefix="dcsentry-", suffix=".evtx") as tmp:
        shutil.copyfileobj(src, tmp, 1 << 20)
        tmp.flush()
        yield from _read_native(tmp.name, source, stats, member, threads, decode_in_helper)


def prefetch(path: str, fmt: str | None = None) -> None:
    """Start a helper on `path` now if it is a plain EVTX file, read next with `decode_in_helper`
    (NativeParser.prefetch: `hunt` reading many files one after another)."""
    if fmt not in (None, "evtx"):
        return
    try:
        with open(path, "rb") as fh:
            if fh.read(len(MAGIC)) != MAGIC:
                return
    except OSError:
        return
    NativeParser.prefetch(path, 0, (path, None))


_DECODE_ERRORS = (msgspec.DecodeError, msgspec.ValidationError, KeyError, TypeError, ValueError)
_events = msgspec.msgpack.Decoder(list[WindowsEvent]).decode


def decode_records(batch: list[tuple[int, str, str]], source: str, member: str | None
                   ) -> tuple[list[WindowsEvent], list[tuple[int, str]]]:
    """The helper's side of decoding (evtx_native._sender): the events of a batch of records, and
    (record number, reason) for each record that did not decode."""
    events: list[WindowsEvent] = []
    bad: list[tuple[int, str]] = []
    for number, data, timestamp in batch:
        try:
            events.append(from_evtx_json(data, timestamp, Origin(source, number, member)))
        except _DECODE_ERRORS as exc:
            bad.append((number, f"EVTX record {number} could not be decoded: {exc}"))
    return events, bad


_encode_lines = msgspec.json.Encoder().encode_lines
_event_id = attrgetter("event_id")


def encode_lines(batch: list[tuple[int, str, str]], want: Lines) -> tuple:
    """The helper's side of `events --jsonl` (evtx_native.Lines): ("lines", the JSON lines of the
    wanted events, [(record number, why it did not decode)], last record number, {event id: count}
    of every event, [record numbers without a readable time]). The lines are those
    JsonLinesWriter writes for the same events (the same decoding, msgspec's same JSON encoding);
    a batch is encoded and counted in one C call each."""
    source, member, ids = want
    events: list[WindowsEvent] = []
    append = events.append
    bad: list[tuple[int, str]] = []
    for number, data, timestamp in batch:
        try:
            append(from_evtx_json(data, timestamp, Origin(source, number, member)))
        except _DECODE_ERRORS as exc:
            bad.append((number, f"EVTX record {number} could not be decoded: {exc}"))
    by_id = Counter(map(_event_id, events))
    untimed = [o.position for ev in events if ev.time == EPOCH and (o := ev.origin) is not None]
    if ids is not None:
        events = [ev for ev in events if ev.event_id in ids]
    return ("lines", _encode_lines(events), bad, batch[-1][0], dict(by_id), untimed)


class LinesFile:
    """The reader's side of one EVTX file read as JSON lines by a helper (`Lines`): counts and
    problems go into `stats` exactly as `read_evtx` and `ReadStats.saw` would put them."""

    def __init__(self, source: str, stats: ReadStats, member: str | None = None) -> None:
        self.source, self.stats, self.member = source, stats, member
        self.last = 0

    def take(self, msg: tuple) -> bytes | None:
        """The lines of one helper message (None for the others, which are counted or reported)."""
        if msg[0] == "lines":
            _, block, bad, self.last, by_id, untimed = msg
            stats = self.stats
            for number, reason in bad:
                stats.problem(Origin(self.source, number, self.member), reason, "evtx-record")
            stats.records += sum(by_id.values())
            stats.by_id.update(by_id)
            for number in untimed:
                stats.warn(Origin(self.source, number, self.member), _UNTIMED, "time")
            return block
        _report(msg, self.source, self.member, self.last, self.stats)
        return None


_UNTIMED = "event time missing or unreadable: kept as 1970-01-01T00:00:00Z"  # as ReadStats.saw


def _report(msg: tuple, source: str, member: str | None, last: int, stats: ReadStats) -> None:
    """The helper's "error", "fatal" and "stalled" messages, as problems of `source`."""
    kind = msg[0]
    if kind == "error":
        stats.problem(Origin(source, last or None, member), f"damaged EVTX data after record {last}: {msg[1]}",
                      "evtx-record")
    elif kind == "fatal":
        stats.problem(Origin(source, None, member), f"not a readable EVTX file: {msg[1]}", "evtx-file")
    elif kind == "stalled":
        stats.problem(Origin(source, last or None, member), f"the EVTX parser stopped making progress after "
                      f"record {last} (a known evtx bug on corrupted records); rest of the file skipped",
                      "evtx-stall")


def _read_native(path: str, source: str, stats: ReadStats, member: str | None, threads: int,
                 decode_in_helper: bool) -> Iterator[WindowsEvent]:
    last = 0
    for msg in NativeParser.parse(path, threads, decode=(source, member) if decode_in_helper else None):
        kind = msg[0]
        if kind == "events":
            for number, reason in msg[2]:
                stats.problem(Origin(source, number, member), reason, "evtx-record")
            last = msg[3]
            yield from _events(msg[1])
        elif kind == "batch":
            for number, data, timestamp in msg[1]:
                last = number
                origin = Origin(source, number, member)
                try:
                    yield from_evtx_json(data, timestamp, origin)
                except _DECODE_ERRORS as exc:
                    stats.problem(origin, f"EVTX record {number} could not be decoded: {exc}", "evtx-record")
        else:
            _report(msg, source, member, last, stats)
