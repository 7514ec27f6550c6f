"""Sigma correlation rules on the stream: a brute force and a password spray written in Sigma
(tests/data/sigma) raise the same incidents on the real corpus as the built-in detectors, and
temporal / temporal_ordered, generate, bounded state and refused types behave as documented."""

from __future__ import annotations

import textwrap

import pytest
from conftest import CORPUS, jsonl_objects, run_cli
from sigmakit import DATA, event, matcher, rule

from dcsentry.detectors.base import Lru
from dcsentry.detectors.sigma.correlation import MAX_WINDOW

pytestmark = pytest.mark.timeout(180)

BRUTE = "sigma:0b7c6a39-7a43-4f0b-8f61-6a4b2b1e0f15"
SPRAY = "sigma:7c2e3f0a-51d6-4c1e-b0a4-3d9c2f5e7a03"


def _source(a: dict) -> str:
    src = a["details"]["group"]["source"] if a["type"].startswith("sigma:") else a["details"]["source"]
    return src.removeprefix("::ffff:")  # the built-ins store IPv4-mapped addresses plain


def incidents(alerts: list[dict], type_: str) -> list[tuple]:
    return sorted((_source(a), frozenset(x.lower() for x in a["entities"]["accounts"]), a["count"], a["start"],
                   a["end"], len(a["evidence"])) for a in alerts if a["type"] == type_)


@pytest.mark.integration
def test_sigma_brute_force_and_spray_match_the_builtin_incidents_on_the_corpus() -> None:
    r = run_cli("hunt", "--jsonl", "--sigma", str(DATA), str(CORPUS / "evtx"), str(CORPUS / "json"), timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert b"sigma: 5 of 5 Sigma rules loaded (2 correlations)" in r.stderr
    alerts = jsonl_objects(r.stdout)
    brute, spray = incidents(alerts, "brute-force"), incidents(alerts, "password-spray")
    assert len(brute) == 1 and len(spray) == 2  # the SMB guessing; Kerbrute's 4771s and PurpleSharp's 4776s
    assert incidents(alerts, BRUTE) == brute
    assert incidents(alerts, SPRAY) == spray
    base = {a["type"] for a in alerts if a["type"].startswith("sigma:")}
    assert base == {BRUTE, SPRAY}  # generate: false keeps the per-attempt base rules silent
    smb = next(a for a in alerts if a["type"] == BRUTE)
    assert smb["details"]["group"] == {"source": "192.168.198.149", "TargetUserName": "Administrator"}
    assert smb["technique"] == "T1110.001" and "3558 matching events" in smb["description"]


@pytest.mark.integration
def test_the_smb_brute_force_is_no_spray_in_sigma_either() -> None:
    r = run_cli("hunt", "--jsonl", "--sigma", str(DATA), str(CORPUS / "evtx/deepbluecli/smb-password-guessing-security.evtx"))
    types = [a["type"] for a in jsonl_objects(r.stdout)]
    assert types.count(BRUTE) == 1 and SPRAY not in types and "password-spray" not in types


def _corr(title: str, body: str) -> str:
    return f"title: {title}\nname: {title.replace(' ', '_')}\nstatus: test\ncorrelation:\n" + textwrap.indent(
        textwrap.dedent(body).strip("\n"), "    ") + "\nlevel: high\n"


USER_CREATED = rule("user created", "sel:\n    EventID: 4720\ncondition: sel", extra="name: user_created\n")
ADDED_TO_ADMINS = rule("added to admins", "sel:\n    EventID: 4732\n    TargetSid: S-1-5-32-544\ncondition: sel",
                       extra="name: added_to_admins\n")
ALIASES = """
aliases:
    user:
        user_created: TargetSid
        added_to_admins: MemberSid
group-by:
    - user
timespan: 10m
"""


def _created(t: float, sid: str):
    return event(4720, {"TargetSid": sid, "TargetUserName": "eve"}, t)


def _added(t: float, sid: str):
    return event(4732, {"MemberSid": sid, "TargetSid": "S-1-5-32-544", "TargetUserName": "Administrators"}, t)


def test_temporal_ordered_needs_the_order_and_the_timespan(tmp_path) -> None:
    m, rs = matcher(tmp_path, a=USER_CREATED, b=ADDED_TO_ADMINS, c=_corr(
        "new user made admin", "type: temporal_ordered\nrules:\n    - user_created\n    - added_to_admins\n" + ALIASES))
    assert not rs.problems and len(rs.correlations) == 1
    assert m.feed(_created(0, "S-1-5-21-1-1001")) == []
    hit = m.feed(_added(120, "S-1-5-21-1-1001"))
    assert [a.title for a in hit] == ["new user made admin"]
    assert hit[0].details["group"] == {"user": "S-1-5-21-1-1001"} and hit[0].count == 2
    assert m.feed(_added(0, "S-1-5-21-1-1002")) == [] and m.feed(_created(60, "S-1-5-21-1-1002")) == []  # wrong order
    assert m.feed(_created(1000, "S-1-5-21-1-1003")) == [] and m.feed(_added(1000 + 601, "S-1-5-21-1-1003")) == []


def test_temporal_any_order_and_generate_true(tmp_path) -> None:
    m, rs = matcher(tmp_path, a=USER_CREATED, b=ADDED_TO_ADMINS, c=_corr(
        "both within 10m", "type: temporal\ngenerate: true\nrules:\n    - user_created\n    - added_to_admins\n" + ALIASES))
    assert not rs.problems
    first = m.feed(_added(0, "S-1-5-21-1-2001"))
    assert [a.title for a in first] == ["added to admins"]  # generate: true keeps the base rule's own alert
    both = m.feed(_created(30, "S-1-5-21-1-2001"))
    assert sorted(a.title for a in both) == ["both within 10m", "user created"]


def test_extended_temporal_condition(tmp_path) -> None:
    m, rs = matcher(tmp_path, a=USER_CREATED, b=ADDED_TO_ADMINS, c=_corr(
        "added without creation", "type: temporal\nrules:\n    - user_created\n    - added_to_admins\n"
        "condition: added_to_admins and not user_created\n" + ALIASES))
    assert not rs.problems, rs.problems
    assert [a.title for a in m.feed(_added(0, "S-1-5-21-1-3001"))] == ["added without creation"]
    m.feed(_created(0, "S-1-5-21-1-3002"))
    assert m.feed(_added(10, "S-1-5-21-1-3002")) == []


def test_correlation_state_is_bounded(tmp_path) -> None:
    m, rs = matcher(tmp_path, a=USER_CREATED, c=_corr(
        "many creations", "type: event_count\nrules:\n    - user_created\ngroup-by:\n    - TargetUserName\n"
        "timespan: 1d\ncondition:\n    gte: 1000000\n"))
    corr = rs.correlations[0]
    m._state[id(corr)] = groups = Lru(50)  # the real cap is MAX_KEYS; a small one shows the same eviction
    for i in range(300):
        m.feed(event(4720, {"TargetUserName": f"user{i}"}, i))
    assert len(groups) == 50
    for i in range(MAX_WINDOW + 500):
        m.feed(event(4720, {"TargetUserName": "same"}, 1000 + i * 0.001))
    assert len(groups[("same",)].window) == MAX_WINDOW


def test_value_count_grows_with_new_values_after_it_fired(tmp_path) -> None:
    m, rs = matcher(tmp_path, **{f: (DATA / f"{f}.yml").read_text() for f in ("wrong_password", "password_spray")})
    assert not rs.problems and rs.loaded == 4
    from eventfactory import ntlm_4776

    out = [a for i in range(7) for a in m.feed(ntlm_4776(i, f"user{i}", "KALI", "0xc000006a"))]
    a = out[-1]
    assert len(out) == 3 and out[0] is a and a.count == 7 and a.revision == 2
    assert a.accounts == [f"user{i}" for i in range(7)] and a.details["distinct_values"] == 7
    assert a.hosts == ["KALI"] and a.details["group"] == {"source": "KALI"}


@pytest.mark.parametrize("body, reason", [
    ("type: event_count\nrules:\n    - user_created\ntimespan: 1h\ncondition:\n    lt: 3\n", "needs windows that close"),
    ("type: value_sum\nrules:\n    - user_created\ntimespan: 1h\ncondition:\n    gte: 3\n    field: x\n",
     "value_sum is not supported"),
    ("type: event_count\nrules:\n    - no_such_rule\ntimespan: 1h\ncondition:\n    gte: 3\n", "no_such_rule"),
    ("type: event_count\nrules:\n    - inner\ntimespan: 1h\ncondition:\n    gte: 3\n", "another correlation"),
    ("type: value_count\nrules:\n    - user_created\ntimespan: 1h\ncondition:\n    gte: 3\n", "field reference"),
    ("type: temporal\nrules:\n    - user_created\n    - added_to_admins\naliases:\n    user:\n        user_created: x\n"
     "group-by:\n    - user\ntimespan: 1h\n", "alias 'user' has no field"),
])
def test_unsupported_correlations_are_reported(tmp_path, body: str, reason: str) -> None:
    inner = _corr("inner", "type: event_count\nrules:\n    - user_created\ntimespan: 1h\ncondition:\n    gte: 2\n")
    _, rs = matcher(tmp_path, a=USER_CREATED, b=ADDED_TO_ADMINS, i=inner, c=_corr("probe", body))
    problems = [p for p in rs.problems if p.title.startswith("probe")]
    assert len(problems) == 1 and reason in problems[0].reason, rs.problems
    assert {r.meta.title for r in rs.rules} == {"user created", "added to admins"}
