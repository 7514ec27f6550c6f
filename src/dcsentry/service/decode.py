"""Spool row -> (layout, WindowsEvent): the SIEM layouts, decided per message."""

from __future__ import annotations

from ..formats.siem import parse_with_layout
from ..model import Origin, WindowsEvent


def decode_message(data: bytes, origin: Origin) -> tuple[str, WindowsEvent]:
    """Raises ValueError (UnknownLayout, BadMessage) with a reason fit for the operator."""
    return parse_with_layout(data, origin)
