"""Sigma correlation rules (v2 `correlation:`) evaluated on the stream, with bounded state.

Supported: event_count and value_count with `gt`/`gte`, temporal (with a count or an extended
and/or/not condition) and temporal_ordered, each with group-by (and field aliases) and timespan.
State is per group: the base-rule matches inside the timespan (a deque trimmed by event time,
at most MAX_WINDOW entries) and, for value_count, a counter of the distinct values in it, so a
check costs O(1) (O(window) for temporal_ordered). Groups live in an LRU of MAX_KEYS, like the
built-in detectors' state. The matcher turns a firing into an alert that then grows while the
group's activity goes on, exactly as built-in incidents do.

Not supported (reported at load): lt/lte/eq/neq thresholds (they fire on what did *not* happen
by the end of a window, which a stream only knows once the window has closed), value_sum/avg/
percentile/median, and correlations over other correlations.
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from sigma.correlations import (
    CorrelationConditionAND,
    CorrelationConditionNOT,
    CorrelationConditionOR,
    SigmaCorrelationCondition,
    SigmaCorrelationConditionOperator,
    SigmaCorrelationRule,
    SigmaCorrelationType,
    SigmaExtendedCorrelationCondition,
    SigmaRuleReference,
)

from ...model import WindowsEvent
from ..base import MAX_KEYS, Lru
from .compiler import raw_getter
from .meta import RuleMeta, meta_of
from .pipeline import FIELD_ALIASES
from .values import Unsupported

if TYPE_CHECKING:
    from .loader import CompiledRule

MAX_WINDOW = 10_000  # base-rule matches kept per group within the timespan
_KINDS = {SigmaCorrelationType.EVENT_COUNT: "event_count", SigmaCorrelationType.VALUE_COUNT: "value_count",
          SigmaCorrelationType.TEMPORAL: "temporal", SigmaCorrelationType.TEMPORAL_ORDERED: "temporal_ordered"}
_OPS = {SigmaCorrelationConditionOperator.GT: lambda n, c: n > c,
        SigmaCorrelationConditionOperator.GTE: lambda n, c: n >= c}


class Group:
    __slots__ = ("window", "values", "last")

    def __init__(self) -> None:
        self.window: deque = deque()
        self.values: Counter = Counter()
        self.last: dict[int, float] = {}


@dataclass
class Correlation:
    meta: RuleMeta
    kind: str
    generate: bool
    span: float
    group_by: list[str]
    bases: list[CompiledRule]
    group_fields: list[list[str]]  # per base rule, the event field of each group-by name (aliases applied)
    value_fields: list[str | None]  # per base rule, the field value_count counts
    value_field: str | None  # as the rule names it
    test: Callable[[int], bool]
    expr: Callable[[set[int]], bool] | None = None

    def __post_init__(self) -> None:
        self.group_getters = [[raw_getter(f) for f in fields] for fields in self.group_fields]
        self.value_getters = [raw_getter(f) if f else None for f in self.value_fields]

    def group_of(self, base: int, ev: WindowsEvent) -> tuple[str, ...]:
        return tuple(g(ev) or "" for g in self.group_getters[base])

    def state(self) -> Lru[tuple[str, ...], Group]:
        """Fresh per-group state for one matcher (the rule itself stays shareable)."""
        return Lru(MAX_KEYS)

    def observe(self, groups: Lru[tuple[str, ...], Group], base: int, ev: WindowsEvent, t: float,
                evidence: Any) -> tuple[tuple[str, ...], str | None, bool]:
        """Record one base-rule match; (group, value, whether the condition holds now)."""
        key = self.group_of(base, ev)
        getter = self.value_getters[base]
        value = getter(ev) if getter is not None else None
        g = groups.touch(key, Group)
        win = g.window
        win.append((t, base, value, evidence))
        if value is not None:
            g.values[value] += 1
        while win and (win[0][0] < t - self.span or len(win) > MAX_WINDOW):
            old = win.popleft()
            if old[2] is not None:
                n = g.values[old[2]] - 1
                if n:
                    g.values[old[2]] = n
                else:
                    del g.values[old[2]]
        g.last[base] = t
        return key, value, self._holds(g, base, t)

    @staticmethod
    def window(groups: Lru[tuple[str, ...], Group], key: tuple[str, ...]) -> list[tuple[float, int, str | None, Any]]:
        """The group's matches in the timespan, oldest first: (time, base index, value, evidence)."""
        return list(groups[key].window)

    def _holds(self, g: Group, base: int, t: float) -> bool:
        if self.kind == "event_count":
            return self.test(len(g.window))
        if self.kind == "value_count":
            return self.test(len(g.values))
        seen = {b for b, last in g.last.items() if last >= t - self.span}
        if self.kind == "temporal":
            return self.expr(seen) if self.expr is not None else self.test(len(seen))
        return self._in_order(g, base)

    def _in_order(self, g: Group, base: int) -> bool:
        """temporal_ordered: the base rules matched one after the other (the last one now) in the window."""
        if base != len(self.bases) - 1:
            return False
        want = 0
        for _, b, _, _ in g.window:
            if b == want:
                want += 1
                if want == len(self.bases):
                    return True
        return False


def _field_for(rule: SigmaCorrelationRule, name: str, base_rule: object) -> str:
    """The event field a group-by/value name means for one base rule (aliases, then our field names)."""
    alias = rule.aliases.aliases.get(name)
    if alias is not None:
        for ref, field_name in alias.mapping.items():
            if getattr(ref, "rule", None) is base_rule:
                name = field_name
                break
        else:
            raise Unsupported(f"alias {name!r} has no field for rule {getattr(base_rule, 'title', '?')!r}")
    return str(FIELD_ALIASES.get(name, name))


def _expr(node: object, index: dict[str, int]) -> Callable[[set[int]], bool]:
    if isinstance(node, SigmaRuleReference):
        i = index.get(node.reference)
        if i is None:
            raise Unsupported(f"condition names rule {node.reference!r} that is not in the correlation")
        return lambda seen: i in seen
    parts = [_expr(a, index) for a in node.args]  # type: ignore[attr-defined]
    if isinstance(node, CorrelationConditionAND):
        return lambda seen: all(p(seen) for p in parts)
    if isinstance(node, CorrelationConditionOR):
        return lambda seen: any(p(seen) for p in parts)
    if isinstance(node, CorrelationConditionNOT):
        return lambda seen: not parts[0](seen)
    raise Unsupported(f"extended condition element {type(node).__name__}")


def _always(n: int) -> bool:
    return True


def correlation_from(rule: SigmaCorrelationRule, compiled: dict[int, CompiledRule]) -> Correlation:
    kind = _KINDS.get(rule.type)
    if kind is None:
        raise Unsupported(f"correlation type {rule.type.name.lower()} is not supported")
    refs = rule.referenced_rules
    if not refs:
        raise Unsupported("correlation without rules")
    bases: list[CompiledRule] = []
    for ref in refs:
        if isinstance(ref.rule, SigmaCorrelationRule):
            raise Unsupported(f"correlation over another correlation ({ref.reference}) is not supported")
        c = compiled.get(id(ref.rule))
        if c is None:
            raise Unsupported(f"referenced rule {ref.reference!r} did not load")
        bases.append(c)
    cond = rule.condition
    test: Callable[[int], bool] = _always
    expr = None
    value_field = None
    if isinstance(cond, SigmaExtendedCorrelationCondition):
        if kind != "temporal":
            raise Unsupported(f"extended condition with {kind} is not supported")
        index = {}
        for i, ref in enumerate(refs):
            index[ref.reference] = i
            for name in (getattr(ref.rule, "name", None), str(getattr(ref.rule, "id", ""))):
                if name:
                    index[name] = i
        expr = _expr(cond.parsed, index)
    elif isinstance(cond, SigmaCorrelationCondition):
        op = _OPS.get(cond.op)
        if op is None:
            raise Unsupported(f"condition {cond.op.name.lower()} needs windows that close (only gt/gte stream)")
        limit = cond.count
        test = lambda n: op(n, limit)  # noqa: E731
        if kind == "value_count":
            if not isinstance(cond.fieldref, str):
                raise Unsupported("value_count over several fields is not supported")
            value_field = cond.fieldref
    group_by = list(rule.group_by or [])
    groups = [[_field_for(rule, g, ref.rule) for g in group_by] for ref in refs]
    values = [_field_for(rule, value_field, ref.rule) if value_field else None for ref in refs]
    meta = meta_of(rule)
    if not meta.technique:  # a correlation often leaves the tags to the rules it counts
        meta = replace(meta, technique=next((b.meta.technique for b in bases if b.meta.technique), ""))
    corr = Correlation(meta, kind, bool(rule.generate), float(rule.timespan.seconds), group_by, bases, groups,
                       values, value_field, test, expr)
    for i, b in enumerate(bases):
        b.correlations.append((corr, i))
    return corr
