"""Detectors of the DC's wider Security log (and the CA's), one file each
(reference/dc-log-alerts.md part B). Each takes the settings, the shared incidents, the baseline
and the `DomainContext` (inventory, logon sessions)."""

from __future__ import annotations

from ...activities.context import DomainContext
from ...config import Detection
from ..base import Detector, Incidents
from ..baseline import Baseline


def dc_log_detectors(cfg: Detection, incidents: Incidents, baseline: Baseline, ctx: DomainContext) -> list[Detector]:
    return []
