"""Readers of the DC's wider Security log (and the CA's): event -> DC-log activities.

The builder (builder.py) keeps the 2020 sensor's views (NTLM join, group changes, services); each
reader here owns a set of event ids, turns them into activities and may fill the shared
`DomainContext` (logon sessions, the inventory). A reader that assembles several events into one
activity (5136 changes tied by OpCorrelationID) holds them until `release` says the stream's clock
has moved past them; `holding` tells the builder there is something to release.
"""

from __future__ import annotations

from typing import Protocol

from ..model import WindowsEvent
from . import Activity
from .context import DomainContext


class Reader(Protocol):
    ids: frozenset[int]

    @property
    def holding(self) -> bool: ...

    def feed(self, ev: WindowsEvent) -> list[Activity]: ...

    def release(self, before: float) -> list[Activity]: ...


class Stateless:
    """Base of readers that never hold an event."""

    ids: frozenset[int] = frozenset()
    holding = False

    def __init__(self, ctx: DomainContext) -> None:
        self.ctx = ctx

    def release(self, before: float) -> list[Activity]:
        return []


def default_readers(ctx: DomainContext) -> list[Reader]:
    """Every reader, in the order they see an event (the logon reader first: later readers of the
    same event may ask for the session it stored)."""
    from .dclog import readers

    return readers(ctx)
