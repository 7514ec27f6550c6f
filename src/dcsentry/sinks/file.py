"""The file transport: alert lines appended to a local file (cef+file, jsonl, ocsf, ecs URLs), fsynced
per delivered batch, private (0600), rotated by logrotate or by itself."""

from __future__ import annotations

import os
from typing import Any, BinaryIO

from .syslog import Transport


class FileTransport(Transport):
    """Appends one line per message, flushed per message and fsynced per delivered batch (the forwarder
    deletes outbox rows only after that, so a power cut loses nothing). Reopens the path when it was
    rotated away (renamed or deleted), so logrotate's default `create` mode works without a signal.
    With `rotate_bytes` it rotates by itself: a file that would grow past that size is renamed to
    ``PATH.1`` (``.1`` -> ``.2`` ... up to `keep`, the oldest deleted) and a new one started."""

    name = "file"

    def __init__(self, path: str, rotate_bytes: int = 0, keep: int = 5, **kw: Any) -> None:
        super().__init__(**kw)
        if rotate_bytes < 0 or keep < 1:
            raise ValueError("rotate_bytes must be >= 0 and keep >= 1")
        self.path = path
        self.rotate_bytes = rotate_bytes
        self.keep = keep
        self._fh: BinaryIO | None = None
        self._ino: tuple[int, int] | None = None
        self._size = 0

    def _open(self) -> None:
        # 0600 whatever the umask: alerts name accounts and hosts (docs/security.md).
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        fh = os.fdopen(fd, "ab")  # held open across sends, closed in _shut
        st = os.fstat(fh.fileno())
        self._fh, self._ino, self._size = fh, (st.st_dev, st.st_ino), st.st_size

    def _alive(self) -> bool:
        try:
            st = os.stat(self.path)
        except OSError:
            return False
        return (st.st_dev, st.st_ino) == self._ino

    def _write(self, msg: bytes) -> None:
        line = msg.rstrip(b"\r\n") + b"\n"
        if self.rotate_bytes and self._size and self._size + len(line) > self.rotate_bytes:
            self._rotate()
        fh = self._fh
        assert fh is not None
        fh.write(line)
        fh.flush()
        self._size += len(line)

    def _commit(self) -> None:
        if self._fh is not None:
            os.fsync(self._fh.fileno())

    def _rotate(self) -> None:
        """PATH -> PATH.1 (older ones shifted, the last deleted), then a fresh PATH."""
        self._commit()
        self._shut()
        for i in range(self.keep - 1, 0, -1):
            if os.path.exists(f"{self.path}.{i}"):
                os.replace(f"{self.path}.{i}", f"{self.path}.{i + 1}")
        os.replace(self.path, f"{self.path}.1")
        self._open()

    def _shut(self) -> None:
        if self._fh is not None:
            fh, self._fh = self._fh, None
            fh.close()
