"""The heavy half of loading Sigma rules (pySigma parses, our compiler compiles), kept apart from
loader.py so that importing the loader (the CLI checks --sigma paths on every `hunt`) does not
cost pySigma's 0.5 s import when no rule is configured.
"""

from __future__ import annotations

from pathlib import Path

import yaml
from sigma.collection import SigmaCollection
from sigma.correlations import SigmaCorrelationRule
from sigma.exceptions import SigmaError, SigmaRuleLocation
from sigma.rule import SigmaRule

from .compiler import compile_rule
from .correlation import correlation_from
from .loader import MAX_FILE, CompiledRule, RuleProblem, SigmaRuleset, rule_files
from .meta import meta_of
from .pipeline import POLICY, logsource_problem, pipeline
from .values import Unsupported


def reason_of(exc: BaseException) -> str:
    text = exc.args[0] if isinstance(exc, SigmaError) and exc.args else str(exc)
    text = " ".join(str(text).split())
    return f"{type(exc).__name__}: {text}" if isinstance(exc, SigmaError) else text


def _title(rule: object) -> str:
    title = getattr(rule, "title", "") or ""
    rid = getattr(rule, "id", None)
    return f"{title} ({rid})" if rid else title


def _read(path: Path, problems: list[RuleProblem]) -> SigmaCollection | None:
    """One file -> its collection (errors collected per rule), or None with the problem noted."""
    try:
        if path.stat().st_size > MAX_FILE:
            raise ValueError(f"larger than {MAX_FILE} bytes")
        docs = list(yaml.load_all(path.read_text(encoding="utf-8"), Loader=yaml.CSafeLoader))
    except yaml.YAMLError as exc:
        problems.append(RuleProblem(str(path), "", "not valid YAML: " + " ".join(str(exc).split())))
        return None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        problems.append(RuleProblem(str(path), "", f"cannot read: {exc}"))
        return None
    bad = [d for d in docs if d is not None and not isinstance(d, dict)]
    if bad or not any(docs):
        problems.append(RuleProblem(str(path), "", "not a Sigma rule (expected YAML mapping documents)"))
        return None
    docs = [d for d in docs if d is not None]
    try:
        return _collection(docs, path)
    except _SHAPE_ERRORS as exc:  # one document broke the file: load the others, name the bad one
        if any(d.get("action") for d in docs):  # global/repeat documents only make sense together
            problems.append(RuleProblem(str(path), "", f"rejected by pySigma: {reason_of(exc)}"))
            return None
    kept = []
    for d in docs:
        try:
            kept.append(_collection([d], path))
        except _SHAPE_ERRORS as exc:
            problems.append(RuleProblem(str(path), str(d.get("title") or ""), f"rejected by pySigma: {reason_of(exc)}"))
    if not kept:
        return None
    return SigmaCollection(init_rules=[r for c in kept for r in c.rules + c.filters],
                           errors=[e for c in kept for e in c.errors], collect_filters=True, resolve_references=False)


_SHAPE_ERRORS = (SigmaError, ValueError, TypeError, KeyError, AttributeError)  # any shape a document can take
_DUPLICATE = "duplicate rule id (already loaded from another file)"


def _collection(docs: list[dict], path: Path) -> SigmaCollection:
    return SigmaCollection.from_dicts(docs, collect_errors=True, source=SigmaRuleLocation(path),
                                      resolve_references=False, collect_filters=True, policy=POLICY)


def _compile(rule: SigmaRule, proc: object) -> CompiledRule:
    ls = rule.logsource
    problem = logsource_problem(ls.product, ls.category, ls.service)
    if problem:
        raise Unsupported(problem)
    proc.apply(rule)  # type: ignore[attr-defined]
    roots = [c.parsed for c in rule.detection.parsed_condition]
    if len(roots) != 1:
        raise Unsupported("more than one condition")
    pred, ids, channels = compile_rule(roots[0])
    return CompiledRule(meta_of(rule), pred, ids, channels)


def _merge(collections: list[tuple[Path, SigmaCollection]], problems: list[RuleProblem]) -> SigmaCollection:
    """All files' rules in one collection (so references and filters work across files); errors
    pySigma kept at file level (not on a rule) become problems here."""
    items: list = []
    for path, c in collections:
        on_rules = {id(e) for r in c.rules for e in r.errors}
        problems.extend(RuleProblem(str(path), "", reason_of(e)) for e in c.errors if id(e) not in on_rules)
        items += c.rules + c.filters
    try:
        return SigmaCollection(init_rules=items, errors=[], resolve_references=False)
    except _SHAPE_ERRORS as exc:
        problems.append(RuleProblem("(filters)", "", f"Sigma filters not applied: {reason_of(exc)}"))
        return SigmaCollection(init_rules=[r for r in items if isinstance(r, (SigmaRule, SigmaCorrelationRule))],
                               errors=[], resolve_references=False)


def load(paths: list[str]) -> SigmaRuleset:
    """Load every rule under `paths`; SigmaPathError only for a path that is not there."""
    out = SigmaRuleset()
    files = rule_files(paths)
    out.files = len(files)
    read = [(f, c) for f in files if (c := _read(f, out.problems)) is not None]
    merged = _merge(read, out.problems)
    by_obj: dict[int, CompiledRule] = {}
    seen: set[str] = set()
    corr_rules: list[SigmaCorrelationRule] = []
    proc = pipeline()
    for rule in merged.rules:
        where = str(rule.source.path) if rule.source else "?"
        if rule.errors:
            out.problems.append(RuleProblem(where, _title(rule), "; ".join(reason_of(e) for e in rule.errors)))
            continue
        if isinstance(rule, SigmaCorrelationRule):
            corr_rules.append(rule)
            continue
        try:
            compiled = _compile(rule, proc)
        except (SigmaError, Unsupported) as exc:
            out.problems.append(RuleProblem(where, _title(rule), reason_of(exc)))
            continue
        if compiled.meta.uid in seen:
            out.problems.append(RuleProblem(where, _title(rule), _DUPLICATE))
            continue
        seen.add(compiled.meta.uid)
        by_obj[id(rule)] = compiled
        out.rules.append(compiled)
    for rule in corr_rules:
        where = str(rule.source.path) if rule.source else "?"
        if meta_of(rule).uid in seen:
            out.problems.append(RuleProblem(where, _title(rule), _DUPLICATE))
            continue
        try:
            rule.resolve_rule_references(merged)
            rule.aliases.resolve_rule_references(merged)
            proc.apply(rule)
            corr = correlation_from(rule, by_obj)
        except (SigmaError, Unsupported) as exc:
            out.problems.append(RuleProblem(where, _title(rule), reason_of(exc)))
            continue
        seen.add(corr.meta.uid)
        out.correlations.append(corr)
    for compiled in out.rules:  # generate: false on a correlation silences its base rules
        compiled.output = not any(not c.generate for c, _ in compiled.correlations)
    return out
