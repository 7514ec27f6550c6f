"""Child processes that must not outlive the process that started them."""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal
import threading
import time


def die_with_parent(parent: int) -> None:
    """Exit when `parent` dies (kill -9, OOM): the kernel sends SIGKILL on Linux (PR_SET_PDEATHSIG),
    and a watchdog thread exits where that is not available. `parent` is the pid the parent
    passed, so a parent that died while this process was still starting is noticed too."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
    if os.getppid() != parent:
        os._exit(1)

    def watch() -> None:
        while True:
            time.sleep(1.0)
            if os.getppid() != parent:
                os._exit(1)

    threading.Thread(target=watch, name="parent-watchdog", daemon=True).start()
