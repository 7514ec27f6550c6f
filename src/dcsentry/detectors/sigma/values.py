"""One Sigma value (with its modifiers already applied by pySigma) -> a test on one field's string.

Sigma's plain strings match case-insensitively with `*`/`?` wildcards; the common shapes (equals,
contains, startswith, endswith) stay plain `str` operations so the compiler can merge a list of
them on one field into a single set lookup or tuple call. Everything else becomes a closure.

Regular expressions run on RE2 (google-re2, which pySigma itself validates with): matching time is
linear in the input whatever the pattern, so no rule can stall the event stream with catastrophic
backtracking; the price is that backreferences and lookaround are rejected when the rule loads.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sigma.types import (
    CompareOperators,
    SigmaBool,
    SigmaCasedString,
    SigmaCIDRExpression,
    SigmaCompareExpression,
    SigmaExists,
    SigmaExpansion,
    SigmaFieldReference,
    SigmaNull,
    SigmaNumber,
    SigmaRegularExpression,
    SigmaRegularExpressionFlag,
    SigmaString,
    SigmaTimestampPart,
    SigmaType,
    SpecialChars,
)

from .pipeline import POLICY

SIMPLE = ("eq", "contains", "startswith", "endswith")


class Unsupported(Exception):
    """A rule uses something the matcher cannot evaluate; the message says what."""


@dataclass(frozen=True, slots=True)
class Test:
    """What to check on a field's value.

    kind: eq/contains/startswith/endswith (arg: str, lowered unless cased), any (field present),
    null (absent or empty), exists (arg: bool), cidr (arg: network), fn (arg: str -> bool),
    ref (arg: other field, how), or (arg: list[Test]).
    """

    kind: str
    arg: Any = None
    cased: bool = False


def _num(x: str) -> float | None:
    try:
        return int(x, 0)
    except ValueError:
        try:
            return float(x)
        except ValueError:
            return None


def _wildcard_regex(parts: list, cased: bool) -> Callable[[str], bool]:
    out = []
    for p in parts:
        if p is SpecialChars.WILDCARD_MULTI:
            out.append(".*")
        elif p is SpecialChars.WILDCARD_SINGLE:
            out.append(".")
        else:
            out.append(re.escape(p))
    pattern = ("(?s)" if cased else "(?si)") + "".join(out)
    compiled = POLICY.regex_engine.compile(pattern)
    return lambda x: compiled.fullmatch(x) is not None


def string_test(s: SigmaString) -> Test:
    if s.contains_placeholder():
        raise Unsupported(f"placeholder in {s.to_plain()!r} (|expand) has no value list here")
    cased = isinstance(s, SigmaCasedString)
    parts = list(s.s)
    multi = SpecialChars.WILDCARD_MULTI
    texts = [p for p in parts if isinstance(p, str)]
    if SpecialChars.WILDCARD_SINGLE not in parts and len(texts) <= 1:
        text = texts[0] if texts else ""
        text = text if cased else text.lower()
        shape = tuple(p if p is multi else "s" for p in parts)
        kind = {(): "eq", ("s",): "eq", (multi,): "any", (multi, "s", multi): "contains",
                ("s", multi): "startswith", (multi, "s"): "endswith"}.get(shape)
        if kind == "any":
            return Test("any")
        if kind is not None:
            return Test(kind, text, cased)
    return Test("fn", _wildcard_regex(parts, cased))


def _regex_test(r: SigmaRegularExpression) -> Test:
    prefix = "".join(c for f, c in ((SigmaRegularExpressionFlag.IGNORECASE, "i"),
                                    (SigmaRegularExpressionFlag.MULTILINE, "m"),
                                    (SigmaRegularExpressionFlag.DOTALL, "s")) if f in r.flags)
    pattern = str(r.regexp)
    try:
        compiled = POLICY.regex_engine.compile(f"(?{prefix}){pattern}" if prefix else pattern)
    except POLICY.regex_engine.error as exc:
        raise Unsupported(f"regular expression {pattern!r} rejected by RE2: {regex_error(exc)}") from None
    search = compiled.search
    seen: dict[str, bool] = {}  # field values repeat (accounts, hosts, images): RE2's Python wrapper costs ~2 us

    def test(x: str) -> bool:
        hit = seen.get(x)
        if hit is None:
            hit = search(x) is not None
            if len(seen) >= 4096:
                seen.clear()
            seen[x] = hit
        return hit

    return Test("fn", test)


def regex_error(exc: BaseException) -> str:
    msg = exc.args[0] if exc.args else str(exc)
    return msg.decode("utf-8", "replace") if isinstance(msg, bytes) else str(msg)


def parse_ip(x: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """An address as Windows logs it (`10.1.2.3`, `::ffff:10.1.2.3`, `[fe80::1]`), IPv4-mapped as IPv4."""
    try:
        ip = ipaddress.ip_address(x.strip().strip("[]"))
    except ValueError:
        return None
    if ip.version == 6 and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def in_networks(nets: list) -> Callable[[str], bool]:
    """One parse of the value, then each network of the right version."""
    v4 = tuple(n for n in nets if n.version == 4)
    v6 = tuple(n for n in nets if n.version == 6)

    seen: dict[str, bool] = {}  # a DC's log repeats its clients' addresses: parse each once

    def test(x: str) -> bool:
        hit = seen.get(x)
        if hit is None:
            ip = parse_ip(x)
            hit = ip is not None and any(ip in n for n in (v4 if ip.version == 4 else v6))
            if len(seen) >= 4096:
                seen.clear()
            seen[x] = hit
        return hit

    return test


_OPS: dict[CompareOperators, Callable[[float, float], bool]] = {
    CompareOperators.LT: lambda a, b: a < b, CompareOperators.LTE: lambda a, b: a <= b,
    CompareOperators.GT: lambda a, b: a > b, CompareOperators.GTE: lambda a, b: a >= b,
    CompareOperators.NEQ: lambda a, b: a != b,
}


def _compare_test(c: SigmaCompareExpression) -> Test:
    op, n = _OPS[c.op], c.number.number

    def compare(x: str) -> bool:
        v = _num(x)
        return v is not None and op(v, n)

    return Test("fn", compare)


def _number_test(n: SigmaNumber) -> Test:
    text, number = str(n.number), n.number

    def equal(x: str) -> bool:
        return x == text or _num(x) == number

    return Test("fn", equal)


def value_test(value: SigmaType) -> Test:
    """The test for one value of a detection item; Unsupported when there is no faithful one."""
    if isinstance(value, SigmaString):
        return string_test(value)
    if isinstance(value, SigmaTimestampPart):
        raise Unsupported("timestamp-part modifiers (|minute, |hour, ...) are not supported")
    if isinstance(value, SigmaNumber):
        return _number_test(value)
    if isinstance(value, SigmaRegularExpression):
        return _regex_test(value)
    if isinstance(value, SigmaCIDRExpression):
        return Test("cidr", value.network)
    if isinstance(value, SigmaCompareExpression):
        return _compare_test(value)
    if isinstance(value, SigmaBool):
        return Test("eq", "true" if value.boolean else "false")
    if isinstance(value, SigmaNull):
        return Test("null")
    if isinstance(value, SigmaExists):
        return Test("exists", bool(value.exists))
    if isinstance(value, SigmaFieldReference):
        how = "startswith" if value.starts_with else "endswith" if value.ends_with else "eq"
        return Test("ref", (value.field, how))
    if isinstance(value, SigmaExpansion):  # base64offset, windash: always OR-linked
        return Test("or", [value_test(v) for v in value.values])
    raise Unsupported(f"value type {type(value).__name__} ({value!r}) is not supported")
