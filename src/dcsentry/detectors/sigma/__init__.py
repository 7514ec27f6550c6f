"""Sigma rules and correlations on the live event stream (docs/sigma.md).

`load_rules(paths)` parses and compiles once (pySigma, then our compiler); `SigmaMatcher` runs
the result on each `WindowsEvent` next to the built-in detectors and raises `sigma:<rule id>`
alerts that go wherever those go.
"""

from .loader import RuleProblem, SigmaPathError, SigmaRuleset, load_rules
from .matcher import SigmaMatcher

__all__ = ["RuleProblem", "SigmaMatcher", "SigmaPathError", "SigmaRuleset", "load_rules"]
