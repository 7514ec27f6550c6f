"""What a person at a terminal sees: a streaming event table, progress, and the read summary."""

from __future__ import annotations

from typing import IO

from rich.console import Console
from rich.table import Table
from rich.text import Text

from ..catalogue import CATALOGUE
from ..formats import Problem, ReadStats
from ..model import WindowsEvent
from .safe import visible

_MAX_PROBLEM_LINES = 200


class ProblemPrinter:
    """One line per bad input on stderr, capped so a shredded file cannot flood the terminal."""

    def __init__(self, err: IO[str]) -> None:
        self.err = err
        self.shown = 0

    def __call__(self, p: Problem) -> None:
        self.shown += 1
        if self.shown <= _MAX_PROBLEM_LINES:
            print(f"dcsentry: {p}", file=self.err)
        elif self.shown == _MAX_PROBLEM_LINES + 1:
            print("dcsentry: more problems not shown (see the summary)", file=self.err)


def _brief(data: dict[str, str], width: int = 90) -> str:
    text = visible(" ".join(f"{k}={v}" for k, v in data.items() if v not in ("", "-")), one_line=True)
    return text if len(text) <= width else text[: width - 1] + "…"


class EventTable:
    """Fixed-width rows printed as they come (a rich Table would hold every row until the end)."""

    def __init__(self, out: IO[str]) -> None:
        self.out = out
        self.rows = 0

    def write(self, ev: WindowsEvent) -> None:
        if self.rows == 0:
            print(f"{'time (UTC)':<27} {'id':>5}  {'computer':<28} {'record':>9}  data", file=self.out)
        self.rows += 1
        t = ev.time.strftime("%Y-%m-%d %H:%M:%S.%f")[:23]
        computer = visible(ev.computer, one_line=True)[:28]
        print(f"{t:<27} {ev.event_id:>5}  {computer:<28} {str(ev.record_id or ''):>9}  {_brief(ev.data)}",
              file=self.out)


def print_summary(stats: ReadStats, err: Console) -> None:
    """Files, records, events by id, and what was skipped and why (stderr)."""
    head = f"{stats.files} file(s), {stats.records} record(s) read"
    if stats.skipped_total:
        head += f", {stats.skipped_total} skipped"
    err.print(head, highlight=False)
    if stats.by_id:
        t = Table(title="events by id", show_edge=False, pad_edge=False)
        t.add_column("id", justify="right")
        t.add_column("count", justify="right")
        t.add_column("event")
        for eid, n in sorted(stats.by_id.items()):
            spec = CATALOGUE.get(eid)
            t.add_row(str(eid), str(n), spec.title if spec else "")
        err.print(t)
    if stats.skipped:
        err.print("skipped: " + ", ".join(f"{k} x{n}" for k, n in stats.skipped.most_common()), highlight=False)
    if stats.warnings:
        err.print("kept with warnings: " + ", ".join(f"{k} x{n}" for k, n in stats.warnings.most_common()),
                  highlight=False)


_SEVERITY_STYLE = {"high": "bold red", "medium": "yellow", "low": "cyan"}


def print_alerts(alerts: list, out: Console) -> None:
    """Alerts as a table a responder can read at a glance."""
    if not alerts:
        out.print("no alerts", highlight=False)
        return
    t = Table(show_lines=True)
    t.add_column("start (UTC)", no_wrap=True)
    t.add_column("severity")
    t.add_column("type", no_wrap=True)
    t.add_column("count", justify="right")
    t.add_column("description")
    for a in alerts:
        sev = a.severity + (" (learning)" if a.learning else "")
        # Text(), not a markup string: a `[bold]` in an account name stays text, controls become escapes.
        t.add_row(f"{a.start:%Y-%m-%d %H:%M:%S}", Text(sev, style=_SEVERITY_STYLE.get(a.severity, "")),
                  Text(visible(a.type)), str(a.count), Text(visible(a.description)))
    out.print(t)
