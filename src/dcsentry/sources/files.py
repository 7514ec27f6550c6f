"""Files, directories (recursed) and stdin as event sources."""

from __future__ import annotations

import heapq
import os
import sys
from collections.abc import Callable, Iterable, Iterator

from ..formats import ReadStats, read_stream
from ..formats.evtx import prefetch
from ..model import Origin, WindowsEvent

STDIN = "-"


def expand(paths: Iterable[str], stats: ReadStats) -> Iterator[str]:
    """Files in the order given; a directory's files sorted, recursively; `-` is stdin."""
    for p in paths:
        if p == STDIN or os.path.isfile(p):
            yield p
        elif os.path.isdir(p):
            for root, dirs, files in os.walk(p):
                dirs.sort()
                for f in sorted(files):
                    yield os.path.join(root, f)
        else:
            stats.problem(Origin(p), "no such file or directory", "io")


def read_file(path: str, stats: ReadStats, fmt: str | None = None, threads: int = 0,
              decode_in_helper: bool = False) -> Iterator[WindowsEvent]:
    """Every event of one file (or stdin), counted into `stats`. `decode_in_helper`: see read_evtx."""
    stats.files += 1
    try:
        if path == STDIN:
            yield from read_stream(sys.stdin.buffer, "<stdin>", stats, fmt, threads=threads,
                                   decode_in_helper=decode_in_helper)
            return
        with open(path, "rb") as fh:
            yield from read_stream(fh, path, stats, fmt, threads=threads, path=path,
                                   decode_in_helper=decode_in_helper)
    except OSError as exc:
        stats.problem(Origin(path), f"cannot read: {exc.strerror or exc}", "io")


def read_paths(paths: Iterable[str], stats: ReadStats, fmt: str | None = None,
               ids: frozenset[int] | None = None, threads: int = 0,
               on_file: Callable[[str], None] | None = None) -> Iterator[WindowsEvent]:
    """All events of all inputs; `ids` filters what is yielded (all records are still counted)."""
    saw = stats.saw
    for path in expand(paths, stats):
        if on_file is not None:
            on_file(path)
        for ev in read_file(path, stats, fmt, threads):
            saw(ev)
            if ids is None or ev.event_id in ids:
                yield ev


MAX_MERGED_FILES = 32  # each open EVTX file has a parser process while it is read


def read_paths_by_time(paths: Iterable[str], stats: ReadStats, fmt: str | None = None,
                       on_file: Callable[[str], None] | None = None) -> Iterator[WindowsEvent]:
    """All inputs merged in time order (each file is already roughly in order), so that a DC's
    Security log and its NTLM operational log read as separate files still interleave as they
    happened. Past MAX_MERGED_FILES files, inputs are read one after the other."""
    files = list(expand(paths, stats))

    def one(path: str) -> Iterator[WindowsEvent]:
        if on_file is not None:
            on_file(path)
        for ev in read_file(path, stats, fmt, decode_in_helper=True):  # detection follows: decode on another core
            stats.saw(ev)
            yield ev

    if len(files) == 1 or len(files) > MAX_MERGED_FILES:
        for i, f in enumerate(files):
            ahead = i + 1 < len(files)
            for ev in one(f):
                if ahead:  # this file's helper is at work: the next file's starts too (formats/evtx.py)
                    prefetch(files[i + 1], fmt)
                    ahead = False
                yield ev
        return
    yield from heapq.merge(*(one(f) for f in files), key=lambda ev: ev.time)
