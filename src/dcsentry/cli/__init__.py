"""The `dcsentry` command: every subcommand lives in a module of this package; this one only
names them (entry point `dcsentry.cli:main`, also `python -m dcsentry.cli`).

Subcommands are imported when run, not at start: importing all of them (the audit readers, the
synthetic domain, the web stack) took ~0.16 s, a third of `events --jsonl` on a small file."""

from __future__ import annotations

import importlib

import click

from .. import __version__

# name -> (module of this package, attribute), in the order `dcsentry --help` lists them
COMMANDS: dict[str, tuple[str, str]] = {
    "events": ("events", "events"), "hunt": ("hunt", "hunt"), "audit": ("audit", "audit"),
    "sizing": ("audit", "sizing"), "attack-layer": ("hunt", "attack_layer"), "inventory": ("inventory", "inventory"),
    "synth": ("synth", "synth"), "token": ("tokens", "token"), "wef": ("wef", "wef"),
    "systemd-unit": ("deploy", "systemd_unit"), "serve": ("serve", "serve"),
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        spec = COMMANDS.get(cmd_name)
        if spec is None:
            return None
        command = getattr(importlib.import_module(f"{__name__}.{spec[0]}"), spec[1])
        assert isinstance(command, click.Command)
        return command


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="dcsentry")
def main() -> None:
    """dcsentry: an identity-threat sensor for Active Directory."""
