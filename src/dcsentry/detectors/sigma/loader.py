"""Sigma files -> compiled rules and correlations, and a problem line for every rule left out.

pySigma parses and validates; each rule then goes through the dcsentry pipeline and is compiled
(compiler.py). Nothing is dropped silently: a file that is not YAML, a rule pySigma rejects, a
logsource we cannot read, a modifier or correlation type we cannot evaluate, each becomes a
`RuleProblem` naming the file and rule with the reason. Only a path that does not exist is fatal
(a typo in a config must not look like "0 rules matched"). The parsing and compiling is in build.py,
imported only when rules are loaded: pySigma takes about 0.5 s to import.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .compiler import Pred
    from .correlation import Correlation
    from .meta import RuleMeta

MAX_FILE = 1 << 20  # a rule file is a few KiB; a bigger one is not a rule file


class SigmaPathError(ValueError):
    """A configured rule path that does not exist or cannot be read."""


@dataclass(frozen=True)
class RuleProblem:
    path: str
    title: str
    reason: str

    def __str__(self) -> str:
        return f"{self.path}: {self.title}: {self.reason}" if self.title else f"{self.path}: {self.reason}"


@dataclass
class CompiledRule:
    """A loaded detection rule: what the alert says, and the compiled test."""

    meta: RuleMeta
    match: Pred
    event_ids: frozenset[int] | None
    channels: frozenset[str] | None
    output: bool = True  # False: only feeds correlations (Sigma's `generate: false`)
    correlations: list[tuple[Correlation, int]] = field(default_factory=list)  # and this rule's index in each


@dataclass
class SigmaRuleset:
    rules: list[CompiledRule] = field(default_factory=list)
    correlations: list[Correlation] = field(default_factory=list)
    problems: list[RuleProblem] = field(default_factory=list)
    files: int = 0

    @property
    def loaded(self) -> int:
        return len(self.rules) + len(self.correlations)

    @property
    def total(self) -> int:
        return self.loaded + len(self.problems)

    def summary(self) -> str:
        return (f"{self.loaded} of {self.total} Sigma rules loaded ({len(self.correlations)} correlations) "
                f"from {self.files} file(s); {len(self.problems)} not loaded")

    def report(self) -> list[str]:
        """One line per rule left out, then the summary: what `hunt` and `serve` print."""
        return [f"sigma: not loaded: {p}" for p in self.problems] + [f"sigma: {self.summary()}"]


def rule_files(paths: list[str]) -> list[Path]:
    out: list[Path] = []
    for p in paths:
        path = Path(p).expanduser()
        if path.is_dir():
            out.extend(sorted(f for f in path.rglob("*") if f.suffix.lower() in (".yml", ".yaml") and f.is_file()))
        elif path.is_file():
            out.append(path)
        else:
            raise SigmaPathError(f"sigma rules: {p}: no such file or directory")
    return out


def load_rules(paths: list[str]) -> SigmaRuleset:
    """Load every rule under `paths`; SigmaPathError only for a path that is not there."""
    from .build import load  # pySigma only when rules are loaded (build.py)

    return load(paths)


def reason_of(exc: BaseException) -> str:
    from .build import reason_of as reason

    return reason(exc)
