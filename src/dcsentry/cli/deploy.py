"""`dcsentry systemd-unit`: print the unit shipped in the package (deploy/, docs/install.md)."""

from __future__ import annotations

import click

from ..deploy import unit_text


@click.command("systemd-unit")
@click.option("--command", "command", metavar="PATH", help="The dcsentry executable for ExecStart "
              "(default: this one).")
def systemd_unit(command: str | None) -> None:
    """Print a hardened systemd unit for `dcsentry serve` (own user, read-only system, only
    CAP_NET_BIND_SERVICE): `dcsentry systemd-unit > /etc/systemd/system/dcsentry.service`."""
    click.echo(unit_text(command), nl=False)
