"""Checks a document against the ECS field reference (../shared/ecs/ecs_flat.yml, ECS 9.4.0).

Every leaf must be an ECS field (or a key under an ECS ``object`` field such as ``labels``), of that
field's type (arrays only where ECS normalizes the field to one), and within its allowed values.
"""

from __future__ import annotations

import functools
import ipaddress
from datetime import datetime
from pathlib import Path

import yaml

ECS_FLAT = Path(__file__).resolve().parents[2] / "shared" / "ecs" / "ecs_flat.yml"
_TEXT = {"keyword", "constant_keyword", "wildcard", "match_only_text", "text"}


@functools.lru_cache(maxsize=1)
def fields() -> dict[str, dict]:
    return yaml.load(ECS_FLAT.read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))


def _flatten(doc: dict, prefix: str = "") -> dict[str, object]:
    out: dict[str, object] = {}
    for k, v in doc.items():
        path = f"{prefix}{k}"
        if isinstance(v, dict) and not (path in fields() and fields()[path]["type"] in ("object", "flattened")):
            out.update(_flatten(v, path + "."))
        else:
            out[path] = v
    return out


def _type_ok(kind: str, v: object) -> bool:
    if kind in _TEXT:
        return isinstance(v, str)
    if kind in ("long", "integer", "short", "byte", "unsigned_long"):
        return isinstance(v, int) and not isinstance(v, bool)
    if kind in ("float", "scaled_float", "double", "half_float"):
        return isinstance(v, (int, float)) and not isinstance(v, bool)
    if kind == "boolean":
        return isinstance(v, bool)
    if kind == "date":
        if not isinstance(v, str):
            return False
        try:
            return datetime.fromisoformat(v.replace("Z", "+00:00")).tzinfo is not None
        except ValueError:
            return False
    if kind == "ip":
        try:
            ipaddress.ip_address(str(v))
            return isinstance(v, str)
        except ValueError:
            return False
    raise AssertionError(f"a type this checker does not know: {kind}")


def _pairs(doc: dict) -> list[str]:
    """event.type values must be among those ECS expects with each event.category."""
    event = doc.get("event", {})
    expected = {a["name"]: set(a.get("expected_event_types", [])) for a in fields()["event.category"]["allowed_values"]}
    return [f"event.type {t!r} is not expected with event.category {c!r}"
            for c in event.get("category", []) for t in event.get("type", []) if t not in expected.get(c, {t})]


def errors(doc: dict) -> list[str]:
    """Every way `doc` breaks the ECS reference ([] when it conforms)."""
    errs: list[str] = _pairs(doc)
    for path, value in _flatten(doc).items():
        f = fields().get(path)
        if f is None:
            errs.append(f"{path}: not an ECS field")
            continue
        if f["type"] in ("object", "flattened"):
            inner = f.get("object_type", "keyword")
            if not isinstance(value, dict) or not all(_type_ok(inner, v) for v in value.values()):
                errs.append(f"{path}: must be an object of {inner} values")
            continue
        values = value if isinstance(value, list) else [value]
        if isinstance(value, list) and "array" not in f.get("normalize", []):
            errs.append(f"{path}: ECS does not make this field an array")
        allowed = {a["name"] for a in f.get("allowed_values", [])}
        for v in values:
            if not _type_ok(f["type"], v):
                errs.append(f"{path}: {v!r} is not of ECS type {f['type']}")
            elif allowed and v not in allowed:
                errs.append(f"{path}: {v!r} not one of the allowed values")
    return errs
