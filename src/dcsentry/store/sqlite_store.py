"""The store on a SQLite file by path: the name earlier code imports. New code opens the store by
URL with `open_store(url, data_dir)` from `store.store` and types it as `Store`."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from .backend import SqliteBackend
from .rows import Batch, stored_event_ids
from .store import Store, open_store

__all__ = ["Batch", "SqliteStore", "Store", "open_store", "stored_event_ids"]


class SqliteStore(Store):
    """`Store` on the SQLite file at `path`."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sqlite = SqliteBackend(path)
        super().__init__(self.sqlite)

    @property
    def _db(self) -> sqlite3.Connection:
        return self.sqlite.db
