"""The Sigma compiler and matcher on hand-made events: every modifier the Windows rules use, the
(channel, event id) index, alerts that grow, and rules that must be refused with a reason."""

from __future__ import annotations

import time

import pytest
from sigmakit import event, matcher, rule, titles

pytestmark = pytest.mark.timeout(60)


def fires(tmp_path, detection: str, ev, **kw: str) -> bool:
    m, rs = matcher(tmp_path, r=rule("probe", detection, **kw))
    assert not rs.problems, rs.problems
    return bool(m.feed(ev))


SVC = dict(channel="System", provider="Service Control Manager")


def svc(image: str, name: str = "svc", **more: str):
    return event(7045, {"ServiceName": name, "ImagePath": image, **more}, **SVC)


@pytest.mark.parametrize("detection, image, expected", [
    ("sel:\n    EventID: 7045\n    ImagePath: 'C:\\Tools\\PSEXESVC.exe'\ncondition: sel", "c:\\tools\\psexesvc.EXE", True),
    ("sel:\n    ImagePath: 'C:\\Tools\\PSEXESVC.exe'\ncondition: sel", "C:\\Tools\\PSEXESVC.exe x", False),
    ("sel:\n    ImagePath|contains: 'powershell'\ncondition: sel", "cmd /c POWERSHELL -nop", True),
    ("sel:\n    ImagePath|startswith: '%comspec%'\ncondition: sel", "%COMSPEC% /c echo", True),
    ("sel:\n    ImagePath|endswith:\n        - '.sys'\n        - '.dll'\ncondition: sel", "C:\\a\\b.DLL", True),
    ("sel:\n    ImagePath|endswith:\n        - '.sys'\n        - '.dll'\ncondition: sel", "C:\\a\\b.exe", False),
    ("sel:\n    ImagePath|contains|all:\n        - 'cmd'\n        - '/c'\n        - 'echo'\ncondition: sel",
     "cmd.exe /c echo x > \\\\.\\pipe\\p", True),
    ("sel:\n    ImagePath|contains|all:\n        - 'cmd'\n        - 'echo'\ncondition: sel", "cmd.exe /c dir", False),
    ("sel:\n    ImagePath: 'c:\\w*\\a?c.exe'\ncondition: sel", "C:\\Windows\\Temp\\ABC.exe", True),
    ("sel:\n    ImagePath: 'c:\\w*\\a?c.exe'\ncondition: sel", "C:\\Windows\\Temp\\ABBC.exe", False),
    ("sel:\n    ImagePath|cased: 'Evil.exe'\ncondition: sel", "evil.exe", False),
    ("sel:\n    ImagePath|cased: 'Evil.exe'\ncondition: sel", "Evil.exe", True),
    ("sel:\n    ImagePath|re: '^[a-z]:\\\\windows\\\\temp\\\\[a-z0-9]{10}\\.exe'\ncondition: sel",
     "c:\\windows\\temp\\ab12cd34ef.exe", True),
    ("sel:\n    ImagePath|re: '^[a-z]:\\\\windows'\ncondition: sel", "C:\\Windows\\x.exe", False),  # |re is cased
    ("sel:\n    ImagePath|re|i: '^[a-z]:\\\\windows'\ncondition: sel", "C:\\Windows\\x.exe", True),
    ("sel:\n    ImagePath|windash|contains: ' -enc '\ncondition: sel", "powershell /enc AAAA", True),
    ("sel:\n    ImagePath|base64offset|contains: 'IEX (New-Object'\ncondition: sel",
     "powershell -e SUVYIChOZXctT2JqZWN0IE5ldC5XZWJDbGllbnQp", True),
    ("sel:\n    ImagePath|contains: 'x'\nfilter:\n    ServiceName|startswith: 'Mp'\ncondition: sel and not filter",
     "x.sys", True),
    ("sel:\n    AccountName|exists: true\ncondition: sel", "a", False),
    ("sel:\n    AccountName|exists: false\ncondition: sel", "a", True),
    ("sel:\n    AccountName: null\ncondition: sel", "a", True),
    ("sel:\n    ImagePath|fieldref: ServiceName\ncondition: sel", "SVC", True),
    ("sel:\n    - 'pipe\\\\'\n    - 'meterpreter'\ncondition: sel", "cmd /c echo > \\\\.\\pipe\\abc", True),
    ("sel_a:\n    ServiceName: 'svc'\nsel_b:\n    ImagePath|contains: 'nope'\ncondition: 1 of sel_*", "a", True),
    ("sel_a:\n    ServiceName: 'svc'\nsel_b:\n    ImagePath|contains: 'nope'\ncondition: all of sel_*", "a", False),
])
def test_modifiers(tmp_path, detection: str, image: str, expected: bool) -> None:
    assert fires(tmp_path, detection, svc(image), service="system") is expected


def test_numbers_cidr_and_keywords(tmp_path) -> None:
    logon = event(4625, {"LogonType": "3", "IpAddress": "::ffff:10.1.2.3", "KeyLength": "0x80", "Status": "0xc000006d"})
    assert fires(tmp_path / "a", "sel:\n    EventID: 4625\n    LogonType: 3\ncondition: sel", logon)
    assert fires(tmp_path / "b", "sel:\n    KeyLength|gte: 128\ncondition: sel", logon)
    assert not fires(tmp_path / "c", "sel:\n    KeyLength|lt: 64\ncondition: sel", logon)
    assert fires(tmp_path / "d", "sel:\n    IpAddress|cidr: 10.1.0.0/16\ncondition: sel", logon)
    assert not fires(tmp_path / "e", "sel:\n    IpAddress|cidr: 10.2.0.0/16\ncondition: sel", logon)
    assert fires(tmp_path / "f", "sel:\n    Keywords|contains: 'x'\ncondition: not sel", logon)
    assert fires(tmp_path / "g", "sel:\n    Channel: security\n    Computer|startswith: DC01\ncondition: sel", logon)


def test_index_keeps_rules_from_events_they_cannot_match(tmp_path) -> None:
    m, rs = matcher(tmp_path, a=rule("svc rule", "sel:\n    EventID: 7045\n    ImagePath|contains: x\ncondition: sel",
                                     service="system"),
                    b=rule("logon rule", "sel:\n    EventID:\n        - 4625\n        - 4771\ncondition: sel"),
                    c=rule("any security", "sel:\n    Keywords: '0x8010000000000000'\ncondition: sel"))
    assert not rs.problems
    by = {r.meta.title: r for r in rs.rules}
    assert by["svc rule"].event_ids == {7045} and by["svc rule"].channels == {"system"}
    assert by["logon rule"].event_ids == {4625, 4771} and by["any security"].event_ids is None
    assert [r.meta.title for r in m.candidates(event(4625, {}))] == ["logon rule", "any security"]
    assert [r.meta.title for r in m.candidates(event(7045, {}, **SVC))] == ["svc rule"]
    assert [r.meta.title for r in m.candidates(event(7045, {}))] == ["any security"]
    assert m.candidates(event(4625, {}, channel="System")) == []


def test_matches_grow_one_alert_per_host_and_incident(tmp_path) -> None:
    m, _ = matcher(tmp_path, r=rule("psexec", "sel:\n    EventID: 7045\n    ServiceName: PSEXESVC\ncondition: sel",
                                    service="system", extra="tags:\n    - attack.execution\n    - attack.t1569.002\n"))
    first = m.feed(event(7045, {"ServiceName": "PSEXESVC", "AccountName": "LocalSystem"}, 0, **SVC))
    again = m.feed(event(7045, {"ServiceName": "psexesvc"}, 600, **SVC))
    other = m.feed(event(7045, {"ServiceName": "PSEXESVC"}, 700, computer="SRV9", **SVC))
    later = m.feed(event(7045, {"ServiceName": "PSEXESVC"}, 600 + 3601, **SVC))
    a = first[0]
    assert again[0] is a and a.count == 2 and a.revision == 1 and len(a.evidence) == 2
    assert a.type.startswith("sigma:") and a.title == "psexec" and a.severity == "high" and a.technique == "T1569.002"
    assert a.hosts == ["DC01.contoso.local"] and a.accounts == ["LocalSystem"]
    assert a.details["sigma"]["level"] == "high" and a.details["fields"]["ServiceName"] == "PSEXESVC"
    assert other[0] is not a and later[0] is not a and later[0].id != a.id
    assert "matched 2 events on DC01.contoso.local" in m.describe(a)


def test_rules_that_cannot_load_are_reported_with_their_reason(tmp_path) -> None:
    ok = rule("fine", "sel:\n    EventID: 4625\ncondition: sel")
    m, rs = matcher(
        tmp_path, fine=ok,
        broken_yaml="title: x\ndetection: [unclosed\n",
        not_a_rule="- just\n- a list\n",
        unknown_modifier=rule("bad modifier", "sel:\n    ImagePath|sometimes: x\ncondition: sel"),
        backreference=rule("backref", "sel:\n    ImagePath|re: '(a+)\\1'\ncondition: sel"),
        lookahead=rule("lookahead", "sel:\n    ImagePath|re: 'a(?=b)'\ncondition: sel"),
        category=rule("proc", "sel:\n    Image|endswith: x\ncondition: sel").replace("service: security",
                                                                                   "category: process_creation"),
        linux=rule("linux", "sel:\n    x: y\ncondition: sel").replace("product: windows", "product: linux"),
        unknown_service=rule("svc?", "sel:\n    x: y\ncondition: sel", service="nosuchlog"),
        no_selection=rule("undefined", "sel:\n    x: y\ncondition: sel and other"),
        pipe=rule("old count", "sel:\n    EventID: 4625\ncondition: sel | count() by IpAddress > 5"),
        expand=rule("placeholder", "sel:\n    ImagePath|expand: '%admins%'\ncondition: sel"),
    )
    reasons = {p.title.split(" (")[0] or p.path.rsplit("/", 1)[-1]: p.reason for p in rs.problems}
    assert [r.meta.title for r in rs.rules] == ["fine"] and rs.loaded == 1 and rs.total == 1 + len(reasons)
    assert "not valid YAML" in reasons["broken_yaml.yml"]
    assert "not a Sigma rule" in reasons["not_a_rule.yml"]
    assert "Unknown modifier 'sometimes'" in reasons["bad modifier"]
    assert "invalid" in reasons["backref"] and "invalid" in reasons["lookahead"]
    assert "process_creation" in reasons["proc"] and "linux" in reasons["linux"] and "nosuchlog" in reasons["svc?"]
    assert "other" in reasons["undefined"] and "pipe syntax" in reasons["old count"]
    assert "placeholder" in reasons["placeholder"]
    assert rs.summary().startswith(f"1 of {rs.total} Sigma rules loaded")
    assert all(line.startswith("sigma: ") for line in rs.report())
    assert m.feed(event(4625, {}))


def test_a_regex_that_would_backtrack_runs_in_linear_time(tmp_path) -> None:
    """`(a+)+$` takes exponential time in Python's re on 'aaaa...b'; RE2 answers at once."""
    m, rs = matcher(tmp_path, r=rule("redos", "sel:\n    ImagePath|re: '^(a+)+$'\ncondition: sel", service="system"))
    assert not rs.problems
    started = time.monotonic()
    for n in (30, 5000, 200_000):
        assert m.feed(svc("a" * n + "b")) == []
    assert m.feed(svc("a" * 50))
    assert time.monotonic() - started < 2.0


def test_yaml_alias_bomb_and_huge_file_are_refused_quickly(tmp_path) -> None:
    lol = "a: &a ['x','x','x','x','x','x','x','x','x']\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [{','.join(['*' + chr(97 + i)] * 9)}]\n" for i in range(8))
    bomb = "title: bomb\nlogsource: {product: windows, service: security}\n" + lol + \
        "detection:\n  sel:\n    ImagePath: *i\n  condition: sel\n"
    started = time.monotonic()
    _, rs = matcher(tmp_path, bomb=bomb, huge="title: big\n" + "# padding\n" * 200_000)
    assert time.monotonic() - started < 10
    assert rs.loaded == 0 and len(rs.problems) == 2
    assert any("larger than" in p.reason for p in rs.problems)
    assert any("billion laughs" in p.reason for p in rs.problems)


def test_a_missing_rule_path_is_an_error_not_zero_rules(tmp_path) -> None:
    from dcsentry.detectors.sigma import SigmaPathError, load_rules

    with pytest.raises(SigmaPathError, match="no such file"):
        load_rules([str(tmp_path / "nope")])


def test_titles_helper_and_keywords_only_rule(tmp_path) -> None:
    m, rs = matcher(tmp_path, r=rule("kw", "keywords:\n    - 'mimikatz'\ncondition: keywords", service="system"))
    assert not rs.problems and rs.rules[0].event_ids is None
    assert titles(m.feed(svc("C:\\temp\\MimiKatz.exe"))) == {"kw"}


def test_sigma_filters_from_another_file_apply(tmp_path) -> None:
    """Sigma v2 filters (meta rules) narrow a rule without editing it, e.g. Defender's MpKsl drivers."""
    m, rs = matcher(tmp_path, r=rule("any driver", "sel:\n    EventID: 7045\n    ImagePath|endswith: '.sys'\ncondition: sel",
                                     service="system", extra="name: any_driver\n"),
                    f=("title: not Defender\nlogsource:\n    product: windows\n    service: system\nfilter:\n"
                       "    rules:\n        - any_driver\n    selection:\n        ServiceName|startswith: MpKsl\n"
                       "    condition: not selection\n"))
    assert not rs.problems and rs.loaded == 1
    assert m.feed(svc("C:\\x\\evil.sys", name="evil")) and not m.feed(svc("C:\\x\\MpKsl1.sys", name="MpKslab12"))


def test_contradictory_event_ids_never_match(tmp_path) -> None:
    m, rs = matcher(tmp_path, r=rule("never", "a:\n    EventID: 4624\nb:\n    EventID: 4625\ncondition: a and b"))
    assert not rs.problems and rs.rules[0].event_ids == frozenset()
    assert m.candidates(event(4625, {})) == [] and m.feed(event(4624, {})) == []
