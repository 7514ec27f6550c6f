"""Reading many files on all cores for `events --jsonl`.

Parsing is CPU-bound Python work after the Rust parser, so one process per core, each taking
whole files. Workers send back blocks of ready JSON lines (about 1 MiB each) through a bounded
queue, so memory stays flat whatever the input size. Each file's lines keep their order; lines
of different files may interleave block by block (every line carries its `origin`).
"""

from __future__ import annotations

import multiprocessing as mp
import os
import queue as _queue
from collections.abc import Callable, Iterator

import msgspec

from ..child_process import die_with_parent
from ..formats import Problem, ReadStats
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


def parallel_jsonl(paths: list[str], stats: ReadStats, fmt: str | None, ids: frozenset[int] | None,
                   jobs: int, on_file: Callable[[str], None] | None = None) -> Iterator[bytes]:
    """Blocks of JSON lines for all `paths`, read by `jobs` worker processes."""
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
