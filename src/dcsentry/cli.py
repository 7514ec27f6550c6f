"""The `dcsentry` command. Thin: parse flags, wire sources -> formats -> sinks, report."""

from __future__ import annotations

import sys

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from . import __version__
from .cli_common import sigma_paths
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
@click.option("--jobs", type=click.IntRange(min=0), default=0, show_default="0 = one per core",
              help="Processes reading files in parallel with --jsonl (lines of different files may "
                   "then interleave in blocks; each file keeps its order).")
def events(paths: tuple[str, ...], jsonl: bool, ids: str | None, fmt: str | None, jobs: int) -> None:
    """Print every event in PATHS (files, directories, or - for stdin)."""
    from .sources.parallel import default_jobs, parallel_jsonl

    wanted = _ids(ids)
    err = Console(stderr=True)
    stats = make_stats(err)
    files = list(expand(paths, stats))
    jobs = jobs or default_jobs(len(files))
    with _FileProgress(paths, err) as prog:
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


@main.command()
@click.argument("paths", nargs=-1, required=True)
@click.option("--jsonl", "mode", flag_value="jsonl", help="One JSON object per alert on stdout.")
@click.option("--cef", "mode", flag_value="cef", help="One CEF line per alert on stdout.")
@click.option("--ocsf", "mode", flag_value="ocsf",
              help="One OCSF 1.8.0 event per alert on stdout (Detection Finding; health: Application Error).")
@click.option("--ecs", "mode", flag_value="ecs", help="One ECS 9.4 document per alert on stdout (JSON lines).")
@click.option("--table", "mode", flag_value="table", help="A table (the default on a terminal).")
@click.option("--incidents", "mode", flag_value="incidents",
              help="One JSON object per incident (alerts linked into one attack story, docs/incidents.md).")
@click.option("--config", "config_path", type=click.Path(dir_okay=False), help="TOML settings file.")
@click.option("--format", "fmt", type=click.Choice(FORMATS), help="Skip content sniffing.")
@click.option("--state", metavar="URL|PATH",
              help="Store keeping the learned baselines between runs: sqlite:PATH, postgresql://... (the "
                   "service's store works too) or a bare SQLite file path.")
@click.option("--sigma", "sigma", multiple=True, metavar="PATH",
              help="Also run these Sigma rules and correlations (a .yml file or a folder; repeatable; "
                   "adds to detection.sigma). Rules that do not load are listed on stderr.")
@click.option("--inventory", "inventory_paths", multiple=True, type=click.Path(exists=True, dir_okay=False),
              metavar="FILE", help="The domain's accounts from an LDIF (ldifde / ldapsearch) or Export-Csv (Get-ADUser "
                                   "/ Get-ADComputer) export: which accounts exist, which are DCs and sensitive "
                                   "(repeatable: the files are taken together).")
def hunt(paths: tuple[str, ...], mode: str | None, config_path: str | None, fmt: str | None,
         state: str | None, sigma: tuple[str, ...], inventory_paths: tuple[str, ...]) -> None:
    """Detect attacks in PATHS (files, directories, or - for stdin) and print the alerts."""
    from .hunt import hunt as run_hunt, link_incidents
    from .store.state import load_baseline, save_baseline

    err = Console(stderr=True)
    try:
        cfg = load_config(config_path)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    sigma_paths(cfg.detection, sigma)
    inventory = _inventory(inventory_paths) if inventory_paths else None
    stats = make_stats(err)
    try:
        baseline = load_baseline(state) if state else None
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--state") from None
    except OSError as exc:
        raise click.ClickException(f"cannot open the --state store: {exc}") from None
    with _FileProgress(paths, err) as prog:
        alerts, engine = run_hunt(paths, cfg.detection, stats, fmt, baseline, on_file=prog.on_file,
                                  inventory=inventory)
    unsaved = False
    if state:
        try:
            save_baseline(state, engine.baseline)
        except OSError as exc:  # the alerts are still printed; the exit status says the state was lost
            err.print(f"error: the baselines were not saved to --state: {exc}", highlight=False, markup=False)
            unsaved = True
    incidents = link_incidents(alerts, cfg.detection, engine)
    mode = mode or ("table" if sys.stdout.isatty() else "jsonl")
    if mode == "incidents":
        writer = JsonLinesWriter(sys.stdout.buffer)
        for inc in incidents:
            writer.write(inc.to_dict())
        writer.close()
    elif mode == "jsonl":
        writer = JsonLinesWriter(sys.stdout.buffer)
        for a in alerts:
            writer.write(a.to_dict())
        writer.close()
    elif mode == "cef":
        from .sinks.cef import format_cef

        for a in alerts:
            print(format_cef(a))
    elif mode in ("ocsf", "ecs"):
        from .sinks.forward import json_shape

        shape = json_shape(mode)
        writer = JsonLinesWriter(sys.stdout.buffer)
        for a in alerts:
            writer.write(shape(a))
        writer.close()
    else:
        print_alerts(alerts, Console())
    print_summary(stats, err)
    if engine.sigma is not None:
        for line in engine.sigma.ruleset.report():
            click.echo(line, err=True)
    err.print(f"{len(alerts)} alert(s) from {engine.activities} activities", highlight=False)
    sys.exit(2 if unsaved else exit_status(stats))


@main.command()
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
    from .audit.commands import run_audit

    if not paths and not event_paths and not fix_dir:
        raise click.UsageError("give exported files (PATHS), --events PATH, or --fix-script DIR")
    err = Console(stderr=True)
    sys.exit(run_audit(paths, as_json, event_paths, fix_dir, strict, make_stats(err)))


@main.command()
@click.argument("paths", nargs=-1)
@click.option("--store", metavar="URL|PATH",
              help="The service's store, its own counts: sqlite:PATH, postgresql://... or a bare SQLite file path.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object on stdout.")
@click.option("--format", "fmt", type=click.Choice(FORMATS), help="Skip content sniffing.")
def sizing(paths: tuple[str, ...], store: str | None, as_json: bool, fmt: str | None) -> None:
    """Events per second per DC from its logs (PATHS) or the service's store, and the dcsentry
    nodes, cores and memory that takes, from the project's measured throughput."""
    from .audit.commands import run_sizing

    if not paths and not store:
        raise click.UsageError("give DC logs (PATHS) or --store")
    err = Console(stderr=True)
    stats = make_stats(err)
    code = run_sizing(paths, store, as_json, fmt, stats)
    if paths:
        err.print(f"{stats.files} file(s), {stats.records} record(s) read, {stats.skipped_total} skipped",
                  highlight=False)
    sys.exit(code)


@main.command("attack-layer")
@click.option("--sigma", "sigma", multiple=True, metavar="PATH",
              help="Also count these Sigma rules (a .yml file or a folder; repeatable; adds to detection.sigma).")
@click.option("--config", "config_path", type=click.Path(dir_okay=False), help="TOML settings file.")
def attack_layer(sigma: tuple[str, ...], config_path: str | None) -> None:
    """Print an ATT&CK Navigator layer (JSON) of the techniques dcsentry detects: the built-in alert
    types and the Sigma rules loaded, each technique with the alert types that cover it."""
    import json

    from .attack import navigator_layer

    try:
        cfg = load_config(config_path)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    sigma_paths(cfg.detection, sigma)
    metas = []
    if cfg.detection.sigma:
        from .detectors.sigma import load_rules

        ruleset = load_rules(cfg.detection.sigma)
        for line in ruleset.report():
            click.echo(line, err=True)
        metas = [r.meta for r in ruleset.rules if r.output] + [c.meta for c in ruleset.correlations]
    click.echo(json.dumps(navigator_layer(metas), indent=2))


def _inventory(paths: tuple[str, ...]):  # noqa: ANN202 - an Inventory (imported lazily)
    from .activities.context import Inventory
    from .activities.inventory_import import read_exports

    try:
        res = read_exports(paths)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--inventory") from None
    inv = Inventory()
    inv.load(res.accounts)
    return inv


def exit_status(stats: ReadStats) -> int:
    """Non-zero only when nothing at all could be read."""
    return 1 if stats.records == 0 and (stats.skipped_total or stats.files == 0) else 0


def _register() -> None:
    from .cli_serve import serve
    from .deploy import systemd_unit
    from .sources.wef.commands import wef
    from .synth.cli import synth
    from .inventory_cli import inventory
    from .web.cli import token

    main.add_command(inventory)
    main.add_command(synth)
    main.add_command(token)
    main.add_command(wef)
    main.add_command(systemd_unit)
    main.add_command(serve)


_register()

if __name__ == "__main__":  # pragma: no cover
    main()
