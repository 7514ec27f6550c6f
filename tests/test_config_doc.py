"""docs/configuration.md's example is a real configuration: it loads with the settings parser that
refuses unknown keys, so a renamed or removed setting cannot stay documented."""

from __future__ import annotations

import tomllib
from pathlib import Path

from dcsentry.config import Config, _apply

DOC = Path(__file__).resolve().parent.parent / "docs" / "configuration.md"


def test_documented_example_loads() -> None:
    block = DOC.read_text(encoding="utf-8").split("```toml", 1)[1].split("```", 1)[0]
    cfg = Config()
    _apply(cfg, tomllib.loads(block), str(DOC))
    assert cfg.serve.senders == [] and cfg.detection.kerberos.roast_services >= 1
