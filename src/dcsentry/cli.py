"""The `dcsentry` command. Thin: parse flags, wire sources -> formats -> sinks, report."""

from __future__ import annotations

import sys
from contextlib import nullcontext

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from . import __version__
from .formats import FORMATS, ReadStats
from .config import load_config
from .sinks.console import EventTable, ProblemPrinter, print_alerts, print_summary
from .sinks.jsonl import JsonLinesWriter
from .sources.files import expand, read_paths


def _ids(value: str | None) -> frozenset[int] | None:
    if not value:
        return None
    try:
        return frozenset(int(x) for x in value.replace(" ", "").split(",") if x)
    except ValueError:
        raise click.BadParameter(f"expected event ids like 4776,7045, got {value!r}") from None


class _FileProgress:
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

    def __enter__(self) -> "_FileProgress":
        if self.progress:
            self.progress.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
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


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="dcsentry")
def main() -> None:
    """dcsentry: an identity-threat sensor for Active Directory."""


@main.command()
@click.argument("paths", nargs=-1, required=True)
@click.option("--jsonl", is_flag=True, help="One JSON object per event on stdout.")
@click.option("--id", "ids", metavar="IDS", help="Only these event ids, e.g. 4776,7045.")
@click.option("--format", "fmt", type=click.Choice(FORMATS), help="Skip content sniffing.")
def events(paths: tuple[str, ...], jsonl: bool, ids: str | None, fmt: str | None) -> None:
    """Print every event in PATHS (files, directories, or - for stdin)."""
    wanted = _ids(ids)
    err = Console(stderr=True)
    stats = make_stats(err)
    writer = JsonLinesWriter(sys.stdout.buffer) if jsonl else None
    table = None if jsonl else EventTable(sys.stdout)
    with _FileProgress(paths, err) as prog:
        for ev in read_paths(paths, stats, fmt, wanted, on_file=prog.on_file):
            if writer is not None:
                writer.write(ev.to_dict())
            else:
                table.write(ev)
    if writer is not None:
        writer.close()
    print_summary(stats, err)
    sys.exit(exit_status(stats))


@main.command()
@click.argument("paths", nargs=-1, required=True)
@click.option("--jsonl", "mode", flag_value="jsonl", help="One JSON object per alert on stdout.")
@click.option("--cef", "mode", flag_value="cef", help="One CEF line per alert on stdout.")
@click.option("--table", "mode", flag_value="table", help="A table (the default on a terminal).")
@click.option("--config", "config_path", type=click.Path(dir_okay=False), help="TOML settings file.")
@click.option("--format", "fmt", type=click.Choice(FORMATS), help="Skip content sniffing.")
@click.option("--state", type=click.Path(dir_okay=False),
              help="SQLite file keeping the learned baselines between runs.")
def hunt(paths: tuple[str, ...], mode: str | None, config_path: str | None, fmt: str | None,
         state: str | None) -> None:
    """Detect attacks in PATHS (files, directories, or - for stdin) and print the alerts."""
    from .hunt import hunt as run_hunt
    from .store.state import load_baseline, save_baseline

    err = Console(stderr=True)
    try:
        cfg = load_config(config_path)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    stats = make_stats(err)
    baseline = load_baseline(state) if state else None
    with _FileProgress(paths, err) as prog:
        alerts, engine = run_hunt(paths, cfg.detection, stats, fmt, baseline, on_file=prog.on_file)
    if state:
        save_baseline(state, engine.baseline)
    mode = mode or ("table" if sys.stdout.isatty() else "jsonl")
    if mode == "jsonl":
        writer = JsonLinesWriter(sys.stdout.buffer)
        for a in alerts:
            writer.write(a.to_dict())
        writer.close()
    elif mode == "cef":
        from .sinks.cef import format_cef

        for a in alerts:
            print(format_cef(a))
    else:
        print_alerts(alerts, Console())
    print_summary(stats, err)
    err.print(f"{len(alerts)} alert(s) from {engine.activities} activities", highlight=False)
    sys.exit(exit_status(stats))


def exit_status(stats: ReadStats) -> int:
    """Non-zero only when nothing at all could be read."""
    return 1 if stats.records == 0 and (stats.skipped_total or stats.files == 0) else 0


if __name__ == "__main__":  # pragma: no cover
    main()
