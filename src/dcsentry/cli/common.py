"""Helpers the command modules share: settings, the service's store, progress and exit status."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from ..config import Config, Detection
from ..config import data_dir as resolve_data_dir
from ..formats import ReadStats
from ..sinks.console import ProblemPrinter
from ..sources.files import expand
from .settings import resolve_config

if TYPE_CHECKING:
    from ..store.store import Store


def settings(config_path: str | None, flags: dict[str, Any] | None = None) -> Config:
    """The command's settings (file < DCSENTRY_* < flags, cli/settings.py); a bad one is a usage error."""
    try:
        return resolve_config(config_path, os.environ, flags)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None


def sigma_paths(detection: Detection, flags: tuple[str, ...]) -> None:
    """--sigma adds to detection.sigma; a path that is not there is a usage error, not 0 rules."""
    from ..detectors.sigma.loader import SigmaPathError, rule_files

    detection.sigma = [*detection.sigma, *flags]
    try:
        rule_files(detection.sigma)
    except SigmaPathError as exc:
        raise click.UsageError(str(exc)) from None


def open_service_store(config_path: str | None, data_dir: str | None) -> Store:
    """The service's store, from its settings (file, DCSENTRY_* variables, --data-dir)."""
    from ..store.store import open_store

    cfg = settings(config_path, {"serve.data_dir": data_dir})
    return open_store(cfg.serve.store, resolve_data_dir(cfg.serve.data_dir))


def store_options(*extra: Callable) -> Callable:
    """The options that find the service's store (`--config`, `--data-dir`), after `extra` ones:
    shared by the commands that work on the store directly (token, inventory)."""
    opts = [*extra,
            click.option("--config", "config_path", type=click.Path(dir_okay=False), help="TOML settings file."),
            click.option("--data-dir", type=click.Path(file_okay=False), help="The service's data directory.")]

    def decorate(f: Callable) -> Callable:
        for opt in reversed(opts):
            f = opt(f)
        return f

    return decorate


def service_data_dir(config_path: str | None, data_dir: str | None) -> Path:
    """The service's data directory (the spool, a SQLite store), as `serve` resolves it."""
    return resolve_data_dir(settings(config_path, {"serve.data_dir": data_dir}).serve.data_dir)


class FileProgress:
    """A progress bar over input files, on stderr, only when stderr is a terminal."""

    def __init__(self, paths: tuple[str, ...], err: Console) -> None:
        self.enabled = err.is_terminal
        self.progress = None
        if self.enabled:
            total = sum(1 for _ in expand(paths, ReadStats()))
            self.progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                     TimeElapsedColumn(), console=err, transient=True)
            self.task = self.progress.add_task("reading", total=total)
        self._started = False

    def __enter__(self) -> FileProgress:
        if self.progress:
            self.progress.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.progress:
            self.progress.__exit__(*exc)

    def on_file(self, path: str) -> None:
        if self.progress:
            if self._started:
                self.progress.advance(self.task)
            self._started = True
            self.progress.update(self.task, description=path[-40:])


def make_stats(err: Console) -> ReadStats:
    return ReadStats(on_problem=ProblemPrinter(sys.stderr))


def exit_status(stats: ReadStats) -> int:
    """Non-zero only when nothing at all could be read."""
    return 1 if stats.records == 0 and (stats.skipped_total or stats.files == 0) else 0
