"""DC-log activities: one module per family of events (reference/dc-log-alerts.md part A)."""

from __future__ import annotations

from ..context import DomainContext
from ..readers import Reader
from .logons import LogonReader


def readers(ctx: DomainContext) -> list[Reader]:
    return [LogonReader(ctx)]
