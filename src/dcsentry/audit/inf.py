"""Security templates: a GPO's `GptTmpl.inf` and `secedit /export /cfg x.inf` (audit-policy.md 5-6).

UTF-16LE with BOM as Windows writes them (plain ASCII seen too), `;` comments, sections in any
order. Two sections matter:

- `[Event Audit]`: the nine legacy categories, `AuditAccountLogon = 3` (0 none, 1 success,
  2 failure, 3 both). Advanced subcategories never appear in an INF.
- `[Registry Values]`: `MACHINE\\<key>\\<value>=<type>,<data>` (type 4 = REG_DWORD): the NTLM audit
  options and SCENoApplyLegacyAuditPolicy. Key names are compared case-insensitively (some
  templates are all lower case). A template with this section states every registry option it
  sets, so a missing option is "not set by this template".
"""

from __future__ import annotations

import re

from .facts import POLICY, Export, ExportError, Setting, lines, parse_int
from .requirements import LEGACY_CATEGORIES, REGISTRY_VALUES

_SECTION = re.compile(r"^\[([^\]]+)\]$")


def looks_like_inf(text: str) -> bool:
    for ln in lines(text):
        s = ln.strip()
        if not s or s.startswith(";"):
            continue
        return bool(_SECTION.match(s))
    return False


def registry_target(raw_key: str) -> tuple[str, str] | None:
    """`MACHINE\\System\\...\\MSV1_0\\AuditReceivingNTLMTraffic` -> ('auditreceivingntlmtraffic', key) when
    it is one of the values dcsentry checks, at its documented key."""
    lower = raw_key.strip().strip('"').lower()
    for prefix in ("machine\\", "hkey_local_machine\\", "hklm\\"):
        if lower.startswith(prefix):
            lower = lower[len(prefix):]
            break
    key, _, name = lower.rpartition("\\")
    value = REGISTRY_VALUES.get(name)
    if value is None or key != value.key.lower():
        return None
    return name, key


def read_inf(text: str, path: str) -> Export:
    exp = Export(path, "inf")
    section = None
    seen_sections = set()
    for no, ln in enumerate(lines(text), 1):
        s = ln.strip()
        if not s or s.startswith(";"):
            continue
        m = _SECTION.match(s)
        if m:
            section = m.group(1).strip().lower()
            seen_sections.add(section)
            if section == "registry values":
                exp.registry_scope.add("*")
            continue
        if section is None:
            raise ExportError(path, no, "text before the first [section]: not a security template")
        if section == "event audit":
            key, eq, value = s.partition("=")
            if not eq:
                raise ExportError(path, no, f"expected `AuditXxx = 0-3` in [Event Audit], got {s!r}")
            name = key.strip().lower()
            if name not in LEGACY_CATEGORIES:
                exp.notes.append(f"{path}:{no}: unknown legacy audit category {key.strip()!r} ignored")
                continue
            try:
                bits = parse_int(value)
            except ValueError:
                raise ExportError(path, no, f"{key.strip()} = {value.strip()!r}: not a number") from None
            if bits not in (0, 1, 2, 3):
                raise ExportError(path, no, f"{key.strip()} = {bits}: legacy audit values are 0-3")
            exp.add(exp.legacy, name, Setting(bits, f"{path}:{no}", POLICY))
        elif section == "registry values":
            key, eq, rest = s.partition("=")
            rtype, comma, data = rest.partition(",")
            if not eq or not comma or not rtype.strip().isdigit():
                raise ExportError(path, no, f"expected `MACHINE\\key\\value=type,data` in [Registry Values], got {s!r}")
            target = registry_target(key)
            if target is None:
                continue
            name, _ = target
            try:
                number = parse_int(data)
            except ValueError:
                raise ExportError(path, no, f"{key.strip()}: data {data.strip()!r} is not a number") from None
            exp.add(exp.registry, name, Setting(number, f"{path}:{no}", POLICY))
    if not seen_sections:
        raise ExportError(path, None, "no [section] at all: not a security template")
    return exp
