"""SQLite file plumbing: where a `sqlite:` URL points, private files, connections in WAL mode.
The schema is in store/migrations.py."""

from __future__ import annotations

import os
import sqlite3
import time
from pathlib import Path

BUSY_SECONDS = 30.0  # how long a connection waits for another's lock


def sqlite_path(url: str, data_dir: Path) -> Path:
    """As SQLAlchemy spells them: `sqlite:////abs/path.db` (absolute), `sqlite:///rel.db` or
    `sqlite:rel.db` (relative to the data dir), or a bare path."""
    rest = url.removeprefix("sqlite:")
    if rest.startswith("///"):
        rest = rest[3:]
    path = Path(rest)
    return path if path.is_absolute() else data_dir / path


def private_file(path: Path) -> None:
    """Create `path` (and missing parents) readable by its owner only, whatever the umask: the
    databases hold events, alerts and raw messages. An existing file is left as it is."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        pass


def connect_sqlite(path: Path, *, readonly: bool = False) -> sqlite3.Connection:
    """WAL mode (readers never block the writer), NORMAL sync (durable at each checkpointed commit
    under WAL; a power cut can lose only the last commits, an application crash loses nothing)."""
    if readonly:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=BUSY_SECONDS, check_same_thread=False)
    else:
        private_file(path)  # SQLite gives its -wal and -shm files the database file's mode
        db = sqlite3.connect(path, timeout=BUSY_SECONDS, isolation_level=None, check_same_thread=False)
        _enter_wal(db)
        db.execute("PRAGMA synchronous=NORMAL")
    db.execute(f"PRAGMA busy_timeout={int(BUSY_SECONDS * 1000)}")
    return db


def _enter_wal(db: sqlite3.Connection) -> None:
    """Switching a new file to WAL needs its exclusive lock; two processes opening it at the same
    moment (the service's receiver and processor, workers starting together) can each hold the
    shared lock the other waits on, and SQLite then answers "database is locked" at once instead of
    calling the busy handler (deadlock avoidance). The switch is made once per file: wait for the
    other to finish it."""
    deadline = time.monotonic() + BUSY_SECONDS
    delay = 0.005
    while True:
        try:
            db.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
        time.sleep(delay)
        delay = min(delay * 2, 0.2)


def close_quietly(db: sqlite3.Connection) -> None:
    """Closing at shutdown: an error then (a connection already gone) changes nothing."""
    try:
        db.close()
    except sqlite3.Error:
        pass
