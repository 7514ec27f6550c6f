"""`dcsentry synth`: write a synthetic DC event stream (and its attack labels) to a file.

Here, not in synth/, so `dcsentry.synth` never needs click or the main CLI.
"""

from __future__ import annotations

import json
import sys
import time
from datetime import datetime

import click

from ..synth import DEFAULT_START, build_domain, generate, labels_document
from ..synth.attacks import select
from ..synth.render import FORMATS, format_for, open_out, write_events


def _attacks(ctx: click.Context, param: click.Parameter, value: str) -> str:
    try:
        select(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None
    return value


@click.command()
@click.option("--out", "out_path", required=True, type=click.Path(dir_okay=False),
              help="Output file (- for stdout); a .gz name is gzip-compressed.")
@click.option("--format", "fmt", type=click.Choice(FORMATS),
              help="xml (Windows event XML), jsonl (evtx parser JSON) or winlogbeat (ECS JSON); "
                   "default from the file name, else xml.")
@click.option("--seed", type=int, default=1, show_default=True, help="Same seed, same bytes.")
@click.option("--hours", type=click.FloatRange(min=0.01), default=24.0, show_default=True,
              help="Simulated time span.")
@click.option("--users", type=click.IntRange(min=10), default=200, show_default=True, help="Staff accounts.")
@click.option("--dcs", type=click.IntRange(min=1), default=2, show_default=True, help="Domain controllers.")
@click.option("--attacks", default="all", show_default=True, callback=_attacks,
              help="all, none, or a comma list of alert types (brute-force,password-spray,...).")
@click.option("--labels", "labels_path", type=click.Path(dir_okay=False),
              help="Write the ground-truth labels (JSON) here.")
@click.option("--rate", type=click.FloatRange(min=0.001), metavar="EVENTS_PER_SEC",
              help="Average everyday events per simulated second (volume for load tests); "
                   "default: what --users people produce.")
@click.option("--start", type=click.DateTime(["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S"]),
              help=f"Start of the simulated span, UTC [default: {DEFAULT_START:%Y-%m-%d}].")
@click.option("--attacks-from", type=click.DateTime(["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S"]),
              help="Lay the attacks out from this time (UTC) on only: a multi-day run whose first days "
                   "detectors learn on.")
def synth(out_path: str, fmt: str | None, seed: int, hours: float, users: int, dcs: int, attacks: str,
          labels_path: str | None, rate: float | None, start: datetime | None,
          attacks_from: datetime | None) -> None:
    """Generate a domain's everyday DC events with attacks mixed in, sorted by time."""
    fmt = fmt or format_for(out_path)
    began = time.monotonic()
    events, labels = generate(seed=seed, hours=hours, users=users, dcs=dcs, attacks=attacks, start=start, rate=rate,
                              attacks_from=attacks_from)
    if out_path == "-":
        counts = write_events(events, sys.stdout.buffer, fmt)
        sys.stdout.buffer.flush()
    else:
        with open_out(out_path) as out:
            counts = write_events(events, out, fmt)
    if labels_path:
        params = {"seed": seed, "hours": hours, "users": users, "dcs": dcs, "attacks": attacks, "rate": rate,
                  "start": (start or DEFAULT_START).isoformat(), "format": fmt,
                  "attacks_from": attacks_from.isoformat() if attacks_from else None}
        with open(labels_path, "w", encoding="utf-8") as fh:
            json.dump(labels_document(labels, build_domain(seed, users, dcs), **params), fh, indent=1)
            fh.write("\n")
    total = sum(counts.values())
    mix = ", ".join(f"{eid}: {n}" for eid, n in sorted(counts.items()))
    click.echo(f"{total} events ({mix}) and {len(labels)} attack label(s) in {time.monotonic() - began:.1f}s",
               err=True)
