"""The start of every child process `serve` runs (the detection process of either mode)."""

from __future__ import annotations

import os
import signal
import socket

from ..child_process import die_with_parent


def child_setup(parent_pid: int) -> None:
    """Die with the parent, and leave SIGINT/SIGTERM to it: the parent decides when to stop and
    sets the child's stop event, so the batch in hand is finished."""
    die_with_parent(parent_pid)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


def node_name() -> str:
    """This process's name among a deployment's nodes (its counters row, its leases)."""
    return f"{socket.gethostname().split('.')[0]}-{os.getpid()}".replace(".", "-")
