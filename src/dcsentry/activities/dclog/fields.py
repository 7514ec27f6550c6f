"""Field helpers for the DC-log readers: the parsing rules of reference/dc-log-alerts.md section 0."""

from __future__ import annotations

import re

_WS = re.compile(r"[\s]+")


def ip(addr: str | None) -> str:
    """`::ffff:10.0.0.5` -> `10.0.0.5`; `::1`/`127.0.0.1` -> `localhost`; `-`/empty -> ``."""
    a = (addr or "").strip()
    if a in ("-", ""):
        return ""
    if a in ("::1", "127.0.0.1"):
        return "localhost"
    return a.removeprefix("::ffff:")


def host(name: str | None) -> str:
    """Workstation names as NetBIOS keys: no backslashes, upper case, `-` as empty."""
    n = (name or "").strip().lstrip("\\")
    return "" if n in ("-", "NULL", "") else n.upper()


def short(computer: str) -> str:
    return (computer or "").split(".", 1)[0].upper()


def sid(value: str | None) -> str:
    v = (value or "").strip().upper()
    return "" if v in ("-", "S-1-0-0", "") else v


def number(value: str | None) -> int | None:
    """Hex (`0x17`) or decimal text; None for `-`, empty or garbage."""
    v = (value or "").strip()
    if not v or v == "-":
        return None
    try:
        return int(v, 0) if v.lower().startswith("0x") else int(v)
    except ValueError:
        return None


def items(value: str | None) -> list[str]:
    """Multi-item fields (Properties, ServicePrincipalNames, UserAccountControl, Attributes) are
    CR/LF/TAB separated; some exports flatten them to spaces: split on any whitespace."""
    v = (value or "").strip()
    return [x for x in _WS.split(v) if x and x != "-"] if v else []


def lines(value: str | None) -> list[str]:
    """Line-separated fields whose items may contain spaces (Attributes, SubjectAlternativeName)."""
    return [x.strip() for x in re.split(r"[\r\n]+", value or "") if x.strip() and x.strip() != "-"]


def guid(value: str | None) -> str:
    """GUIDs compare case-insensitively, without braces or the `%` of `%{...}`."""
    return (value or "").strip().lstrip("%").strip("{}").lower()


def is_machine(account: str) -> bool:
    return account.split("@")[0].rstrip().endswith("$")
