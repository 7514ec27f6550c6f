"""The `dcsentry` command: every subcommand lives in a module of this package; this one only
gathers them (entry point `dcsentry.cli:main`, also `python -m dcsentry.cli`)."""

from __future__ import annotations

import click

from .. import __version__


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="dcsentry")
def main() -> None:
    """dcsentry: an identity-threat sensor for Active Directory."""


def _register() -> None:
    """Every subcommand added to `main` (`dcsentry --help` lists them by name)."""
    from .audit import audit, sizing
    from .deploy import systemd_unit
    from .events import events
    from .hunt import attack_layer, hunt
    from .inventory import inventory
    from .serve import serve
    from .synth import synth
    from .tokens import token
    from .wef import wef

    for command in (events, hunt, audit, sizing, attack_layer, inventory, synth, token, wef, systemd_unit, serve):
        main.add_command(command)


_register()
