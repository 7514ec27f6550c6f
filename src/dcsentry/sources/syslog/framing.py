"""RFC 6587 framing for syslog over TCP and TLS: octet counting and newline-delimited, chosen per frame.

Senders differ (rsyslog and syslog-ng default to LF, RFC 5425 TLS mandates octet counting, some
appliances end frames with NUL, some mix), so every frame is classified by its first bytes:

* ``LEN SP MSG`` (octet counting) when the frame starts with 1-10 ASCII digits, no leading zero,
  followed by a space and a plausible length (<= `ceiling`, by default 16 x `max_message`);
* otherwise a newline frame, ended by LF, CRLF or NUL (the delimiter and a CR before it are removed).

Messages also lose a trailing CR/LF/NUL inside an octet frame; empty frames (keep-alive blank lines)
are skipped silently.

Oversized frames are **truncated**, not dropped: the first `max_message` bytes are delivered (a
parser can still count and show them), `oversized` is counted, and the rest of that frame is
discarded -- by its declared length for octet frames, up to the next delimiter for newline frames --
so the framing of what follows is kept. A digit run followed by a space that is not a plausible
length (leading zero, zero, more than 10 digits, above `ceiling`) is a garbage prefix: it counts one
`framing_errors` and everything up to the next LF/NUL is discarded (resync).

Per-frame detection has one ambiguity RFC 6587 leaves open: a newline-framed message that itself
starts with ``<digits> <text>`` (no PRI, e.g. ``5 apples``) is read as octet-counted.

This is the hot path of `dcsentry serve`. Chunks (up to 256 KiB) are parsed in place: runs of newline
frames are split in C (`bytes.split`) up to the next line that starts with a digit, octet frames are
sliced one by one, and only an incomplete last frame is kept, in a `bytearray`; the next chunk
copies just the head that completes it, so a slow sender trickling a long frame costs O(n).
"""

from __future__ import annotations

import re

_MAX_DIGITS = 10
_DIGIT_LINE = re.compile(rb"\n[0-9]")  # the frame after this LF may be octet-counted
_NEED_DELIMITER = -1  # the tail is an unfinished newline frame: parse again once a delimiter arrives


def _delimiter(data: bytes, start: int = 0) -> int:
    """Index of the first LF or NUL at or after `start`, or -1."""
    nl = data.find(b"\n", start)
    nul = data.find(b"\0", start, nl if nl >= 0 else len(data))
    return nul if nul >= 0 else nl


class Deframer:
    """Splits one byte stream into syslog messages. One per connection; not thread-safe."""

    __slots__ = ("max_message", "ceiling", "oversized", "framing_errors", "_tail", "_need", "_skip", "_resync")

    def __init__(self, max_message: int = 65536 * 4, ceiling: int | None = None) -> None:
        self.max_message = max_message
        self.ceiling = ceiling if ceiling is not None else 16 * max_message
        self.oversized = 0  # frames longer than max_message (delivered truncated)
        self.framing_errors = 0  # garbage length prefixes, incomplete octet frames at end of stream
        self._tail = bytearray()  # start of an incomplete frame
        self._need = 0  # tail length worth parsing again (or _NEED_DELIMITER)
        self._skip = 0  # bytes of an oversized octet frame still to discard
        self._resync = False  # discarding up to the next delimiter

    def feed(self, data: bytes) -> list[bytes]:
        """The complete messages in `data` (with what was left over from earlier chunks)."""
        out: list[bytes] = []
        n = len(data)
        pos = self._complete_tail(data, out) if self._tail else 0
        if self._skip:
            if n - pos <= self._skip:
                self._skip -= n - pos
                return out
            pos, self._skip = pos + self._skip, 0
        if self._resync:
            i = _delimiter(data, pos)
            if i < 0:
                return out
            pos, self._resync = i + 1, False
        end = self._split(data, out, pos)
        if end < n:
            self._tail = bytearray(memoryview(data)[end:])
        return out

    def close(self) -> list[bytes]:
        """End of stream: an unterminated newline frame is a message; a cut octet frame is an error."""
        tail, self._tail = bytes(self._tail), bytearray()
        out: list[bytes] = []
        if not tail or self._resync or self._skip:
            return out
        if self._need == _NEED_DELIMITER:
            self._split(tail + b"\n", out, 0)
        elif self._split(tail, out, 0) < len(tail):
            self.framing_errors += 1
        return out

    def _complete_tail(self, data: bytes, out: list[bytes]) -> int:
        """Completes the frame started in an earlier chunk with the head of `data` (copying only that
        head, not the whole chunk); returns where the rest of `data` starts."""
        n, pos, view = len(data), 0, memoryview(data)
        while self._tail and pos < n:
            tail = self._tail
            if self._need == _NEED_DELIMITER:
                i = _delimiter(data, pos)
                if i < 0 and len(tail) + n - pos <= self.max_message:
                    tail += view[pos:]
                    return n
                cut = n if i < 0 else i + 1
            else:
                cut = pos + self._need - len(tail)
                if cut > n:
                    tail += view[pos:]
                    return n
            tail += view[pos:cut]
            buf, self._tail = bytes(tail), bytearray()
            end = self._split(buf, out, 0)
            if end < len(buf):  # a length header that is still incomplete
                self._tail = bytearray(memoryview(buf)[end:])
            pos = cut
        return pos

    def _split(self, buf: bytes, out: list[bytes], pos: int) -> int:
        """Appends complete frames of `buf[pos:]` to `out`; returns where the incomplete rest starts."""
        n = len(buf)
        mx = self.max_message
        nul = buf.find(b"\0", pos)
        append = out.append
        while pos < n:
            c = buf[pos]
            if 48 <= c <= 57:  # a digit: maybe octet counting
                sp = buf.find(b" ", pos, pos + _MAX_DIGITS + 1)
                if sp < 0:
                    run = buf[pos:pos + _MAX_DIGITS + 1]
                    if run.isdigit():
                        if pos + len(run) == n and len(run) <= _MAX_DIGITS:
                            self._need = n - pos + 1  # header not complete yet: look again with 1 more byte
                            return pos
                        pos = self._garbage(buf, pos)
                        continue
                else:
                    head = buf[pos:sp]
                    if head.isdigit():
                        size = int(head)
                        if c == 48 or size > self.ceiling:
                            pos = self._garbage(buf, pos)
                            continue
                        start = sp + 1
                        take = size if size <= mx else mx
                        if n - start < take:
                            self._need = start - pos + take
                            return pos
                        msg = buf[start:start + take]
                        if msg[-1] in b"\n\r\0":
                            msg = msg.rstrip(b"\r\n\0")
                        if msg:
                            append(msg)
                        if size > mx:
                            self.oversized += 1
                            if n - start < size:
                                self._skip = size - (n - start)
                                return n
                        pos = start + size
                        continue
            # newline-delimited frames
            if nul < 0:  # no NUL in this chunk: split every frame up to the next digit line in C
                m = _DIGIT_LINE.search(buf, pos)
                last = buf.rfind(b"\n", pos, m.start() + 1 if m else n)
                if last >= 0:
                    self._lines(buf[pos:last], out)
                    pos = last + 1
                    continue
            else:  # frame by frame
                last = buf.find(b"\n", pos)
                if nul < pos:
                    nul = buf.find(b"\0", pos)
                if nul >= 0 and (last < 0 or nul < last):
                    last = nul
                if last >= 0:
                    self._lines(buf[pos:last], out)
                    pos = last + 1
                    continue
            if n - pos > mx:  # no delimiter yet and already too long
                append(buf[pos:pos + mx])
                self.oversized += 1
                self._resync = True
                return n
            self._need = _NEED_DELIMITER
            return pos
        return n

    def _lines(self, seg: bytes, out: list[bytes]) -> None:
        """Appends the LF-separated frames of `seg` (CR before LF removed, empty ones skipped)."""
        if b"\r" in seg:
            seg = seg.replace(b"\r\n", b"\n")
            if seg.endswith(b"\r"):
                seg = seg[:-1]
        lines = seg.split(b"\n")
        if b"" in lines:
            lines = [x for x in lines if x]
        mx = self.max_message
        if len(seg) > mx and max(map(len, lines), default=0) > mx:
            self.oversized += sum(len(x) > mx for x in lines)
            lines = [x[:mx] for x in lines]
        out += lines

    def _garbage(self, buf: bytes, pos: int) -> int:
        """Skips a frame with an implausible length prefix, up to and including the next delimiter."""
        self.framing_errors += 1
        end = _delimiter(buf, pos)
        if end < 0:
            self._resync = True
            return len(buf)
        return end + 1
