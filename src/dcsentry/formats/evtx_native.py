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
from typing import NamedTuple

BATCH = 256
PIPE_SIZE = 1 << 20
DEFAULT_STALL = float(os.environ.get("DCSENTRY_EVTX_STALL", "20"))


class Lines(NamedTuple):
    """Ask a helper for finished `events --jsonl` lines (formats/evtx.py `encode_lines`) of the
    events of `source` whose id is in `ids` (all if None): the reader then only writes bytes, so
    `--jobs N` helpers keep N cores busy, and the parser's JSON never crosses a pipe."""

    source: str
    member: str | None
    ids: frozenset[int] | None


Decode = tuple[str, str | None] | Lines | None


def _sender(conn: Connection, decode: Decode) -> Callable[[list], None]:
    """How a batch of records goes back: as the parser's JSON, or (`decode` = the events' source and
    member) decoded here into `WindowsEvent`s, msgpack-encoded, with the records that did not decode.
    Decoding here moves the reader's largest cost off the process that detects (`hunt`), and the
    msgpack is half the size of the JSON it replaces on the pipe. With `Lines`: as JSON lines."""
    if decode is None:
        return lambda batch: conn.send(("batch", batch))
    if isinstance(decode, Lines):
        from .evtx import encode_lines

        want = decode
        return lambda batch: conn.send(encode_lines(batch, want))
    import msgspec

    from .evtx import decode_records

    encode = msgspec.msgpack.Encoder().encode
    source, member = decode

    def send(batch: list) -> None:
        events, bad = decode_records(batch, source, member)
        conn.send(("events", encode(events), bad, batch[-1][0]))

    return send


def _widen(conn: Connection) -> None:
    """Give the results pipe 1 MiB instead of Linux's 64 KiB, so the helper runs several batches
    ahead of the reader instead of waiting for each to be read: `hunt` on the corpus x10 went from
    3.2-4.3 s to 2.6-2.8 s of wall time at the same CPU time. Best effort (Linux only; an
    unprivileged process may go up to /proc/sys/fs/pipe-max-size, 1 MiB by default)."""
    try:
        import fcntl

        fcntl.fcntl(conn.fileno(), fcntl.F_SETPIPE_SZ, PIPE_SIZE)
    except (ImportError, AttributeError, OSError):
        pass


def _serve(requests: Connection, conn: Connection, parent: int) -> None:
    """Child: parse the files the parent names on `requests`; send ("batch", [...]) or ("events", ...)
    (_sender), ("error", ...), ("done",) on `conn`."""
    import evtx

    from ..child_process import die_with_parent

    die_with_parent(parent)
    while True:
        try:
            path, threads, decode = requests.recv()
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
    _ahead: dict[tuple, NativeParser] = {}  # (pid, path, threads, decode) -> a helper already asked for it

    def __init__(self) -> None:
        self.proc: mp.process.BaseProcess | None = None
        self.conn: Connection | None = None  # results, from the helper
        self.requests: Connection | None = None  # the files to parse, to the helper

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
    def prefetch(cls, path: str, threads: int = 0, decode: Decode = None) -> None:
        """Ask a helper for `path` now, so that it parses while the reader finishes the file before:
        read one after another, each small file otherwise left the helper idle while the reader
        detected, then the reader idle while the helper parsed the next (`hunt` on the corpus x10:
        310 files of 400 records). `parse` with the same arguments takes that helper's results."""
        key = (os.getpid(), path, threads, decode)
        if key in cls._ahead:
            return
        helper = cls.acquire()
        helper._request(path, threads, decode)
        cls._ahead[key] = helper

    @classmethod
    def parse(cls, path: str, threads: int = 0, stall: float | None = None,
              decode: Decode = None) -> Iterator[tuple]:
        """`records` of a helper that is this reader's alone until the file is done."""
        helper = cls._ahead.pop((os.getpid(), path, threads, decode), None)
        asked = helper is not None
        if helper is None:
            helper = cls.acquire()
        try:
            yield from helper.records(path, threads, stall, decode, asked)
        finally:
            helper.release()

    def begin(self, path: str, threads: int = 0, decode: Decode = None) -> Connection:
        """Ask for `path` and return the connection to wait on, for a reader that multiplexes several
        helpers (sources/parallel.py); `receive` each message once it is readable."""
        self._request(path, threads, decode)
        assert self.conn is not None
        return self.conn

    def receive(self) -> tuple:
        """One message of `begin`'s file (see `records`). After "done" or "fatal" the helper is free
        again (`release`); after a crash it is gone. A stall is the caller's to judge (`kill`)."""
        assert self.conn is not None
        try:
            return self.conn.recv()
        except EOFError:  # the helper died (a native crash)
            self.kill()
            return ("fatal", "the EVTX parser process died")

    def _request(self, path: str, threads: int, decode: Decode) -> None:
        if self.proc is None or not self.proc.is_alive():
            self._start()
        assert self.requests is not None
        self.requests.send((path, threads, decode))

    def _start(self) -> None:
        # fork: no second interpreter start-up per process (spawn re-imports the CLI, ~0.5 s). The
        # child only parses and writes to its pipe, so threads of the parent (a progress bar)
        # cannot leave it a lock it needs.
        ctx = mp.get_context("fork") if "fork" in mp.get_all_start_methods() else mp.get_context("spawn")
        requests, self.requests = ctx.Pipe(duplex=False)
        self.conn, results = ctx.Pipe(duplex=False)  # one-way pipes: the results one can be widened
        _widen(results)
        self.proc = ctx.Process(target=_serve, args=(requests, results, os.getpid()), name="dcsentry-evtx",
                                daemon=True)
        self.proc.start()
        requests.close()
        results.close()

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.join(5)
        for conn in (self.conn, self.requests):
            if conn is not None:
                conn.close()
        self.proc = self.conn = self.requests = None

    def records(self, path: str, threads: int = 0, stall: float | None = None,
                decode: Decode = None, asked: bool = False) -> Iterator[tuple]:
        """("batch", [(record_no, json, timestamp)...]) or, with `decode` = (source, member), ("events",
        msgpack of [WindowsEvent], [(record_no, why it did not decode)], last record_no) / ("error", msg) /
        ("fatal", msg) / ("stalled",). `asked`: the request was sent already (`prefetch`)."""
        stall = DEFAULT_STALL if stall is None else stall
        if not asked:
            self._request(path, threads, decode)
        elif self.proc is None:  # killed since (a stall of the reader before): ask a new one
            self._request(path, threads, decode)
        assert self.conn is not None
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
