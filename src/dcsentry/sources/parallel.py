"""Reading many files on all cores for `events --jsonl`.

Parsing is CPU-bound Python work after the Rust parser, so one process per core, each taking
whole files. EVTX files go straight to that many parser helpers (formats/evtx_native.py), each
parsing, decoding and encoding its file into ready JSON lines (`Lines`): this process only writes
them, and the parser's JSON never crosses a pipe (before, a reader process per core decoded what
its own helper parsed: two processes per core, and every record pickled once more). Other files go
to worker processes sending back blocks of ready JSON lines (about 1 MiB each) through a bounded
queue. Memory stays flat whatever the input size. Each file's lines keep their order; lines of
different files may interleave block by block (every line carries its `origin`).
"""

from __future__ import annotations

import multiprocessing as mp
import os
import queue as _queue
import time
from collections.abc import Callable, Iterator
from multiprocessing.connection import Connection, wait

import msgspec

from ..child_process import die_with_parent
from ..formats import Problem, ReadStats
from ..formats.evtx import MAGIC, LinesFile
from ..formats.evtx_native import DEFAULT_STALL, Lines, NativeParser
from .files import read_file

BLOCK = 1 << 20
_DONE = "done"
_BLOCK = "block"
_PROBLEM = "problem"


def default_jobs(n_files: int) -> int:
    return max(1, min(len(os.sched_getaffinity(0)), n_files))


def _worker(tasks: mp.Queue, results: mp.Queue, fmt: str | None, ids: frozenset[int] | None, parent: int) -> None:
    die_with_parent(parent)
    enc = msgspec.json.Encoder()
    while True:
        path = tasks.get()
        if path is None:
            return
        stats = ReadStats(on_problem=lambda p: results.put((_PROBLEM, p)))
        buf = bytearray()
        saw = stats.saw
        for ev in read_file(path, stats, fmt, threads=1):
            saw(ev)
            if ids is None or ev.event_id in ids:
                enc.encode_into(ev, buf, len(buf))
                buf += b"\n"
                if len(buf) >= BLOCK:
                    results.put((_BLOCK, bytes(buf)))
                    buf.clear()
        if buf:
            results.put((_BLOCK, bytes(buf)))
        results.put((_DONE, path, stats.counts()))


def _is_evtx(path: str, fmt: str | None) -> bool:
    """A plain EVTX file a helper can open (a container or stream goes through `read_file`)."""
    if fmt not in (None, "evtx"):
        return False
    try:
        with open(path, "rb") as fh:
            return fmt == "evtx" or fh.read(len(MAGIC)) == MAGIC
    except OSError:
        return False  # reported by read_file, as for any file


def parallel_jsonl(paths: list[str], stats: ReadStats, fmt: str | None, ids: frozenset[int] | None,
                   jobs: int, on_file: Callable[[str], None] | None = None) -> Iterator[bytes]:
    """Blocks of JSON lines for all `paths`: EVTX files by `jobs` parser helpers, others by `jobs`
    worker processes."""
    evtx_set = {p for p in paths if _is_evtx(p, fmt)}
    evtx_files = [p for p in paths if p in evtx_set]
    others = [p for p in paths if p not in evtx_set]
    if others:
        yield from _workers_jsonl(others, stats, fmt, ids, jobs, on_file)
    if evtx_files:
        yield from evtx_jsonl(evtx_files, stats, ids, jobs, on_file)


class _Reading:
    """One EVTX file being read by a helper."""

    def __init__(self, path: str, stats: ReadStats, ids: frozenset[int] | None) -> None:
        self.helper = NativeParser.acquire()
        self.conn: Connection = self.helper.begin(path, 1, Lines(path, None, ids))
        self.file = LinesFile(path, stats)
        self.heard = time.monotonic()


def _forgive(active: dict[Connection, _Reading], waited: float) -> None:
    """The time this reader's consumer held it (a slow stdout) is no helper's silence."""
    if waited > 0.1:
        for r in active.values():
            r.heard += waited


def evtx_jsonl(paths: list[str], stats: ReadStats, ids: frozenset[int] | None, jobs: int,
               on_file: Callable[[str], None] | None = None, stall: float | None = None) -> Iterator[bytes]:
    """JSON lines of plain EVTX files, `jobs` of them parsed side by side by helpers. A helper
    silent for `stall` seconds is killed and its file reported, as `read_evtx` does."""
    stall = DEFAULT_STALL if stall is None else stall
    pending = list(reversed(paths))
    active: dict[Connection, _Reading] = {}
    try:
        while pending or active:
            while pending and len(active) < jobs:
                path = pending.pop()
                if on_file is not None:
                    on_file(path)
                stats.files += 1
                stats.formats["evtx"] += 1
                r = _Reading(path, stats, ids)
                active[r.conn] = r
            ready = wait(list(active), timeout=min(1.0, stall))
            now = time.monotonic()
            for conn in ready:
                r = active[conn]  # type: ignore[index]
                r.heard = now
                msg = r.helper.receive()
                if msg[0] in ("done", "fatal"):
                    del active[r.conn]
                    r.helper.release()
                if msg[0] != "done":
                    block = r.file.take(msg)
                    if block:
                        before = time.monotonic()
                        yield block
                        _forgive(active, time.monotonic() - before)
            for r in [r for r in active.values() if now - r.heard > stall]:
                del active[r.conn]
                r.helper.kill()
                r.file.take(("stalled",))
    finally:
        for r in active.values():  # stopped early (an error, a closed pipe): helpers are mid-file
            r.helper.kill()


def _workers_jsonl(paths: list[str], stats: ReadStats, fmt: str | None, ids: frozenset[int] | None,
                   jobs: int, on_file: Callable[[str], None] | None = None) -> Iterator[bytes]:
    """Blocks of JSON lines for `paths`, read by `jobs` worker processes."""
    ctx = mp.get_context("fork")
    tasks: mp.Queue = ctx.Queue()
    results: mp.Queue = ctx.Queue(maxsize=4 * jobs)
    for p in paths:
        tasks.put(p)
    for _ in range(jobs):
        tasks.put(None)
    # not daemonic: each reader starts its own EVTX helper process (formats/evtx_native.py)
    workers = [ctx.Process(target=_worker, args=(tasks, results, fmt, ids, os.getpid())) for _ in range(jobs)]
    for w in workers:
        w.start()
    remaining = len(paths)
    try:
        while remaining:
            try:
                msg = results.get(timeout=1.0)
            except _queue.Empty:
                if not any(w.is_alive() for w in workers):
                    raise RuntimeError("a reader process died unexpectedly") from None
                continue
            kind = msg[0]
            if kind == _BLOCK:
                yield msg[1]
            elif kind == _PROBLEM:  # counted with the file's totals when it is done
                problem: Problem = msg[1]
                if len(stats.problems) < stats.problems_kept:
                    stats.problems.append(problem)
                if stats.on_problem is not None:
                    stats.on_problem(problem)
            else:
                remaining -= 1
                _, path, counts = msg
                if on_file is not None:
                    on_file(path)
                stats.add_counts(counts)
    finally:
        for w in workers:
            w.join(timeout=5)
            if w.is_alive():
                w.terminate()
