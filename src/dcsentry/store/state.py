"""Detector baselines saved in SQLite, so learning survives a restart (`hunt --state`, `serve`)."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

from ..detectors.baseline import Baseline

_SCHEMA = """
CREATE TABLE IF NOT EXISTS baseline (
    name TEXT PRIMARY KEY,
    data BLOB NOT NULL,
    saved_at REAL NOT NULL
)
"""


def load_baseline(path: str | Path, name: str = "default") -> Baseline:
    """The saved baseline, or a fresh one when there is none yet."""
    with sqlite3.connect(path) as db:
        db.execute(_SCHEMA)
        row = db.execute("SELECT data FROM baseline WHERE name = ?", (name,)).fetchone()
    return Baseline.load(row[0]) if row else Baseline()


def save_baseline(path: str | Path, baseline: Baseline, name: str = "default") -> None:
    with sqlite3.connect(path) as db:
        db.execute(_SCHEMA)
        db.execute("INSERT INTO baseline (name, data, saved_at) VALUES (?, ?, ?) "
                   "ON CONFLICT (name) DO UPDATE SET data = excluded.data, saved_at = excluded.saved_at",
                   (name, baseline.dump(), time.time()))
