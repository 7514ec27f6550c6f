"""The cyclic garbage collector's settings for the hot loops (detection, intake, hunt).

Detector state is hundreds of thousands of long-lived objects (learned profiles, Lru tables), and
every event allocates a few dozen short-lived ones. With CPython's default thresholds (700, 10, 10)
the collector runs every few events and walks the young generations again and again: 15 % of the
detection process's CPU on the wire-speed mix (docs/performance.md). Per-event objects rarely form
cycles (msgspec structs are mostly `gc=False`, dicts of strings), so collections are made rarer, and
what exists once a process has loaded its state is frozen out of the collector's view. Cyclic
garbage is still collected, every 50,000 allocations instead of 700: a few MB at most.
"""

from __future__ import annotations

import gc

THRESHOLDS = (50_000, 20, 100)


def tune_for_throughput() -> None:
    """Call once a process has loaded its long-lived state (baselines, rules, inventories)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*THRESHOLDS)
