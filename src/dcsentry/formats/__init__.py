"""Bytes -> WindowsEvent. Each reader streams; the format is sniffed from content.

`read_stream` is the one entry point: it sniffs (unless told), unwraps zip/gz containers member
by member without touching the disk, and hands the bytes to the matching reader.
"""

from __future__ import annotations

import codecs
import gzip
import io
import re
import shutil
import tempfile
import zipfile
import zlib
from collections.abc import Callable, Iterator
from typing import IO, Any

from ..model import Origin, WindowsEvent
from .evtx import MAGIC as EVTX_MAGIC
from .evtx import read_evtx
from .jsonl import read_jsonl
from .stats import Problem, ReadStats
from .syslog import read_syslog
from .xml import read_xml

__all__ = ["FORMATS", "Problem", "ReadStats", "read_stream", "sniff"]

FORMATS = ("evtx", "xml", "jsonl", "zip", "gz", "syslog")
_SPOOL_LIMIT = 64 << 20
# Captured SIEM/syslog messages: a PRI, an octet count, a syslog timestamp, or a layout's own start.
_SYSLOG = re.compile(rb"(?:\d{1,7} )?<\d{1,3}>|&lt;Syslog Header&gt;|CEF:\d|LEEF:|RsaSA|@cee:|\[\s*\{"
                     rb"|[A-Za-z]{3} +\d{1,2} \d\d:\d\d:\d\d |\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\S* "
                     rb"|(?:AgentDevice|EventCode|LogName|Logfile)=|\{\"name\":|[^\n]*MSWinEventLog(?:\t|\\t)")


def sniff(head: bytes) -> str | None:
    """Name the format from the first bytes of the input, or None."""
    if head.startswith(EVTX_MAGIC):
        return "evtx"
    if head.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        return "zip"
    if head.startswith(b"\x1f\x8b"):
        return "gz"
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE, codecs.BOM_UTF32_BE)) \
            or head[:2] in (b"<\x00", b"\x00<") or head[:4] == b"\x00\x00\x00<":  # UTF-16 or UTF-32
        return "xml"
    text = head.removeprefix(codecs.BOM_UTF8).lstrip()
    if _SYSLOG.match(text):  # before XML: `<13>` is a syslog PRI, never a tag; `{"name":` is QRadar JSON
        return "syslog"
    if text.startswith(b"<"):
        return "xml"
    if text.startswith(b"{"):
        return "jsonl"
    return None


def _seekable_copy(stream: IO[bytes]) -> IO[bytes]:
    """EVTX needs random access: spool a pipe or a compressed member (memory, then disk)."""
    if stream.seekable():
        return stream
    spool = tempfile.SpooledTemporaryFile(max_size=_SPOOL_LIMIT)
    shutil.copyfileobj(stream, spool, 1 << 20)
    spool.seek(0)
    return spool


def _read_zip(stream: IO[bytes], source: str, stats: ReadStats, threads: int,
              decode_in_helper: bool = False) -> Iterator[WindowsEvent]:
    try:
        archive = zipfile.ZipFile(_seekable_copy(stream))
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        stats.problem(Origin(source), f"not a readable zip archive: {exc}", "zip")
        return
    with archive:
        for info in archive.infolist():
            if info.is_dir():
                continue
            where = Origin(source, None, info.filename)

            def damaged(exc: BaseException, where: Origin = where) -> None:
                stats.problem(where, f"zip member unreadable: {exc}", "zip")

            try:
                with archive.open(info) as member:
                    yield from read_stream(io.BufferedReader(_UpToDamage(member, damaged, _ZIP_ERRORS)), source,
                                           stats, member=info.filename, threads=threads,
                                           decode_in_helper=decode_in_helper)
            except _ZIP_ERRORS as exc:
                damaged(exc)


_GZ_ERRORS = (OSError, EOFError, zlib.error)
_ZIP_ERRORS = (zipfile.BadZipFile, OSError, EOFError, zlib.error, RuntimeError, NotImplementedError)


class _UpToDamage(io.RawIOBase):
    """A gzip stream or zip member read up to where it breaks (cut short, corrupt, bad CRC), then a
    clean end: the reader keeps every event before the damage instead of losing the block it was
    reading. Reads are capped so a late error (a zip CRC check) costs at most 64 KiB."""

    def __init__(self, inner: IO[bytes] | io.BufferedIOBase, on_damage: Callable[[BaseException], None],
                 errors: tuple[type[BaseException], ...] = _GZ_ERRORS) -> None:
        self._inner = inner
        self._on_damage = on_damage
        self._errors = errors
        self._broken = False

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        if self._broken:
            return 0
        try:
            # a GzipFile or a ZipExtFile, which typeshed types as IO[bytes] (no read1)
            data = self._inner.read1(min(len(b), 1 << 16))  # type: ignore[union-attr]
        except self._errors as exc:
            self._broken = True
            self._on_damage(exc)
            return 0
        b[:len(data)] = data
        return len(data)


def _read_gz(stream: IO[bytes], source: str, stats: ReadStats, member: str | None,
             threads: int, decode_in_helper: bool = False) -> Iterator[WindowsEvent]:
    name = (member or source).removesuffix(".gz").rsplit("/", 1)[-1]

    def damaged(exc: BaseException) -> None:
        stats.problem(Origin(source, None, member), f"gzip stream damaged: {exc}", "gz")

    try:
        with gzip.GzipFile(fileobj=stream) as inner:
            yield from read_stream(io.BufferedReader(_UpToDamage(inner, damaged)), source, stats, member=name,
                                   threads=threads, decode_in_helper=decode_in_helper)
    except _GZ_ERRORS as exc:
        damaged(exc)


def read_stream(stream: IO[bytes], source: str, stats: ReadStats, fmt: str | None = None,
                member: str | None = None, threads: int = 0, path: str | None = None,
                decode_in_helper: bool = False) -> Iterator[WindowsEvent]:
    """Every event in `stream`. `path`, when the stream is a plain file, lets EVTX mmap it.
    `decode_in_helper`: see read_evtx."""
    if not isinstance(stream, io.BufferedReader) and not hasattr(stream, "peek"):
        stream = io.BufferedReader(stream)  # type: ignore[type-var]  # typeshed: a RawIOBase; any binary reader works
    head = stream.peek(64)[:64]
    if not head and fmt is None:  # an empty export (a query that matched nothing) holds no events; not an error
        return
    kind = fmt or sniff(head)
    if kind is None:
        stats.problem(Origin(source, None, member), "unrecognised format (not EVTX, XML, JSON lines, syslog, zip or "
                      "gz); use --format to say which", "format")
        return
    stats.formats[kind] += 1
    if kind == "evtx":
        yield from read_evtx(path or stream, source, stats, member, threads, decode_in_helper)
    elif kind == "xml":
        yield from read_xml(stream, source, stats, member)
    elif kind == "jsonl":
        yield from read_jsonl(stream, source, stats, member)
    elif kind == "zip":
        yield from _read_zip(stream, source, stats, threads, decode_in_helper)
    elif kind == "gz":
        yield from _read_gz(stream, source, stats, member, threads, decode_in_helper)
    elif kind == "syslog":
        yield from read_syslog(stream, source, stats, member)
    else:
        stats.problem(Origin(source, None, member), f"unknown format {kind!r}", "format")


