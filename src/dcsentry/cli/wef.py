"""`dcsentry wef ...`: the GPO string to paste, and the forwarding clients the service knows."""

from __future__ import annotations

import json
import socket
import sys
import time
from pathlib import Path

import click

from ..config import Wef, host_port
from .common import service_data_dir, settings


def _port(addresses: list[str], default: int) -> int:
    """The first listener's port (not 0: a picked port is unknown here), else the WinRM default."""
    ports = [host_port(a)[1] for a in addresses]  # parse errors stopped at settings(); this never raises
    return next((p for p in ports if p), default)


@click.group()
def wef() -> None:
    """Windows Event Forwarding: dcsentry as the Windows Event Collector."""


@wef.command("gpo-string")
@click.option("--config", "config_path", type=click.Path(dir_okay=False), help="TOML settings file ([wef]).")
@click.option("--host", metavar="NAME", help="The collector's name as the DCs reach it: the server certificate's "
                                             "CN/SAN and the HTTP/ SPN (default: this machine's FQDN).")
@click.option("--https-port", type=int, help="Default: the first [wef] https listener's port, else 5986.")
@click.option("--http-port", type=int, help="Default: the first [wef] http listener's port, else 5985.")
@click.option("--client-ca", "client_ca", multiple=True, type=click.Path(dir_okay=False, exists=True),
              help="CA certificate (PEM) that issued the DCs' client certificates (default: [wef] client_ca).")
@click.option("--kerberos/--no-kerberos", default=None,
              help="Also print the HTTP/Kerberos string (default: when [wef] has http listeners or a keytab).")
def gpo_string(config_path: str | None, host: str | None, https_port: int | None, http_port: int | None,
               client_ca: tuple[str, ...], kerberos: bool | None) -> None:
    """Print the "Configure target Subscription Manager" value(s) for the DCs' GPO
    (Computer Configuration > Administrative Templates > Windows Components > Event Forwarding):
    one HTTPS string per client CA (IssuerCA = its SHA-1 thumbprint), and the HTTP (Kerberos) one."""
    from ..sources.wef.subscriptions import gpo_string as make
    from ..sources.wef.subscriptions import thumbprint

    cfg: Wef = settings(config_path).wef
    try:
        name = host or socket.getfqdn()
        cas = list(client_ca) or cfg.client_ca
        lines = [make(name, https_port or _port(cfg.https, 5986), refresh=cfg.refresh, issuer_ca=thumbprint(ca))
                 for ca in cas]
    except (ValueError, OSError) as exc:
        raise click.ClickException(str(exc)) from None
    if kerberos or (kerberos is None and (cfg.http or cfg.keytab or not lines)):
        lines.append(make(name, http_port or _port(cfg.http, 5985), refresh=cfg.refresh))
    for line in lines:
        click.echo(line)


def _ago(ts: float | None, now: float) -> str:
    if not ts:
        return "-"
    s = max(0, now - ts)
    return f"{s:.0f}s ago" if s < 120 else f"{s / 60:.0f}m ago" if s < 7200 else f"{s / 3600:.1f}h ago"


@wef.command("status")
@click.option("--config", "config_path", type=click.Path(dir_okay=False), help="TOML settings file.")
@click.option("--data-dir", type=click.Path(file_okay=False), help="The service's data directory.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per client and subscription.")
def status(config_path: str | None, data_dir: str | None, as_json: bool) -> None:
    """List the forwarding clients: subscription, state, last heartbeat, last events, bookmark."""
    from rich.console import Console
    from rich.table import Table

    from ..sources.wef.status import bookmark_positions, read_clients

    folder = service_data_dir(config_path, data_dir)
    rows = read_clients(Path(folder) / "spool.db")
    if as_json:
        for r in rows:
            click.echo(json.dumps({**r, "positions": bookmark_positions(r["bookmark"])}))
        return
    if not rows:
        click.echo(f"no forwarding clients recorded in {folder}", err=True)
        sys.exit(0)
    now = time.time()
    table = Table("client", "subscription", "state", "address", "last seen", "last heartbeat", "last events",
                  "events", "bookmark")
    for r in rows:
        marks = ", ".join(f"{ch}={rid}" for ch, rid in bookmark_positions(r["bookmark"]).items()) or "-"
        table.add_row(r["client"], r["subscription"], r["state"] + (f" ({r['detail']})" if r["detail"] else ""),
                      r["address"] or "-", _ago(r["last_seen"], now), _ago(r["last_heartbeat"], now),
                      _ago(r["last_events"], now), str(r["events"]), marks)
    Console(width=200).print(table)
