"""Detector baselines kept between runs (`hunt --state`): in any store `serve --store` opens, so a
hunt can share the service's PostgreSQL database or keep its own SQLite file.

`where` is a store URL (`sqlite:PATH`, `postgresql://...`) or, as before URLs, a bare path to a
SQLite file; relative SQLite paths are taken from the current directory. The store's migrations
run on open: an older state file (only its `baseline` table) is brought up to the current schema
and keeps its baselines.
"""

from __future__ import annotations

from pathlib import Path

from ..detectors.baseline import Baseline
from .store import Store, open_store


def _open(where: str | Path) -> Store:
    return open_store(str(where), Path.cwd())


def load_baseline(where: str | Path, name: str = "default") -> Baseline:
    """The saved baseline, or a fresh one when there is none yet."""
    store = _open(where)
    try:
        return store.load_baseline(name)
    finally:
        store.close()


def save_baseline(where: str | Path, baseline: Baseline, name: str = "default") -> None:
    store = _open(where)
    try:
        store.save_baseline(baseline, name)
    finally:
        store.close()
