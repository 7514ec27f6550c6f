"""Helpers for the Sigma tests: rules written to a tmp folder, events, a matcher over them."""

from __future__ import annotations

import textwrap
from datetime import datetime
from pathlib import Path

from eventfactory import at

from dcsentry.alerts import Alert
from dcsentry.config import Detection
from dcsentry.detectors.sigma import SigmaMatcher, SigmaRuleset, load_rules
from dcsentry.model import Origin, WindowsEvent

DATA = Path(__file__).parent / "data" / "sigma"


def write_rules(folder: Path, **files: str) -> Path:
    """Each keyword is a file name (without .yml) and its YAML text (dedented)."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (folder / f"{name}.yml").write_text(textwrap.dedent(text), encoding="utf-8")
    return folder


def rule(title: str, detection: str, *, service: str = "security", extra: str = "", level: str = "high") -> str:
    """A minimal rule document; `detection` is the indented body of `detection:`."""
    body = textwrap.indent(textwrap.dedent(detection).strip("\n"), "    ")
    return (f"title: {title}\nid: {_uuid(title)}\nstatus: test\nlogsource:\n    product: windows\n"
            f"    service: {service}\ndetection:\n{body}\nlevel: {level}\n{extra}")


def _uuid(title: str) -> str:
    import uuid

    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"dcsentry-test:{title}"))


def event(event_id: int, data: dict[str, str], t: float | datetime = 0.0, *, channel: str = "Security",
          computer: str = "DC01.contoso.local", provider: str = "Microsoft-Windows-Security-Auditing") -> WindowsEvent:
    """A `WindowsEvent` with any EventData (the record every reader produces)."""
    when = t if isinstance(t, datetime) else at(t)
    return WindowsEvent(event_id, provider, channel, computer, when, 1, dict(data), Origin("test"))


def matcher(tmp: Path, **files: str) -> tuple[SigmaMatcher, SigmaRuleset]:
    rs = load_rules([str(write_rules(tmp, **files))])
    return SigmaMatcher(rs, Detection()), rs


def titles(alerts: list[Alert]) -> set[str]:
    return {a.title for a in alerts}
