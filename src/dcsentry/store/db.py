"""SQLite file plumbing: where a `sqlite:` URL points, private files, connections in WAL mode.
The schema is in store/migrations.py."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path


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
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30, check_same_thread=False)
    else:
        private_file(path)  # SQLite gives its -wal and -shm files the database file's mode
        db = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
    db.execute("PRAGMA busy_timeout=30000")
    return db


def close_quietly(db: sqlite3.Connection) -> None:
    """Closing at shutdown: an error then (a connection already gone) changes nothing."""
    try:
        db.close()
    except sqlite3.Error:
        pass
