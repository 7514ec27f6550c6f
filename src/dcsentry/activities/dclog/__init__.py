"""DC-log activities: one module per family of events (reference/dc-log-alerts.md part A)."""

from __future__ import annotations

from ..context import DomainContext
from ..readers import Reader
from .access import AccessReader
from .accounts import AccountReader
from .certsvc import CertificateReader
from .directory import DirectoryReader
from .hosts import HostAddressReader
from .kerberos import TicketReader
from .logons import LogonReader
from .shares import ShareReader
from .system import SystemReader


def readers(ctx: DomainContext) -> list[Reader]:
    return [LogonReader(ctx), TicketReader(ctx), AccessReader(ctx), AccountReader(ctx), DirectoryReader(ctx),
            SystemReader(ctx), CertificateReader(ctx), ShareReader(ctx),
            HostAddressReader(ctx)]
