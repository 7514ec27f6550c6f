"""Hunting over files: read (time-merged), detect, and hand back the final alerts."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from .activities.context import Inventory
from .alerts import Alert
from .config import Detection
from .detectors.baseline import Baseline
from .detectors.engine import DetectionEngine
from .formats import ReadStats
from .incidents import Incident, IncidentEngine
from .sources.files import read_paths_by_time


def hunt(paths: Iterable[str], cfg: Detection, stats: ReadStats, fmt: str | None = None,
         baseline: Baseline | None = None, on_file: Callable[[str], None] | None = None,
         inventory: Inventory | None = None) -> tuple[list[Alert], DetectionEngine]:
    """Every alert the inputs raise, in its final state, oldest first. `inventory`: the domain's
    accounts from an admin's export (`hunt --inventory`)."""
    engine = DetectionEngine(cfg, baseline, inventory=inventory)
    for ev in read_paths_by_time(paths, stats, fmt, on_file=on_file):
        engine.feed(ev)
    engine.finish()
    return sorted(engine.alerts.values(), key=lambda a: (a.start, a.type)), engine


def link_incidents(alerts: list[Alert], cfg: Detection, engine: DetectionEngine) -> list[Incident]:
    """The alerts' incidents, oldest first; sets each security alert's `incident`. After the run, so the
    host aliases learned from the whole input name every address they can."""
    return IncidentEngine(cfg.incidents, engine.ctx).link_all(alerts)
