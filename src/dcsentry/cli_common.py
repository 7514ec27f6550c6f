"""Helpers the CLI's command modules share (cli.py, cli_serve.py)."""

from __future__ import annotations

import click

from .config import Detection


def sigma_paths(detection: Detection, flags: tuple[str, ...]) -> None:
    """--sigma adds to detection.sigma; a path that is not there is a usage error, not 0 rules."""
    from .detectors.sigma.loader import SigmaPathError, rule_files

    detection.sigma = [*detection.sigma, *flags]
    try:
        rule_files(detection.sigma)
    except SigmaPathError as exc:
        raise click.UsageError(str(exc)) from None
