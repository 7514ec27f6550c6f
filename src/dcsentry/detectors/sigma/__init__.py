"""Sigma rules and correlations on the live event stream (docs/sigma.md).

`load_rules(paths)` parses and compiles once (pySigma, then our compiler); `SigmaMatcher` runs
the result on each `WindowsEvent` next to the built-in detectors and raises `sigma:<rule id>`
alerts that go wherever those go. The names are imported on first use: pySigma takes about 0.5 s
to import, which `hunt` without rules must not pay.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .loader import RuleProblem, SigmaPathError, SigmaRuleset, load_rules

if TYPE_CHECKING:
    from .matcher import SigmaMatcher

__all__ = ["RuleProblem", "SigmaMatcher", "SigmaPathError", "SigmaRuleset", "load_rules"]


def __getattr__(name: str) -> Any:
    if name == "SigmaMatcher":
        from .matcher import SigmaMatcher

        return SigmaMatcher
    raise AttributeError(name)
