"""`dcsentry audit` output: the JSON contract (`--json`) and the terminal tables.

JSON (keys are only ever added):
    {"events": {"4776": {"status": "yes"|"no"|"unknown", "fix": [...], "blind": [...],
                         "required": bool, "title": str, "detail": str, "source": "file:line",
                         "subcategory": "Audit ...", "on": "each DC"|"each CA",
                         "detections": [every alert type that reads it], "also": [what no export shows]}, ...},
     "settings": [{"setting", "where", "wanted", "current", "status", "source", "required"}],
     "conflicts": [str], "warnings": [str],
     "inputs": [{"path", "format", "machine"}], "errors": [str], "skipped": [str],
     "logs": {"DC01": {"first", "last", "events": {"4776": n}, "requirements": {key: {...}}}} | null,
     "missing_required": ["4776", ...], "unknown_required": [...], "exit_status": 0|1|2}
"""

from __future__ import annotations

from datetime import UTC, datetime

from rich.console import Console
from rich.table import Table

from ..catalogue import CATALOGUE
from .exports import ReadResult
from .logs import LogEvidence
from .verdict import Verdict

STYLE = {"yes": "green", "no": "bold red", "unknown": "yellow", "seen": "green", "missing": "bold red",
         "too-early": "yellow", "not-seen": "dim"}


def exit_status(verdict: Verdict, read: ReadResult, strict: bool = False) -> int:
    """2 when an input could not be read (the verdict is incomplete), 1 when something required is
    missing (a required event "no", one missing from the logs, or with `strict` one "unknown"), else 0."""
    if read.errors:
        return 2
    if verdict.missing_required() or (strict and verdict.unknown_required()):
        return 1
    if verdict.logs is not None and any(verdict.logs.missing().values()):
        return 1
    return 0


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat().replace("+00:00", "Z")


def logs_dict(logs: LogEvidence) -> dict:
    out = {}
    for dc in sorted(logs.dcs):
        d = logs.dcs[dc]
        reqs = {}
        for s in logs.states(dc):
            r = s.requirement
            reqs[r.key] = {"status": s.status, "count": s.count, "event_ids": list(r.event_ids),
                           "subcategory": r.subcategory_name, "required": r.required,
                           "allowed_silence_hours": round(s.allowed / 3600, 1),
                           "fix": [r.fix()] if s.status != "seen" else [],
                           "blind": list(r.blind) if s.status == "missing" else [],
                           "likely_cause": r.likely_cause if s.status == "missing" else ""}
        out[dc] = {"first": _iso(d.first), "last": _iso(d.last), "hours": round((d.last - d.first) / 3600, 2),
                   "events": {str(k): v for k, v in sorted(d.seen.items())}, "requirements": reqs}
    return out


def to_dict(verdict: Verdict, read: ReadResult, strict: bool = False) -> dict:
    events = {}
    for eid, v in verdict.events.items():
        req = v.requirement
        events[str(eid)] = {"status": v.status, "fix": v.fix, "blind": v.blind, "required": req.required,
                            "title": CATALOGUE[eid].title, "detail": v.detail, "source": v.source,
                            "subcategory": req.subcategory_name, "on": "each CA" if req.scope == "ca" else "each DC",
                            "detections": list(req.blind), "also": list(req.extra)}
    return {
        "events": events,
        "settings": [{"setting": c.setting, "where": c.where, "wanted": c.wanted, "current": c.current,
                      "status": c.status, "source": c.source, "required": c.required, "minimum": c.minimum}
                     for c in verdict.settings],
        "conflicts": verdict.conflicts,
        "warnings": verdict.warnings,
        "inputs": [{"path": e.path, "format": e.kind, "machine": e.machine} for e in verdict.inputs],
        "errors": [str(e) for e in read.errors],
        "skipped": read.skipped,
        "logs": logs_dict(verdict.logs) if verdict.logs is not None else None,
        "missing_required": [str(e) for e in verdict.missing_required()],
        "unknown_required": [str(e) for e in verdict.unknown_required()],
        "exit_status": exit_status(verdict, read, strict),
    }


def print_report(verdict: Verdict, read: ReadResult, console: Console, strict: bool = False) -> None:
    t = Table(title="Will this DC produce the events dcsentry reads?", show_lines=True)
    for col in ("Event", "Produced", "Why / what to change", "Blind without it"):
        t.add_column(col, overflow="fold")
    for eid, v in verdict.events.items():
        where = " (on the CA)" if v.requirement.scope == "ca" else ""
        name = f"{eid}{'' if v.requirement.required else ' (context)'}{where}\n{CATALOGUE[eid].title}"
        why = v.detail + (f"\n[dim]{v.source}[/]" if v.source else "")
        for f in v.fix:
            why += f"\n[bold]Change:[/] {f}"
        blind = ", ".join(v.blind) + (f"\n[dim]({v.requirement.blind_note})[/]" if v.blind and v.requirement.blind_note
                                      else "")
        t.add_row(name, f"[{STYLE[v.status]}]{v.status}[/]", why, blind)
    console.print(t)
    s = Table(title="Settings checked")
    for col in ("Setting", "Wanted", "Now", "OK", "From"):
        s.add_column(col, overflow="fold")
    for c in verdict.settings:
        s.add_row(c.setting + (f" [bold](required: {c.minimum})[/]" if c.required else ""), c.wanted, c.current,
                  f"[{STYLE[c.status]}]{c.status}[/]", c.source)
    console.print(s)
    if verdict.logs is not None:
        print_logs(verdict.logs, console)
    for title, items in (("Conflicts", verdict.conflicts), ("Warnings", verdict.warnings),
                         ("Could not read", [str(e) for e in read.errors]), ("Skipped (not an export)", read.skipped)):
        if items:
            console.print(f"[bold]{title}[/]")
            for it in items:
                console.print(f"  - {it}", highlight=False)
    missing = verdict.missing_required()
    if missing:
        console.print(f"[bold red]Missing:[/] events {', '.join(map(str, missing))} will not be produced; "
                      "`dcsentry audit --fix-script DIR ...` writes the remediation.")
    elif verdict.unknown_required():
        console.print("[yellow]Not decided by these files:[/] events "
                      f"{', '.join(map(str, verdict.unknown_required()))}.")


def print_logs(logs: LogEvidence, console: Console) -> None:
    t = Table(title="What the DC logs show (the service's health-alert rule)")
    for col in ("DC", "Span", "Requirement", "Status", "Events", "Note"):
        t.add_column(col, overflow="fold")
    for dc in sorted(logs.dcs):
        d = logs.dcs[dc]
        span = f"{(d.last - d.first) / 3600:.1f} h"
        for s in logs.states(dc):
            r = s.requirement
            note = {"seen": "",
                    "missing": f"{r.likely_cause}. Change: {r.fix()}. Blind: {', '.join(r.blind)}",
                    "too-early": f"none yet, but the logs cover less than the {s.allowed / 3600:.0f} h it takes to "
                                 "tell",
                    "not-seen": ("none in these logs (nothing of the kind happened, or it is not forwarded)"
                                 if r.always else "none in these logs (rare, or not audited: see the export checks)")
                    }[s.status]
            t.add_row(dc, span, r.what, f"[{STYLE[s.status]}]{s.status}[/]", str(s.count), note)
    console.print(t)
