"""`dcsentry events`: every event of the given files, as a table or JSON lines."""

from __future__ import annotations

import sys

import click
from rich.console import Console

from ..formats import FORMATS
from ..sinks.console import EventTable, print_summary
from ..sinks.jsonl import JsonLinesWriter
from ..sources.files import expand, read_paths
from .common import FileProgress, exit_status, make_stats


def _ids(value: str | None) -> frozenset[int] | None:
    if not value:
        return None
    try:
        return frozenset(int(x) for x in value.replace(" ", "").split(",") if x)
    except ValueError:
        raise click.BadParameter(f"expected event ids like 4776,7045, got {value!r}") from None


@click.command()
@click.argument("paths", nargs=-1, required=True)
@click.option("--jsonl", is_flag=True, help="One JSON object per event on stdout.")
@click.option("--id", "ids", metavar="IDS", help="Only these event ids, e.g. 4776,7045.")
@click.option("--format", "fmt", type=click.Choice(FORMATS), help="Skip content sniffing.")
@click.option("--jobs", type=click.IntRange(min=0), default=0, show_default="0 = one per core",
              help="Processes reading files in parallel with --jsonl (lines of different files may "
                   "then interleave in blocks; each file keeps its order).")
def events(paths: tuple[str, ...], jsonl: bool, ids: str | None, fmt: str | None, jobs: int) -> None:
    """Print every event in PATHS (files, directories, or - for stdin)."""
    from ..sources.parallel import default_jobs, parallel_jsonl

    wanted = _ids(ids)
    err = Console(stderr=True)
    stats = make_stats(err)
    files = list(expand(paths, stats))
    jobs = jobs or default_jobs(len(files))
    with FileProgress(paths, err) as prog:
        if jsonl and jobs > 1 and "-" not in files:
            out = sys.stdout.buffer
            for block in parallel_jsonl(files, stats, fmt, wanted, jobs, on_file=prog.on_file):
                out.write(block)
            out.flush()
        elif jsonl:
            writer = JsonLinesWriter(sys.stdout.buffer)
            for ev in read_paths(files, stats, fmt, wanted, on_file=prog.on_file):
                writer.write(ev)
            writer.close()
        else:
            table = EventTable(sys.stdout)
            for ev in read_paths(files, stats, fmt, wanted, on_file=prog.on_file):
                table.write(ev)
    print_summary(stats, err)
    sys.exit(exit_status(stats))
