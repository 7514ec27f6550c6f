"""OCSF and ECS on real detector output for every alert type: the synthetic domain's day with every
attack injected (33 types, the ones no public recording holds included) through the detectors, each
alert formatted as an OCSF Detection Finding and an ECS document and checked against the OCSF 1.8.0
schema and the ECS field reference (the corpus test covers the types the recordings raise)."""

from __future__ import annotations

import ecskit
import ocsfkit

from dcsentry.sinks.ecs import EcsFormatter
from dcsentry.sinks.ocsf import OcsfFormatter
from synthkit import _alerts_for, day_run


def test_every_type_the_detectors_raise_is_valid_ocsf_and_ecs() -> None:
    events, labels = day_run("all")
    alerts = _alerts_for(events, 11, 200)
    types = {a.type for a in alerts}
    assert {lb.type for lb in labels} <= types and len(types) >= 33
    ocsf, ecs = OcsfFormatter(), EcsFormatter()
    for a in alerts:
        assert ocsfkit.errors(ocsf.format(a)) == [], (a.type, a.key)
        doc = ecs.format(a)
        assert ecskit.errors(doc) == [], (a.type, a.key)
        assert doc["event"]["id"] == a.id
