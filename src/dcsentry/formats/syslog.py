"""Syslog as SIEMs forward Windows events: the header (RFC 3164 / RFC 5424), capture-file framing,
and `read_syslog`, which cuts a capture into messages and hands each to the SIEM layouts.

The header is optional and never trusted for the event itself: the DC, the event time and the
event id come from the payload (siem-input-formats.md section 5). The header time is only a
fallback for a payload that carries none. Captures are one message per line (LF or CRLF), or
RFC 6587 octet-counted (`<len> <message>`); the few layouts whose documented form spans lines
(Splunk's `Message=` text, RSA with real LF separators) are re-assembled.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import IO

from ..model import Origin, WindowsEvent
from .stats import ReadStats

MAX_MESSAGE = 1 << 20  # a message may be far larger than a UDP datagram's 64 KiB in a TCP capture
MAX_ARRAY = 64 << 20  # a JSON array export (Sentinel rows) is read whole, up to this size
_BLOCK = 1 << 16
_MONTHS = {m: i for i, m in enumerate(("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct",
                                       "nov", "dec"), 1)}

_PRI = re.compile(r"<(\d{1,3})>")
_PLACEHOLDER = re.compile(r"(?:&lt;|<)Syslog Header(?:&gt;|>)", re.I)  # the MS docs' stand-in for a header
_ORIGINAL = re.compile(r"Original Address=(\S+)\s+")  # QRadar re-forwarding prefix
_V5424 = re.compile(r"([1-9]\d?) (\S+) (\S+) (\S+) (\S+) (\S+) ?")
_TS3164 = re.compile(r"([A-Za-z]{3}) +(\d{1,2}) (\d\d):(\d\d):(\d\d)(?:\.(\d{1,6}))?(?: (\d{4}))?(?=\s|$)")
_ISO = re.compile(r"(\d{4})-(\d\d)-(\d\d)[T ](\d\d):(\d\d):(\d\d)(?:\.(\d{1,9}))?(Z|[+-]\d\d:?\d\d)?(?=\s|$)")
_TAG = re.compile(r"([\w./-]{1,48})(?:\[\d{1,10}\])?: ")
_TOKEN = re.compile(r"[^\s]+")
# PRI, VERSION and the five header fields of RFC 5424 at once, when the time is `-` or ISO 8601
# (split_header's general path below decides exactly the same for these messages, only slower).
_FAST5424 = re.compile(r"<(\d{1,3})>([1-9]\d?) (-|\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{1,9})?(?:Z|[+-]\d\d:?\d\d)?)"
                       r" (\S+) (\S+) (\S+) (\S+) ?")


class SyslogHeader:
    """What the transport header said; every part is optional.

    The time is read from its text only when asked for (`time`): the layouts take the event
    time from the payload, so the header's is rarely needed and parsing it on every message was
    most of the header's cost."""

    __slots__ = ("pri", "host", "app", "version", "original_address", "_time", "_stamp")

    def __init__(self, pri: int | None = None, time: datetime | None = None, host: str | None = None,
                 app: str | None = None, version: int | None = None, original_address: str | None = None) -> None:
        self.pri, self.host, self.app, self.version, self.original_address = pri, host, app, version, original_address
        self._time = time
        self._stamp: tuple[re.Match[str] | str, datetime | None] | None = None  # the time, still unread

    @property
    def time(self) -> datetime | None:
        if self._stamp is not None:
            stamp, now = self._stamp
            self._stamp = None
            m = _ISO.fullmatch(stamp) if isinstance(stamp, str) else stamp
            if m is None:
                self._time = None
            else:
                # without `now`, an RFC 3164 year is chosen by the clock at this first read, not at the split
                self._time = _iso(m) if m.re is _ISO else _rfc3164_time(m, now or datetime.now(UTC))
        return self._time

    @time.setter
    def time(self, value: datetime | None) -> None:
        self._time, self._stamp = value, None

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SyslogHeader):
            return NotImplemented
        return all(getattr(self, a) == getattr(other, a)
                   for a in ("pri", "time", "host", "app", "version", "original_address"))

    def __repr__(self) -> str:
        return (f"SyslogHeader(pri={self.pri!r}, time={self.time!r}, host={self.host!r}, app={self.app!r}, "
                f"version={self.version!r}, original_address={self.original_address!r})")

    @property
    def facility(self) -> int | None:
        return None if self.pri is None else self.pri >> 3

    @property
    def severity(self) -> int | None:
        return None if self.pri is None else self.pri & 7


def _iso(m: re.Match[str]) -> datetime | None:
    y, mo, d, h, mi, s, frac, zone = m.groups()
    try:
        t = datetime(int(y), int(mo), int(d), int(h), int(mi), int(s), int((frac or "0")[:6].ljust(6, "0")),
                     tzinfo=UTC)
        if zone and zone != "Z":
            sign = -1 if zone[0] == "-" else 1
            hh, mm = int(zone[1:3]), int(zone[-2:])
            t -= sign * timedelta(hours=hh, minutes=mm)
        return t
    except (ValueError, OverflowError):
        return None


def _rfc3164_time(m: re.Match[str], now: datetime) -> datetime | None:
    """`Mmm dd hh:mm:ss` has no year and no zone: UTC, in the year that puts it closest before `now`."""
    mon, day, h, mi, s, frac, year = m.groups()
    month = _MONTHS.get(mon.lower())
    if month is None:
        return None
    us = int((frac or "0").ljust(6, "0"))
    try:
        if year:
            return datetime(int(year), month, int(day), int(h), int(mi), int(s), us, tzinfo=UTC)
        t = datetime(now.year, month, int(day), int(h), int(mi), int(s), us, tzinfo=UTC)
        if t - now > timedelta(days=31):  # December's messages read in January
            t = t.replace(year=now.year - 1)
        return t
    except ValueError:
        return None


def _skip_sd(text: str, i: int) -> int:
    """End of RFC 5424 STRUCTURED-DATA starting at `i` (`-` or `[..][..]`, `\\]` escapes)."""
    if text.startswith("-", i):
        return i + 1
    n = len(text)
    while i < n and text[i] == "[":
        i += 1
        quoted = False
        while i < n and (quoted or text[i] != "]"):
            if text[i] == "\\":
                i += 1
            elif text[i] == '"':
                quoted = not quoted
            i += 1
        i += 1
    return min(i, n)


def split_header(text: str, now: datetime | None = None) -> tuple[SyslogHeader, str]:
    """Split a syslog message into its header and the body, tolerating every header being absent."""
    m = _FAST5424.match(text)
    if m is not None:  # the usual RFC 5424 header, in one match
        pri, version, stamp, host, app, _, _ = m.groups()
        if int(pri) <= 191:
            h = SyslogHeader(int(pri), None, None if host == "-" else host, None if app == "-" else app, int(version))
            if stamp != "-":
                h._stamp = (stamp, None)
            j = _skip_sd(text, m.end(7) + 1)
            return h, text[j:].lstrip(" ").removeprefix("\ufeff").lstrip()
    h = SyslogHeader()
    i = 0
    m = _PRI.match(text)
    if m and int(m.group(1)) <= 191:
        h.pri = int(m.group(1))
        i = m.end()
    m = _PLACEHOLDER.match(text, i) if text.startswith(("<", "&"), i) else None
    if m:
        return h, text[m.end():].lstrip()
    m = _V5424.match(text, i) if h.pri is not None and text[i:i + 1].isdigit() else None
    if m and (m.group(2) == "-" or _ISO.fullmatch(m.group(2))):
        h.version = int(m.group(1))
        ts = _ISO.fullmatch(m.group(2))
        if ts:
            h._stamp = (ts, None)
        h.host = None if m.group(3) == "-" else m.group(3)
        h.app = None if m.group(4) == "-" else m.group(4)
        j = _skip_sd(text, m.end(6) + 1)
        return h, text[j:].lstrip(" ").removeprefix("\ufeff").lstrip()
    while i < len(text) and text[i] == " ":
        i += 1
    m = _ORIGINAL.match(text, i) if text.startswith("Original Address=", i) else None
    if m:
        h.original_address = m.group(1)
        i = m.end()
    m = _TS3164.match(text, i) or _ISO.match(text, i)
    if m is None:
        return h, text[i:].lstrip()
    h._stamp = (m, now)
    i = m.end()
    while i < len(text) and text[i] in " \t":
        i += 1
    host = _TOKEN.match(text, i)
    if host and "=" not in host.group(0) and not host.group(0).startswith(("CEF:", "LEEF:", "RsaSA", "MSWinEventLog")):
        h.host = host.group(0)
        i = host.end()
        if i < len(text) and text[i] == " ":
            tag = _TAG.match(text, i + 1)
            if tag:
                h.app = tag.group(1)
                i = tag.end()
    return h, text[i:].lstrip()


# ---- capture framing ---------------------------------------------------------------------------

_OCTET = re.compile(rb"(\d{1,7}) (?=<\d{1,3}>|CEF:|\{|RsaSA|&lt;)")
_START = re.compile(rb"(?:<\d{1,3}>|&lt;|CEF:\d|LEEF:|\{|\[|@cee:|RsaSA|AgentDevice="
                    rb"|[A-Za-z]{3} +\d{1,2} \d\d:\d\d:\d\d"
                    rb"|\d{4}-\d\d-\d\d[T ]\d\d:|\d\d?/\d\d?/\d{4} \d\d?:\d\d:\d\d)")
_HEAD_B = re.compile(rb"(?:<\d{1,3}>)?(?:&lt;Syslog Header&gt;|<Syslog Header>)?"
                     rb"(?:[1-9] \S+ \S+ \S+ \S+ \S+ (?:-|\[.*?\]) ?"
                     rb"|(?:[A-Za-z]{3} +\d{1,2} \d\d:\d\d:\d\d|\d{4}-\d\d-\d\dT\S+) \S+)?(?:\s|\\r|\\n)*")
_SPLUNK_KEY = re.compile(rb"(?:EventCode|LogName|Logfile|SourceName|ComputerName|TimeGenerated|RecordNumber|Keywords"
                         rb"|EventType|Type|TaskCategory|OpCode|Sid|SidType|User)=")
_SPLUNK_FIRST = re.compile(rb"(?:EventCode|LogName|Logfile)=")
_ARRAY = re.compile(rb"(?:\xef\xbb\xbf)?\s*\[\s*\{")
_SPLUNK_DATE = re.compile(rb"\d\d?/\d\d?/\d{4} \d\d?:\d\d:\d\d(?: [AP]M)?\s*$")


class _Buffer:
    """A byte stream read in blocks, with look-ahead for octet counts."""

    def __init__(self, stream: IO[bytes]) -> None:
        self.stream, self.buf, self.pos, self.eof = stream, b"", 0, False

    def fill(self, need: int) -> None:
        while len(self.buf) - self.pos < need and not self.eof:
            block = self.stream.read(_BLOCK)
            if not block:
                self.eof = True
                return
            self.buf = self.buf[self.pos:] + block
            self.pos = 0

    def peek(self, n: int) -> bytes:
        self.fill(n)
        return self.buf[self.pos:self.pos + n]

    def take(self, n: int) -> bytes:
        self.fill(n)
        out = self.buf[self.pos:self.pos + n]
        self.pos += len(out)
        return out

    def line(self, limit: int) -> tuple[bytes | None, bool]:
        """The next line without its LF (None at the end), and False when it was longer than `limit`."""
        start = 0
        while True:
            i = self.buf.find(b"\n", self.pos + start)
            if i >= 0:
                out = self.buf[self.pos:i]
                self.pos = i + 1
                return out, len(out) <= limit
            start = len(self.buf) - self.pos
            if self.eof or start > limit:
                break
            self.fill(start + _BLOCK)
        if start > limit:  # drop the rest of an over-long line
            while True:
                self.pos = len(self.buf)
                self.fill(1)
                i = self.buf.find(b"\n", self.pos)
                if i >= 0:
                    self.pos = i + 1
                    return b"", False
                if self.eof:
                    return b"", False
        out = self.buf[self.pos:]
        self.pos = len(self.buf)
        return (out or None), True


def _state_of(first: bytes) -> str:
    """How a message begun by this line may go on: `open` (nothing but a header yet), `rsa`
    (RsaSA with real LF separators), `splunk` (key lines, then the `Message=` text), or `closed`."""
    m = _HEAD_B.match(first)
    rest = first[m.end():] if m else first
    if not rest.strip():
        return "open"
    if rest.startswith(b"RsaSA") and b"\\n" not in rest:
        return "rsa"
    if _SPLUNK_KEY.match(rest) or _SPLUNK_DATE.match(rest):
        return "splunk"
    return "closed"


def iter_messages(stream: IO[bytes], limit: int = MAX_MESSAGE) -> Iterator[tuple[int, bytes | None]]:
    """(line number, message) for each message of a capture; message None = over `limit`, skipped."""
    buf = _Buffer(stream)
    lineno = cur_line = size = fields = 0
    cur: list[bytes] = []
    state = "closed"
    splunk_msg = False

    while True:
        if not cur:
            om = _OCTET.match(buf.peek(16))
            if om:  # RFC 6587 octet counting: exactly n bytes, whatever they hold
                n = int(om.group(1))
                buf.take(om.end())
                lineno += 1
                if n > limit:
                    while n > 0 and buf.take(min(n, _BLOCK)):
                        n -= _BLOCK
                    yield lineno, None
                    continue
                frame = buf.take(n)
                yield lineno, frame.strip(b"\r\n")
                lineno += frame.count(b"\n")
                while buf.peek(1) in (b"\r", b"\n"):
                    lineno += buf.take(1) == b"\n"
                continue
        line, fits = buf.line(limit)
        if line is None:
            break
        lineno += 1
        if line.endswith(b"\r"):
            line = line[:-1]
        if not fits:
            if cur:
                yield cur_line, b"\n".join(cur)
                cur = []
            yield lineno, None
            continue
        if cur:
            keep = False
            if state == "open":
                keep = not line.startswith(b"<")
                if keep and line.strip():
                    state, fields, splunk_msg = _state_of(line), 1, b"Message=" in line
            elif state == "rsa":
                keep = fields < 9 or not _START.match(line)
                fields += 1
            elif state == "splunk":
                keep = not _START.match(line) and not (splunk_msg and _SPLUNK_FIRST.match(line))
                splunk_msg = splunk_msg or line.startswith(b"Message=")
            if keep and size + len(line) < limit:
                cur.append(line)
                size += len(line) + 1
                continue
            if keep:  # the re-assembled message outgrew the limit
                yield cur_line, None
                cur = []
                continue
            yield cur_line, b"\n".join(cur)
            cur = []
        if not line.strip():
            continue
        cur, cur_line, size = [line], lineno, len(line)
        state, fields, splunk_msg = _state_of(line), 1, b"Message=" in line
    if cur:
        yield cur_line, b"\n".join(cur)


def _decode_array(data: bytes) -> list | None:
    import msgspec

    try:
        rows = msgspec.json.decode(data.removeprefix(b"\xef\xbb\xbf"))
    except (msgspec.DecodeError, RecursionError):
        return None
    return rows if isinstance(rows, list) else None


def read_syslog(stream: IO[bytes], source: str, stats: ReadStats, member: str | None = None) -> Iterator[WindowsEvent]:
    """Every Windows event in a capture of SIEM messages; a message no layout reads is a problem
    (kind `syslog-layout`, with a short sample), a recognisably non-Windows one is only counted."""
    from .siem import BadMessage, NotWindows, UnknownLayout, parse_message, parse_record

    head = stream.peek(64)[:64] if hasattr(stream, "peek") else b""
    if _ARRAY.match(head):  # a JSON array export (Sentinel SecurityEvent rows)
        data = stream.read(MAX_ARRAY + 1)
        rows = _decode_array(data) if len(data) <= MAX_ARRAY else None
        if rows is None:
            stats.problem(Origin(source, None, member), "not a readable JSON array of events", "syslog")
            return
        for n, row in enumerate(rows, 1):
            origin = Origin(source, n, member)
            try:
                yield parse_record(row, origin)
            except NotWindows:
                stats.skipped["syslog-not-windows"] += 1
            except ValueError as exc:
                stats.problem(origin, f"element {n}: {exc}", "syslog")
        return
    for lineno, raw in iter_messages(stream):
        origin = Origin(source, lineno, member)
        if raw is None:
            stats.problem(origin, f"message longer than {MAX_MESSAGE} bytes skipped", "syslog-oversize")
            continue
        try:
            yield parse_message(raw, origin)
        except NotWindows:
            stats.skipped["syslog-not-windows"] += 1
        except UnknownLayout as exc:
            sample = raw[:60].decode("utf-8", "replace").encode("unicode_escape").decode("ascii")
            stats.problem(origin, f"{exc}: {sample!r}", "syslog-layout")
        except BadMessage as exc:
            stats.problem(origin, str(exc), "syslog")
