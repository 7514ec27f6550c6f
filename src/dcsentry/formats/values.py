"""Turning the values each format carries into the strings the XML rendering shows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any


def as_text(v: Any) -> str:
    """EventData values are strings in XML; JSON renderers give numbers, booleans and nulls."""
    t = type(v)
    if t is str:
        return v
    if v is None:
        return ""
    if t is bool:
        return "true" if v else "false"
    if t is list:
        return ", ".join(as_text(x) for x in v)
    if t is dict:
        if "#text" in v:
            return as_text(v["#text"])
        return ""
    return str(v)


def flatten_user_data(node: Any, prefix: str, out: dict[str, str]) -> None:
    """UserData has one wrapper element with child elements; flatten them to `Name` or `A.B`."""
    if not isinstance(node, dict):
        if prefix:
            out[prefix] = as_text(node)
        return
    for k, v in node.items():
        if k == "#attributes":
            if prefix and isinstance(v, dict):
                for ak, av in v.items():
                    if not ak.startswith("xmlns"):
                        out[f"{prefix}.{ak}"] = as_text(av)
            continue
        if k == "#text":
            if prefix:
                out[prefix] = as_text(v)
            continue
        flatten_user_data(v, f"{prefix}.{k}" if prefix else k, out)


def parse_time(s: str) -> datetime | None:
    """ISO 8601 (any fraction length, `Z` or offset) to aware UTC; None when unreadable."""
    if not s:
        return None
    if s[-1] == "Z":  # the usual SystemTime shape: already UTC
        try:
            return datetime.fromisoformat(s)
        except ValueError:
            pass
    s = s.strip()
    if s.endswith(" UTC"):
        s = s[:-4]
    try:
        t = datetime.fromisoformat(s)
    except ValueError:
        return None
    if t.tzinfo is None:
        return t.replace(tzinfo=UTC)
    if t.utcoffset() != timedelta(0):
        try:
            return t.astimezone(UTC)
        except OverflowError:  # an offset pushing year 1 or 9999 out of range: unreadable, not fatal
            return None
    return t


def as_int(v: Any) -> int | None:
    if v is None or v == "":
        return None
    if type(v) is int:
        return v
    try:
        return int(str(v), 0)
    except ValueError:
        try:
            return int(str(v))
        except ValueError:
            return None
