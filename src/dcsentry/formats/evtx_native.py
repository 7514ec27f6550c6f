"""The native EVTX parser, run in a helper process of its own.

The `evtx` package can loop forever on some corrupted records while holding the interpreter lock
(omerbenamram/evtx#290, still in 0.14): in-process, one bad byte would freeze `events`, `hunt`
and Ctrl-C alike. Here the Rust parser runs in a child process that streams the JSON records
back in batches; if it sends nothing for `stall` seconds it is killed, the file is reported and
reading goes on with the next input. As a side effect the native parse runs on a second core
while this process decodes.
"""

from __future__ import annotations

import multiprocessing as mp
import os
from collections.abc import Callable, Iterator
from multiprocessing.connection import Connection

BATCH = 256
DEFAULT_STALL = float(os.environ.get("DCSENTRY_EVTX_STALL", "20"))


def _sender(conn: Connection, decode: tuple[str, str | None] | None) -> Callable[[list], None]:
    """How a batch of records goes back: as the parser's JSON, or (`decode` = the events' source and
    member) decoded here into `WindowsEvent`s, msgpack-encoded, with the records that did not decode.
    Decoding here moves the reader's largest cost off the process that detects (`hunt`), and the
    msgpack is half the size of the JSON it replaces on the pipe."""
    if decode is None:
        return lambda batch: conn.send(("batch", batch))
    import msgspec

    from .evtx import decode_records

    encode = msgspec.msgpack.Encoder().encode
    source, member = decode

    def send(batch: list) -> None:
        events, bad = decode_records(batch, source, member)
        conn.send(("events", encode(events), bad, batch[-1][0]))

    return send


def _serve(conn: Connection, parent: int) -> None:
    """Child: parse the files the parent names; send ("batch", [...]) or ("events", ...) (_sender),
    ("error", ...), ("done",)."""
    import evtx

    from ..child_process import die_with_parent

    die_with_parent(parent)
    while True:
        try:
            path, threads, decode = conn.recv()
        except EOFError:
            return
        send = _sender(conn, decode)
        try:
            it = evtx.PyEvtxParser(path, number_of_threads=threads).records_json()
        except (RuntimeError, OSError, ValueError) as exc:
            conn.send(("fatal", str(exc)))
            continue
        batch: list[tuple[int, str, str]] = []
        while True:
            try:
                rec = next(it)
            except StopIteration:
                break
            except (RuntimeError, OSError, ValueError) as exc:
                if batch:
                    send(batch)
                    batch = []
                conn.send(("error", str(exc)))
                continue
            if rec is None:  # never: the stub's Optional is how pyo3 spells the end of an iterator
                break
            batch.append((rec["event_record_id"], rec["data"], rec["timestamp"]))
            if len(batch) >= BATCH:
                send(batch)
                batch = []
        if batch:
            send(batch)
        conn.send(("done",))


class NativeParser:
    """A helper process, taken from a small per-process pool for the time one file is read (files
    read side by side, as `hunt` merges them by time, each need their own), and replaced after a
    stall."""

    _idle: dict[int, list[NativeParser]] = {}

    def __init__(self) -> None:
        self.proc: mp.process.BaseProcess | None = None
        self.conn: Connection | None = None

    @classmethod
    def acquire(cls) -> NativeParser:
        pid = os.getpid()  # a forked reader needs helpers of its own
        if pid not in cls._idle:
            cls._idle = {pid: []}
        pool = cls._idle[pid]
        return pool.pop() if pool else cls()

    def release(self) -> None:
        if self.proc is not None:
            self._idle.setdefault(os.getpid(), []).append(self)

    @classmethod
    def parse(cls, path: str, threads: int = 0, stall: float | None = None,
              decode: tuple[str, str | None] | None = None) -> Iterator[tuple]:
        """`records` of a helper that is this reader's alone until the file is done."""
        helper = cls.acquire()
        try:
            yield from helper.records(path, threads, stall, decode)
        finally:
            helper.release()

    def _start(self) -> None:
        # fork: no second interpreter start-up per process (spawn re-imports the CLI, ~0.5 s). The
        # child only parses and writes to its pipe, so threads of the parent (a progress bar)
        # cannot leave it a lock it needs.
        ctx = mp.get_context("fork") if "fork" in mp.get_all_start_methods() else mp.get_context("spawn")
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=_serve, args=(child, os.getpid()), name="dcsentry-evtx", daemon=True)
        self.proc.start()
        child.close()

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.join(5)
        if self.conn is not None:
            self.conn.close()
        self.proc = self.conn = None

    def records(self, path: str, threads: int = 0, stall: float | None = None,
                decode: tuple[str, str | None] | None = None) -> Iterator[tuple]:
        """("batch", [(record_no, json, timestamp)...]) or, with `decode` = (source, member), ("events",
        msgpack of [WindowsEvent], [(record_no, why it did not decode)], last record_no) / ("error", msg) /
        ("fatal", msg) / ("stalled",)."""
        stall = DEFAULT_STALL if stall is None else stall
        if self.proc is None or not self.proc.is_alive():
            self._start()
        assert self.conn is not None
        self.conn.send((path, threads, decode))
        finished = False
        try:
            while True:
                if not self.conn.poll(stall):
                    self.kill()
                    yield ("stalled",)
                    return
                try:
                    msg = self.conn.recv()
                except EOFError:  # the helper died (a native crash)
                    self.kill()
                    yield ("fatal", "the EVTX parser process died")
                    return
                if msg[0] == "done":
                    finished = True
                    return
                yield msg
                if msg[0] == "fatal":
                    finished = True
                    return
        finally:
            if not finished and self.proc is not None:  # the reader stopped early: the helper is mid-file
                self.kill()
