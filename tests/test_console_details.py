"""Alert details as people read them: the alert page's template (the real Jinja environment of the
console) draws every shape the detectors put in `details` (lists of objects, objects in objects,
maps, attempts per account) as tables and lists, never as a Python repr. The browser test
(test_console_pictures_e2e.py) shows the same on alerts raised from the corpus."""

from __future__ import annotations

import re

from dcsentry.web.details import render_details
from dcsentry.web.pages import env

REPR = re.compile(r"\[\{'|\{'[A-Za-z_]+': |\['[^\]]*'\]|\{&#39;|\[&#39;")
DETAILS = {
    "source": "10.0.0.9",
    "scope": "source",
    "per_account": {"alice": 3, "bob": 40, "carol": 1},
    "written": ["added: Allow full control (GenericAll) to S-1-5-21-1-1234", "versionNumber 1 -> 2"],
    "old": ["O:DAG:DA"], "new": ["O:DAG:DAD:(A;;GA;;;S-1-5-21-1-1234)"],
    "services": {"svc-sql": "RC4-HMAC", "svc-web": "AES256"},
    "session": {"source_ip": "10.23.123.11", "logon_type": 3, "remote": True},
    "tries": [{"account": "alice", "result": "wrong-password", "when": {"first": "a", "last": "b"}},
              {"account": "bob", "status": "0xc000006a"}],
    "removed": {"Logon": ["success", "failure"], "Account Lockout": ["success"]},
    "trustees": [f"S-1-5-21-1-{i}" for i in range(8)],
    "empty": [],
}


def page(details: dict) -> str:
    """The Details section of alert.html, rendered as the console does."""
    macro = env.get_template("_details.html").module.details  # type: ignore[attr-defined]
    return str(macro(render_details(details)))


def test_nested_details_render_as_tables_never_a_repr() -> None:
    html = page(DETAILS)
    assert not REPR.search(html), REPR.search(html)
    # attempts per account, most first, each linked to the account's page
    rows = re.findall(r'<tr data-name="([^"]+)" data-count="(\d+)">', html)
    assert rows == [("bob", "40"), ("alice", "3"), ("carol", "1")]
    assert 'href="/entities/account/bob"' in html
    # what changed: the verb in a column of its own, before and after side by side
    assert re.search(r'<td class="verb">added</td><td>Allow full control \(GenericAll\)', html)
    assert re.search(r"<th>Before</th><th>After</th>.*O:DAG:DA</code></td><td><code class=\"wrap\">O:DAG:DAD:", html,
                     re.DOTALL)
    # a list of objects: one column per key met in any of them, nested objects as inner tables
    table = re.search(r'<table class="nested">(.*?)</thead>', html, re.DOTALL)
    assert table and re.findall(r"<th>([^<]+)</th>", table.group(1)) == ["Account", "Result", "When", "Status"]
    assert html.count('<table class="kv">') >= 3  # session, removed, tries[0].when
    assert "<th scope=\"row\">Remote</th><td>yes</td>" in html
    assert '<ul class="vals chips">' in html and html.count("<li>S-1-5-21-1-") == 8
    assert "Svc-sql" not in html and "<td>svc-sql</td><td>RC4-HMAC</td>" in html  # keys of a map kept as written
    assert "<dt>Source</dt><dd>10.0.0.9</dd>" in html and '<span class="muted">none</span>' in html


def test_every_value_is_escaped() -> None:
    html = page({"note": "<script>alert(1)</script>", "rows": [{"<b>": "<i>x</i>"}]})
    assert "<script>" not in html and "<i>x</i>" not in html and "&lt;script&gt;" in html
