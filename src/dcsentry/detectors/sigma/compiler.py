"""A Sigma rule's condition tree -> one Python closure over an event, built once at load.

pySigma resolves the condition (`1 of selection_*`, `all of them`, `not filter`) and applies the
modifiers, so what arrives here is a tree of AND/OR/NOT over (field, value) leaves. The closure
reads fields straight from the `WindowsEvent` (System fields by attribute, EventData by name; no
per-event dict is built). A list of plain values on one field becomes one set lookup or one
`startswith(tuple)` call, a list of networks one address parse. The EventID and Channel values a
rule requires are read from the same tree and become its index keys, and the tests the index
already guarantees are left out of the closure.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from itertools import groupby

from sigma.conditions import (
    ConditionAND,
    ConditionFieldEqualsValueExpression,
    ConditionNOT,
    ConditionOR,
    ConditionValueExpression,
)
from sigma.types import SigmaNumber, SigmaString

from ...model import WindowsEvent
from .pipeline import SYSTEM_FIELDS
from .values import SIMPLE, Test, Unsupported, in_networks, value_test

Pred = Callable[[WindowsEvent], bool]
Getter = Callable[[WindowsEvent], "str | None"]


def raw_getter(name: str) -> Getter:
    """A field's value: System fields from the record's attributes, the rest from EventData."""
    system = SYSTEM_FIELDS.get(name)
    if system is not None:
        return system
    return lambda ev: ev.data.get(name)


def low_getter(name: str) -> Getter:
    """The value lower-cased (recomputed per test: cheaper than a per-event cache for short values)."""
    system = SYSTEM_FIELDS.get(name)
    if system is not None:
        return lambda ev: (x := system(ev)) and x.lower()
    return lambda ev: (x := ev.data.get(name)) and x.lower()


def str_pred(t: Test) -> Callable[[str], bool]:
    """The test on a present string value (keywords, and the slow path for fields)."""
    arg, fold = t.arg, (lambda x: x) if t.cased else str.lower
    if t.kind == "eq":
        return lambda x: fold(x) == arg
    if t.kind == "contains":
        return lambda x: arg in fold(x)
    if t.kind == "startswith":
        return lambda x: fold(x).startswith(arg)
    if t.kind == "endswith":
        return lambda x: fold(x).endswith(arg)
    if t.kind == "any":
        return lambda x: True
    if t.kind == "fn":
        return arg
    if t.kind == "cidr":
        return in_networks([arg])
    if t.kind == "or":
        preds = [str_pred(s) for s in arg]
        return lambda x: any(p(x) for p in preds)
    raise Unsupported(f"{t.kind} test needs a field name")


def _cidr_pred(test: Callable[[str], bool], raw: Getter) -> Pred:
    return lambda v: (x := raw(v)) is not None and test(x)


def _simple_group(name: str, kind: str, cased: bool, args: list[str], all_: bool) -> Pred:
    get = raw_getter(name) if cased else low_getter(name)
    if kind == "eq" and not all_:
        values = frozenset(args)
        return lambda v: get(v) in values
    if kind in ("startswith", "endswith") and not all_:
        prefixes = tuple(args)
        method = str.startswith if kind == "startswith" else str.endswith
        return lambda v: (x := get(v)) is not None and method(x, prefixes)
    one = {"eq": str.__eq__, "contains": str.__contains__, "startswith": str.startswith,
           "endswith": str.endswith}[kind]
    if len(args) == 1:
        a = args[0]
        return lambda v: (x := get(v)) is not None and one(x, a)
    if all_:
        return lambda v: (x := get(v)) is not None and all(one(x, a) for a in args)
    return lambda v: (x := get(v)) is not None and any(one(x, a) for a in args)


def field_pred(name: str | None, t: Test) -> Pred:
    if name is None:  # keyword: full-text search, a plain word found anywhere in any EventData value
        p = str_pred(Test("contains", t.arg, t.cased) if t.kind == "eq" else t)
        return lambda ev: any(p(x) for x in ev.data.values() if x is not None)
    if t.kind in SIMPLE:
        return _simple_group(name, t.kind, t.cased, [t.arg], False)
    raw = raw_getter(name)
    if t.kind == "any":
        return lambda v: raw(v) is not None
    if t.kind == "null":
        return lambda v: not raw(v)
    if t.kind == "exists":
        want = t.arg
        return lambda v: (raw(v) is not None) == want
    if t.kind == "ref":
        other, how = t.arg
        left, right = low_getter(name), low_getter(other)
        ops: dict[str, Callable[[str, str], bool]] = {"eq": str.__eq__, "startswith": str.startswith,
                                                      "endswith": str.endswith}
        method = ops[how]
        return lambda v: (x := left(v)) is not None and (y := right(v)) is not None and method(x, y)
    if t.kind == "or":
        preds = [field_pred(name, s) for s in t.arg]
        return lambda v: any(p(v) for p in preds)
    p = str_pred(t)
    return lambda v: (x := raw(v)) is not None and p(x)


def _leaf(node: object) -> tuple[str | None, Test] | None:
    if isinstance(node, ConditionFieldEqualsValueExpression):
        return node.field, value_test(node.value)
    if isinstance(node, ConditionValueExpression):
        return None, value_test(node.value)
    return None


def _all(preds: list[Pred]) -> Pred:
    if len(preds) == 1:
        return preds[0]
    if len(preds) == 2:
        a, b = preds
        return lambda v: a(v) and b(v)

    def all_of(v: WindowsEvent) -> bool:
        for p in preds:
            if not p(v):
                return False
        return True

    return all_of


def _any(preds: list[Pred]) -> Pred:
    if len(preds) == 1:
        return preds[0]
    if len(preds) == 2:
        a, b = preds
        return lambda v: a(v) or b(v)

    def any_of(v: WindowsEvent) -> bool:
        for p in preds:
            if p(v):
                return True
        return False

    return any_of


def _merged(args: Iterable[object], all_: bool) -> list[Pred]:
    """Compile the operands of one AND/OR, merging plain tests on the same field and kind."""
    plain: list[tuple[tuple, object]] = []
    out: list[Pred] = []
    for arg in args:
        leaf = _leaf(arg)
        mergeable = leaf is not None and (leaf[1].kind in SIMPLE or (leaf[1].kind == "cidr" and not all_))
        if leaf is not None and leaf[0] is not None and mergeable:
            name, t = leaf
            plain.append(((name, t.kind, t.cased), t.arg))
        elif leaf is not None:
            out.append(field_pred(*leaf))
        else:
            out.append(compile_node(arg))
    plain.sort(key=lambda p: p[0])
    for (name, kind, cased), items in groupby(plain, key=lambda p: p[0]):
        values = [a for _, a in items]
        if kind == "cidr":  # a list of networks: parse the address once
            out.append(_cidr_pred(in_networks(values), raw_getter(name)))
        else:
            out.insert(0, _simple_group(name, kind, cased, values, all_))  # type: ignore[arg-type]
    return out


def compile_node(node: object) -> Pred:
    if isinstance(node, ConditionAND):
        return _all(_merged(node.args, True))
    if isinstance(node, ConditionOR):
        return _any(_merged(node.args, False))
    if isinstance(node, ConditionNOT):
        inner = compile_node(node.args[0])
        return lambda v: not inner(v)
    leaf = _leaf(node)
    if leaf is None:
        raise Unsupported(f"condition element {type(node).__name__} is not supported")
    return field_pred(*leaf)


def conjuncts(node: object) -> list[object]:
    """The operands of a (nested) AND at the root; the root alone otherwise."""
    if isinstance(node, ConditionAND):
        return [c for a in node.args for c in conjuncts(a)]
    return [node]


def required(node: object, name: str) -> frozenset[str] | None:
    """The lower-cased values `name` must equal for `node` to be true, or None if unconstrained."""
    if isinstance(node, ConditionFieldEqualsValueExpression):
        if node.field != name:
            return None
        v = node.value
        if isinstance(v, SigmaNumber) and not isinstance(v.number, bool):
            return frozenset({str(v.number)})
        if isinstance(v, SigmaString) and not v.contains_special() and not v.contains_placeholder():
            return frozenset({v.to_plain().lower()})
        return None
    if isinstance(node, ConditionOR):
        parts = [required(a, name) for a in node.args]
        if any(p is None for p in parts):
            return None
        return frozenset().union(*parts)  # type: ignore[arg-type]
    if isinstance(node, ConditionAND):
        found = [p for p in (required(a, name) for a in node.args) if p is not None]
        if not found:
            return None
        return frozenset.intersection(*found)
    return None


def equality_only(node: object, name: str) -> bool:
    """Only plain equality tests on `name` (then the index key says all the node says)."""
    if isinstance(node, ConditionFieldEqualsValueExpression):
        return required(node, name) is not None
    if isinstance(node, ConditionOR):
        return all(equality_only(a, name) for a in node.args)
    return False


def compile_rule(root: object) -> tuple[Pred, frozenset[int] | None, frozenset[str] | None]:
    """(predicate, event ids, lower-cased channels): the index keys and what is left to test."""
    parts = conjuncts(root)
    ids = required(root, "EventID")
    event_ids = None
    if ids is not None and all(i.isdigit() for i in ids):
        event_ids = frozenset(int(i) for i in ids)
    channels = required(root, "Channel")
    if event_ids == frozenset() or channels == frozenset():  # contradictory: `EventID: 1 and EventID: 2`
        return (lambda v: False), frozenset(), frozenset()
    rest = [p for p in parts
            if not (event_ids is not None and equality_only(p, "EventID"))
            and not (channels is not None and equality_only(p, "Channel"))]
    pred = _all(_merged(rest, True)) if rest else (lambda v: True)
    return pred, event_ids, channels
