"""JSON lines: one object per line, written in large buffered blocks."""

from __future__ import annotations

from typing import IO, Any

import msgspec


class JsonLinesWriter:
    """Encodes records to a binary stream; `flush_every` lines are joined into one write."""

    def __init__(self, out: IO[bytes], flush_every: int = 512) -> None:
        self._out = out
        self._enc = msgspec.json.Encoder()
        self._buf = bytearray()
        self._n = 0
        self._flush_every = flush_every
        self.written = 0

    def write(self, obj: Any) -> None:
        self._enc.encode_into(obj, self._buf, len(self._buf))
        self._buf += b"\n"
        self._n += 1
        self.written += 1
        if self._n >= self._flush_every:
            self.flush()

    def write_raw(self, block: bytes) -> None:
        """Already-encoded lines (from a worker process)."""
        self.flush()
        self._out.write(block)

    def flush(self) -> None:
        if self._buf:
            self._out.write(self._buf)
            self._buf.clear()
            self._n = 0
        self._out.flush()

    def close(self) -> None:
        self.flush()
