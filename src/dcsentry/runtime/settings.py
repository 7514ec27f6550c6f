"""Run-time detection settings (console / API) reaching every process that detects or routes.

Every detection core (the single node's, each partition of a distributed detect worker) and every
intake's honeytoken routing read the same effective lists (the file's plus the stored run-time ones)
through `SettingsWatch`; an engine takes a change through `DetectionEngine.update_lists`: in place, so the
detectors' counting windows and open incidents carry on across the change.
"""

from __future__ import annotations

import asyncio
import copy
import dataclasses
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from ..activities.context import Account
from ..config import Detection
from ..detectors.engine import DetectionEngine
from ..store.inventory import inventory_version, stored_accounts
from ..store.settings import effective_detection, runtime_settings, settings_version

SETTINGS_POLL = 2.0  # seconds between looks at the run-time settings (console / API changes)


class SettingsWatch:
    """The effective detection settings of one process, re-read from the store when they change.

    `latest` is one (version, settings) tuple, replaced whole: another thread reading it never sees
    a new version with old settings. Version 0.0 means no run-time list was ever set (the file's).
    """

    def __init__(self, store: Any, base: Detection, every: float = SETTINGS_POLL) -> None:
        self.store = store
        self.base = copy.deepcopy(base)  # the file's lists: run-time ones are added to these
        self.every = every
        self.latest: tuple[float, Detection] = (0.0, copy.deepcopy(base))
        self._checked = float("-inf")
        self.inventory_seen = 0.0  # version (import time) of the stored inventory; 0.0 = none imported
        self._inventory: tuple[float, list[Account]] = (0.0, [])

    @property
    def version(self) -> float:
        return self.latest[0]

    def poll(self, force: bool = False) -> Detection | None:
        """The new effective settings if they changed since the last look, else None. Looks at the
        store at most every `every` seconds unless `force`."""
        now = time.monotonic()
        if not force and now - self._checked < self.every:
            return None
        self._checked = now
        self.inventory_seen = inventory_version(self.store)
        version = settings_version(self.store)
        if version == self.latest[0]:
            return None
        eff = effective_detection(self.base, runtime_settings(self.store))
        self.latest = (version, eff)
        return eff

    def inventory(self) -> tuple[float, list[Account]]:
        """(version, accounts) of the stored inventory as last polled; read from the store once per
        version, only by a process that asks (ingest nodes never do)."""
        version = self.inventory_seen
        if self._inventory[0] != version:
            self._inventory = (version, stored_accounts(self.store) if version else [])
        return self._inventory


async def follow(watch: SettingsWatch, on_change: Callable[[Detection], None], counters: Counter) -> asyncio.Task:
    """Read the settings now (the caller starts with them), then every `watch.every` seconds from the
    returned task (cancel it to stop). A store that does not answer is counted (`settings_errors`)
    and the settings in hand stay until it does."""

    async def look() -> None:
        try:
            eff = await asyncio.to_thread(watch.poll, True)
        except Exception:
            counters["settings_errors"] += 1
            return
        if eff is not None:
            on_change(eff)

    async def loop() -> None:
        while True:
            await asyncio.sleep(watch.every)
            await look()

    await look()
    return asyncio.create_task(loop())


class Applied:
    """What one engine has taken from a watch: `sync` applies the watch's latest settings if newer.

    Called between batches by the engine's owner, so an engine is never changed mid-batch."""

    def __init__(self, watch: SettingsWatch | None, engine: DetectionEngine, tokens: bool = True) -> None:
        self.watch = watch
        self.engine = engine
        self.tokens = tokens  # False: the honeytoken list is kept empty (another engine raises those)
        self.version = 0.0
        self.inventory_version = 0.0

    def sync(self) -> bool:
        if self.watch is None:
            return False
        changed = False
        if self.watch.inventory_seen != self.inventory_version:
            self.inventory_version, accounts = self.watch.inventory()
            self.engine.replace_inventory(accounts)
            changed = True
        version, eff = self.watch.latest
        if version == self.version:
            return changed
        self.engine.update_lists(eff if self.tokens else dataclasses.replace(eff, honeytokens=[]))
        self.version = version
        return True
