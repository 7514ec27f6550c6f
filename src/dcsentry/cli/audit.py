"""`dcsentry audit` (will a DC's audit policy produce the events dcsentry reads) and `dcsentry sizing`
(events per second, and the nodes that takes): flags and printing here, the logic in audit/."""

from __future__ import annotations

import json
import sys

import click
from rich.console import Console
from rich.table import Table

from ..formats import FORMATS, ReadStats
from ..sources.files import read_paths
from .common import make_stats


@click.command()
@click.argument("paths", nargs=-1)
@click.option("--json", "as_json", is_flag=True, help="One JSON object on stdout (events, settings, conflicts...).")
@click.option("--events", "event_paths", multiple=True, metavar="PATH",
              help="Also read this DC's logs (EVTX, XML, JSON lines; repeatable) and say which required events "
                   "are missing from them.")
@click.option("--fix-script", "fix_dir", type=click.Path(file_okay=False), metavar="DIR",
              help="Write the remediation into DIR: auditpol.cmd, ntlm-audit.reg/.ps1, a GPO audit.csv and "
                   "GptTmpl.inf.")
@click.option("--strict", is_flag=True, help="Exit 1 also when a required event is only unknown.")
def audit(paths: tuple[str, ...], as_json: bool, event_paths: tuple[str, ...], fix_dir: str | None,
          strict: bool) -> None:
    """Check a DC's exported audit policy (auditpol CSV, GPO audit.csv / GptTmpl.inf, secedit INF,
    reg export, gpresult /x XML): will it produce each event dcsentry reads, and what to change.

    Exit status: 0 ready, 1 a required event will not be produced (or is missing from the logs),
    2 an input could not be read."""
    if not paths and not event_paths and not fix_dir:
        raise click.UsageError("give exported files (PATHS), --events PATH, or --fix-script DIR")
    err = Console(stderr=True)
    sys.exit(run_audit(paths, as_json, event_paths, fix_dir, strict, make_stats(err)))


@click.command()
@click.argument("paths", nargs=-1)
@click.option("--store", metavar="URL|PATH",
              help="The service's store, its own counts: sqlite:PATH, postgresql://... or a bare SQLite file path.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object on stdout.")
@click.option("--format", "fmt", type=click.Choice(FORMATS), help="Skip content sniffing.")
def sizing(paths: tuple[str, ...], store: str | None, as_json: bool, fmt: str | None) -> None:
    """Events per second per DC from its logs (PATHS) or the service's store, and the dcsentry
    nodes, cores and memory that takes, from the project's measured throughput."""
    if not paths and not store:
        raise click.UsageError("give DC logs (PATHS) or --store")
    err = Console(stderr=True)
    stats = make_stats(err)
    code = run_sizing(paths, store, as_json, fmt, stats)
    if paths:
        err.print(f"{stats.files} file(s), {stats.records} record(s) read, {stats.skipped_total} skipped",
                  highlight=False)
    sys.exit(code)


def run_audit(paths: tuple[str, ...], as_json: bool, event_paths: tuple[str, ...], fix_dir: str | None,
              strict: bool, stats: ReadStats) -> int:
    """The verdict printed (or as JSON), the fix script written; returns the exit status."""
    from ..audit.exports import ReadResult, read_exports
    from ..audit.fixscript import write_fix_script
    from ..audit.logs import LogEvidence
    from ..audit.report import exit_status, print_report, to_dict
    from ..audit.verdict import decide

    read = read_exports(paths) if paths else ReadResult()
    logs = LogEvidence().extend(read_paths(event_paths, stats)) if event_paths else None
    verdict = decide(read.exports, logs)
    code = exit_status(verdict, read, strict)
    err = Console(stderr=True)
    if fix_dir:
        written = write_fix_script(fix_dir, verdict if (paths or event_paths) else None)
        err.print(f"remediation written: {', '.join(str(p) for p in written)}", highlight=False)
    if as_json:
        sys.stdout.write(json.dumps(to_dict(verdict, read, strict), indent=1) + "\n")
    else:
        print_report(verdict, read, Console(), strict)
    if event_paths and stats.records == 0:
        err.print("no event could be read from the --events paths", highlight=False)
    for e in read.errors:
        err.print(f"error: {e}", highlight=False, markup=False)
    return code


def run_sizing(paths: tuple[str, ...], store: str | None, as_json: bool, fmt: str | None, stats: ReadStats) -> int:
    """The measured rates and the plan printed (or as JSON); returns the exit status."""
    from ..audit import capacity
    from ..audit.sizing import Measure, from_store, plan
    from ..audit.sizing import to_dict as sizing_dict

    m = Measure()
    if store:
        try:
            m = from_store(store)
        except (OSError, ValueError) as exc:
            Console(stderr=True).print(f"error: {exc}", highlight=False, markup=False)
            return 2
    if paths:
        m.extend(read_paths(paths, stats, fmt))
    if not m.domain.events:
        Console(stderr=True).print("no event the sensor reads was found: nothing to measure", highlight=False)
        return 1
    p = plan(m)
    if as_json:
        sys.stdout.write(json.dumps(sizing_dict(m, p), indent=1) + "\n")
        return 0
    console = Console()
    t = Table(title="Events the sensor reads, per second")
    for col in ("DC", "Events", "Hours", "Average", "Busiest minute", "Busiest hour", "Busy (15 min)", "Core events"):
        t.add_column(col, justify="right" if col != "DC" else "left")
    rows = [(dc, r) for dc, r in sorted(m.dcs.items())] + [("all DCs", m.domain)]
    for dc, r in rows:
        t.add_row(dc, f"{r.events:,}", f"{r.span / 3600:.1f}", f"{r.average:,.2f}", f"{r.busiest_minute:,.2f}",
                  f"{r.busiest_hour:,.2f}", f"{r.busy:,.2f}", f"{r.core_share:.0%}")
    console.print(t)
    cap = capacity.NODE
    console.print(f"[bold]dcsentry nodes: {p.nodes}[/] ({p.cores} cores, {p.memory_gb:g} GB RAM each; "
                  f"store grows ~{p.disk_gb_per_day:.2f} GB/day per node)", highlight=False)
    for line in p.why:
        console.print(f"  - {line}", highlight=False)
    console.print(f"  A node sustains {cap.events_per_s:,.0f} events/s (measured: the service's processor, "
                  f"{cap.machine}); accepting syslog durably takes up to {cap.spool_accept_msgs_per_s:,.0f} msg/s "
                  "over TCP. Sources: "
                  f"{cap.source}.", highlight=False)
    if m.domain.core_share < 0.5:
        console.print(f"  Only {m.domain.core_share:.0%} of these are the nine core events: forwarding only 4776, "
                      "8004, 4728, 4729, 4732, 4733, 4756, 4757 and 7045 cuts the load accordingly (context events "
                      "like 4769 add Kerberos coverage at that cost).", highlight=False)
    return 0
