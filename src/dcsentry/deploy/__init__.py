"""Running dcsentry as a service: the systemd unit shipped in the package (docs/install.md; the
`systemd-unit` command is cli/deploy.py)."""

from __future__ import annotations

import sys
from importlib.resources import files
from pathlib import Path

_SHIPPED_COMMAND = "/opt/dcsentry/bin/dcsentry"


def unit_text(command: str | None = None) -> str:
    """The unit, its ExecStart pointing at `command` (default: the dcsentry running now, so a
    pipx or venv install anywhere gets a unit that starts itself)."""
    text = files(__package__).joinpath("dcsentry.service").read_text(encoding="utf-8")
    if command is None and Path(sys.argv[0]).name == "dcsentry":
        command = str(Path(sys.argv[0]).resolve())
    return text.replace(_SHIPPED_COMMAND, command) if command else text
