"""What a `serve` process runs, as two small strategies: its role and its mode.

The role says which parts run here (listeners and an intake; a detection process; the web port
always, when configured). The mode says what stands between intake and detection: the single
node's spool, or the distributed mode's JetStream stream. Every combination runs the same runtime
core (runtime/); only these two choices differ.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..config import Config
from ..runtime.child import node_name
from ..runtime.intake import Intake, SpoolIntake
from ..runtime.single import ProcessPaths, single_node_main
from ..sources.spool import Spool
from ..store.store import Store


@dataclass(frozen=True)
class Role:
    name: str
    listens: bool  # syslog/RELP/WEF listeners and an intake
    detects: bool  # a detection process (and, when it leads, the deployment's housekeeping)


ROLES = {"all": Role("all", True, True), "ingest": Role("ingest", True, False),
         "detect": Role("detect", False, True), "web": Role("web", False, False)}


class SingleNode:
    """Intake and detection meet in the spool (spool.db beside the store)."""

    node = "local"

    def __init__(self, cfg: Config, data: Path, store: Store, announce: Callable[[str], None]) -> None:
        self.cfg, self.data, self.store = cfg, data, store

    def intake(self) -> Intake:
        spool = Spool(self.data / "spool.db", self.cfg.serve.spool_max_rows)
        return SpoolIntake(self.cfg, spool, self.store.checkpoint)

    def detection(self, store_url: str, console_url: str) -> tuple[Callable[..., None], tuple[Any, ...], str]:
        """(target, leading arguments, process name) of the detection child process."""
        return single_node_main, (self.cfg, ProcessPaths(store_url, self.data / "spool.db", console_url,
                                                          os.getpid())), "dcsentry-processor"

    def describe(self) -> str:
        return ""


class Distributed:
    """Intake nodes publish to a JetStream stream; detect workers share its partitions (bus/)."""

    def __init__(self, cfg: Config, data: Path, store: Store, announce: Callable[[str], None]) -> None:
        self.cfg, self.data, self.store, self.announce = cfg, data, store, announce
        self.node = node_name()

    def intake(self) -> Intake:
        from ..bus.ingest import BusIntake  # nats-py loads only in this mode

        wef = self.cfg.wef.https or self.cfg.wef.http
        return BusIntake(self.cfg, self.node, self.announce, self.store,
                         spool_path=self.data / "spool.db" if wef else None)

    def detection(self, store_url: str, console_url: str) -> tuple[Callable[..., None], tuple[Any, ...], str]:
        from ..bus.detect import detect_main

        return detect_main, (self.cfg, store_url, self.data, console_url, os.getpid()), "dcsentry-detect"

    def describe(self) -> str:
        return (f"ingest node {self.node} publishing to {self.cfg.serve.bus} "
                f"({self.cfg.bus.partitions} partitions)")


Mode = SingleNode | Distributed


def choose(cfg: Config, data: Path, store: Store, announce: Callable[[str], None]) -> tuple[Role, Mode]:
    role, bus = cfg.serve.role, cfg.serve.bus
    if role not in ROLES:
        raise ValueError(f"--role must be all, ingest, detect or web, got {role!r}")
    if role in ("ingest", "detect") and not bus:
        raise ValueError(f"--role {role} needs --bus nats://HOST:PORT (the stream between ingest and detect nodes)")
    return ROLES[role], (Distributed if bus else SingleNode)(cfg, data, store, announce)
