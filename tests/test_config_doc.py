"""docs/configuration.md's example is a real configuration: it loads with the settings parser that
refuses unknown keys, so a renamed or removed setting cannot stay documented."""

from __future__ import annotations

import re
import tomllib
from dataclasses import fields, is_dataclass
from pathlib import Path
from typing import Any

from dcsentry.cli.settings import ENV
from dcsentry.config import Config, _apply

DOC = Path(__file__).resolve().parent.parent / "docs" / "configuration.md"


def test_documented_example_loads() -> None:
    block = DOC.read_text(encoding="utf-8").split("```toml", 1)[1].split("```", 1)[0]
    cfg = Config()
    _apply(cfg, tomllib.loads(block), str(DOC))
    assert cfg.serve.senders == [] and cfg.detection.kerberos.roast_services >= 1


def _keys(obj: Any, prefix: str = "") -> list[str]:
    out = []
    for f in fields(obj):
        value = getattr(obj, f.name)
        out += _keys(value, f"{prefix}{f.name}.") if is_dataclass(value) else [prefix + f.name]
    return out


def test_every_setting_is_documented() -> None:
    """In the example, or ([wef], the rest of [bus]) on the page it points to."""
    doc = DOC.read_text(encoding="utf-8")
    documented = set(_keys_of(tomllib.loads(doc.split("```toml", 1)[1].split("```", 1)[0])))
    elsewhere = {"wef": DOC.with_name("wef.md"), "bus": DOC.with_name("scaling.md")}
    missing = []
    for key in _keys(Config()):
        section, _, name = key.partition(".")
        page = elsewhere.get(section)
        if key in documented or key == "health.missing_scale":  # a test knob
            continue
        said = rf"`{name}`|^\s*{name} = |\[\[{section}\.{name}\]\]"  # `key`, in a TOML block, [[table]]
        if page is None or not re.search(said, page.read_text(encoding="utf-8"), re.MULTILINE):
            missing.append(key)
    assert not missing


def _keys_of(table: dict, prefix: str = "") -> list[str]:
    out = []
    for k, v in table.items():
        out += _keys_of(v, f"{prefix}{k}.") if isinstance(v, dict) else [prefix + k]
    return out


def test_environment_variables_are_the_documented_ones() -> None:
    doc = DOC.read_text(encoding="utf-8").split("Environment variables:", 1)[1].split("\n\n", 1)[0]
    assert set(re.findall(r"DCSENTRY_[A-Z_]+", doc)) == set(ENV)
