"""`dcsentry inventory`: import an admin's account export into the store, and list what is there.

The service (`serve`) reads the stored inventory into its detection engines; `hunt --inventory FILE`
uses an export directly without a store.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import click

from ..activities.inventory_import import read_exports
from ..store.store import Store
from .common import open_service_store, store_options


def open_store_for(store_url: str | None, config_path: str | None, data_dir: str | None) -> Store:
    """`--store` as given (relative SQLite paths from the current directory, as `hunt --state`), else
    the service's store from its configuration and data directory (as `dcsentry token`)."""
    from ..store.store import open_store

    try:
        if store_url:
            return open_store(store_url, Path.cwd())
        return open_service_store(config_path, data_dir)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--store") from None
    except OSError as exc:
        raise click.ClickException(f"cannot open the store: {exc}") from None


_with_store = store_options(click.option(
    "--store", "store_url", metavar="URL|PATH",
    help="sqlite:PATH, postgresql://... or a SQLite file path; default: the service's store "
         "(--config / --data-dir / DCSENTRY_STORE)."))


@click.group()
def inventory() -> None:
    """The account inventory: which accounts exist, which are DCs, which are sensitive."""


@inventory.command("import")
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
@_with_store
@click.option("--dry-run", is_flag=True, help="Parse and summarise the export; store nothing.")
def import_(files: tuple[str, ...], store_url: str | None, config_path: str | None, data_dir: str | None,
            dry_run: bool) -> None:
    """Replace the stored inventory with FILES: LDIF exports (ldifde -f, ldapsearch) and/or CSVs from
    Get-ADUser / Get-ADComputer / Get-ADDomainController | Export-Csv, taken together. The service
    picks it up within seconds."""
    try:
        res = read_exports(files)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    file = ", ".join(Path(f).name for f in files)
    dcs = [a.dns_host_name or a.name for a in res.dcs]
    line = (f"{len(res.accounts)} account(s) in {file} ({res.format.upper()}): "
            f"{sum(a.kind == 'computer' for a in res.accounts)} computer(s), {len(dcs)} DC(s), "
            f"{sum(a.sensitive for a in res.accounts)} sensitive, {sum(a.disabled for a in res.accounts)} disabled; "
            f"{res.skipped} other record(s) skipped")
    if dry_run:
        click.echo(line)
    else:
        from ..store.inventory import save_inventory

        store = open_store_for(store_url, config_path, data_dir)
        try:
            save_inventory(store, res.accounts, f"cli ({os.environ.get('USER', 'unknown')})", file, res.format)
            where = store.url
        finally:
            store.close()
        click.echo(f"{line}; stored in {where}")
    if dcs:
        click.echo("domain controllers: " + ", ".join(sorted(dcs)))


@inventory.command("list")
@_with_store
@click.option("--kind", type=click.Choice(["user", "computer", "dc", "sensitive", "disabled"]), help="Only these.")
@click.option("--search", "q", default="", help="Name, SID or DN containing this.")
@click.option("--limit", type=click.IntRange(min=1), default=1000, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per account on stdout.")
def list_(store_url: str | None, config_path: str | None, data_dir: str | None, kind: str | None, q: str,
          limit: int, as_json: bool) -> None:
    """The stored inventory: a summary on stderr, one account per line on stdout."""
    from ..store.inventory import inventory_summary, list_inventory

    store = open_store_for(store_url, config_path, data_dir)
    try:
        summary = inventory_summary(store)
        rows = list_inventory(store, q, kind or "", limit)
    finally:
        store.close()
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(summary["imported_at"])) if summary["imported_at"] else "-"
    click.echo(f"{summary['accounts']} account(s): {summary['users']} user(s), {summary['computers']} computer(s), "
               f"{summary['dcs']} DC(s), {summary['sensitive']} sensitive; imported {when} UTC by "
               f"{summary['imported_by'] or '-'} from {summary['filename'] or '-'}", err=True)
    for r in rows:
        if as_json:
            sys.stdout.write(json.dumps(r) + "\n")
            continue
        flags = ",".join(f for f, on in (("dc", r["dc"]), ("sensitive", r["sensitive"]), ("disabled", r["disabled"]))
                         if on)
        click.echo(f"{r['name']:<24} {r['kind']:<8} {r['sid'] or '-':<46} {flags or '-':<20} {r['dn']}")
