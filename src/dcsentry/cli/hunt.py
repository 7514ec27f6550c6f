"""`dcsentry hunt` (detect attacks in files) and `dcsentry attack-layer` (what it detects, for ATT&CK Navigator)."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import click
from rich.console import Console

from ..formats import FORMATS
from ..gcpolicy import tune_for_throughput
from ..sinks.console import print_alerts, print_summary
from ..sinks.jsonl import JsonLinesWriter
from .common import FileProgress, exit_status, make_stats, settings, sigma_paths

if TYPE_CHECKING:
    from ..activities.context import Inventory


@click.command()
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
    from ..hunt import hunt as run_hunt
    from ..hunt import link_incidents
    from ..store.state import load_baseline, save_baseline

    err = Console(stderr=True)
    cfg = settings(config_path)
    sigma_paths(cfg.detection, sigma)
    inventory = _inventory(inventory_paths) if inventory_paths else None
    stats = make_stats(err)
    try:
        baseline = load_baseline(state) if state else None
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--state") from None
    except OSError as exc:
        raise click.ClickException(f"cannot open the --state store: {exc}") from None
    tune_for_throughput()
    with FileProgress(paths, err) as prog:
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
        from ..sinks.cef import format_cef

        for a in alerts:
            print(format_cef(a))
    elif mode in ("ocsf", "ecs"):
        from ..sinks.forward import json_shape

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


@click.command("attack-layer")
@click.option("--sigma", "sigma", multiple=True, metavar="PATH",
              help="Also count these Sigma rules (a .yml file or a folder; repeatable; adds to detection.sigma).")
@click.option("--config", "config_path", type=click.Path(dir_okay=False), help="TOML settings file.")
def attack_layer(sigma: tuple[str, ...], config_path: str | None) -> None:
    """Print an ATT&CK Navigator layer (JSON) of the techniques dcsentry detects: the built-in alert
    types and the Sigma rules loaded, each technique with the alert types that cover it."""
    import json

    from ..attack import navigator_layer

    cfg = settings(config_path)
    sigma_paths(cfg.detection, sigma)
    metas = []
    if cfg.detection.sigma:
        from ..detectors.sigma import load_rules

        ruleset = load_rules(cfg.detection.sigma)
        for line in ruleset.report():
            click.echo(line, err=True)
        metas = [r.meta for r in ruleset.rules if r.output] + [c.meta for c in ruleset.correlations]
    click.echo(json.dumps(navigator_layer(metas), indent=2))


def _inventory(paths: tuple[str, ...]) -> Inventory:
    """`--inventory FILE...` read into the detectors' account inventory; a bad export is a usage error."""
    from ..activities.context import Inventory
    from ..activities.inventory_import import read_exports

    try:
        res = read_exports(paths)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--inventory") from None
    inv = Inventory()
    inv.load(res.accounts)
    return inv
