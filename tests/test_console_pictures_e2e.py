"""The console's pictures and alert details in headless Chromium (Debian's `chromium`, driven by
Playwright) against a started `dcsentry serve` fed corpus events over syslog: the charts are there
and draw the data the store holds (bars add up to the alerts and activities sent, a DC that stopped
sending 8004 is flat at the end of its row), and alert details are tables, never a Python repr.
A screenshot of each page at 1400x900 goes to the test-artifact directory."""

from __future__ import annotations

import re
import time

import pytest
from eventfactory import ntlm_4776_xml, ntlm_8004_xml
from playwright.sync_api import Page, expect
from servekit import frame, send_tcp, wait_for
from test_console_e2e import browser, login, shot  # noqa: F401  (the module's Chromium fixture)
from webkit import BRUTE, GROUP, PSEXEC, artifacts, base_url, client, send_corpus, start

pytestmark = [pytest.mark.browser, pytest.mark.integration, pytest.mark.timeout(300)]
ADMINSDHOLDER = "dc-log/evtx/evtx-to-mitre-attack/ID5136-AdminSDholder permissions changed.evtx"
KERBEROAST = "dc-log/evtx/evtx-to-mitre-attack/ID4769-Kerberoast ticket with low encryption.evtx"
REPR = re.compile(r"\[\{'|\{'[A-Za-z_]+': |\['[^\]]*'\]")  # what str() of a list or dict looks like


def shots(page: Page, name: str) -> None:
    """The whole page, and the first screen as a person sees it at 1400x900."""
    shot(page, name)
    page.screenshot(path=str(artifacts() / f"console-{name}-screen.png"))


def counts(page: Page, selector: str) -> list[int]:
    return [int(x) for x in page.locator(selector).evaluate_all("els => els.map(e => e.dataset.count)")]


def no_repr(page: Page, selector: str) -> None:
    text = page.locator(selector).inner_text()
    assert not REPR.search(text), f"a Python repr in {selector}: {REPR.search(text)}"


def test_alert_charts_details_and_entity_pictures(tmp_path, browser) -> None:  # noqa: F811
    svc = start(tmp_path / "data")
    url = base_url(svc)
    for rel, ids in ((BRUTE, {4625}), (GROUP, None), (PSEXEC, {7045}), (ADMINSDHOLDER, None), (KERBEROAST, None)):
        send_corpus(svc, rel, ids)
    api = client(svc, svc.token)

    def settled() -> list | None:  # the same alerts twice in a row: processing is done
        first = api.get("/api/v1/alerts", params={"limit": 500}).json()["alerts"]
        time.sleep(1.5)
        again = api.get("/api/v1/alerts", params={"limit": 500}).json()["alerts"]
        types = {a["type"] for a in again}
        done = {"brute-force", "adminsdholder-change", "kerberoasting"} <= types
        return again if done and [a["id"] for a in first] == [a["id"] for a in again] else None

    alerts = wait_for(settled, timeout=90, what="the corpus alerts raised")
    ctx = browser.new_context(viewport={"width": 1400, "height": 900})
    page = ctx.new_page()
    problems: list[str] = []
    page.on("console", lambda m: problems.append(f"{m.text} {m.location.get('url')}")
            if m.type == "error" and not m.location.get("url", "").endswith("/favicon.ico") else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    try:
        login(page, url, svc.token)
        expect(page.locator("#alerts-over-time")).to_be_visible()
        bars = counts(page, "#alerts-over-time rect.bar")
        assert sum(bars) == len(alerts), (bars, len(alerts))
        by_sev = {s: sum(1 for a in alerts if a["severity"] == s) for s in ("high", "medium", "low")}
        for sev, n in by_sev.items():
            assert sum(counts(page, f"#alerts-over-time rect.k-{sev}")) == n, sev
        rows = page.locator("#alerts-by-type g.row")
        by_type = {r.get_attribute("data-name"): int(r.get_attribute("data-count") or 0) for r in rows.all()}
        want = {t: sum(1 for a in alerts if a["type"] == t) for t in {a["type"] for a in alerts}}
        assert by_type == want
        shots(page, "pictures-alerts")

        page.goto(f"{url}/alerts?type=brute-force")  # the charts follow the list's filters
        assert sum(counts(page, "#alerts-over-time rect.bar")) == want["brute-force"]
        page.locator("#alerts a.title").first.click()
        details = page.locator("#details")
        expect(details.locator(".detail-accounts table")).to_contain_text("Administrator")
        expect(details.locator("#detail-facts")).to_contain_text("192.168.198.149")
        no_repr(page, "#details")
        no_repr(page, "#evidence")
        shots(page, "pictures-alert-brute-force")

        page.goto(f"{url}/alerts?type=adminsdholder-change")
        page.locator("#alerts a.title").first.click()
        changes = page.locator("#details .detail-changes")
        expect(changes.locator("table.written tbody tr").first).to_contain_text(re.compile(r"^(added|removed)\s*(Allow|Deny) "))
        expect(changes.locator("table.before-after tbody tr")).to_have_count(1)
        expect(changes.locator("table.before-after tbody tr td").first).to_contain_text("O:DAG:DAD:")
        expect(details.locator(".detail-node h3", has_text="Given to")).to_be_visible()  # trustees: a list
        no_repr(page, "#details")
        shots(page, "pictures-alert-changes")

        page.goto(f"{url}/alerts?type=kerberoasting")
        page.locator("#alerts a.title").first.click()
        expect(page.locator("#details .detail-map table")).to_contain_text("RC4-HMAC")
        no_repr(page, "#details")
        shots(page, "pictures-alert-kerberoasting")

        page.goto(f"{url}/entities/host/192.168.198.149")
        stored = svc.query("SELECT COUNT(*) FROM activities WHERE host = ? OR server = ?",
                           "192.168.198.149", "192.168.198.149")[0][0]
        assert stored > 1000
        expect(page.locator("#entity-over-time")).to_be_visible()
        assert int(page.locator("#entity-pictures").get_attribute("data-total") or 0) == stored
        assert sum(counts(page, "#entity-over-time rect.bar")) == stored
        assert sum(counts(page, "#entity-over-time rect.k-failure")) == stored  # every guess failed
        touched = page.locator("#entity-accounts g.row")
        assert "administrator" in [r.get_attribute("data-name") for r in touched.all()]
        shots(page, "pictures-entity")
        assert not problems, problems
    finally:
        ctx.close()
        assert svc.stop() == 0


def _pair(dc: str, t: float, with_8004: bool) -> list[bytes]:
    out = [ntlm_4776_xml(t, "alice", "WS7", dc=dc)]
    if with_8004:
        out.append(ntlm_8004_xml(t + 0.2, "FS01", "alice", "WS7", dc=dc))
    return [frame(x.encode()) for x in out]


def test_dc_that_stopped_sending_8004_is_flat_synthetic(tmp_path, browser) -> None:  # noqa: F811
    """Synthetic 4776 + 8004 (no public 8004 recording) from DC01 and DC02 in one minute; in the
    next, DC02 still sends 4776 but no 8004. On the 1-hour view (a bar a minute) DC02's 8004 row
    has its events in the earlier bar, none in the last, and is marked stopped; DC01's is not."""
    svc = start(tmp_path / "data")
    url = base_url(svc)
    while time.time() % 60 > 45:  # both sends in a minute of their own
        time.sleep(1)
    t0 = time.time() - 30
    first = [m for i in range(5) for dc in ("DC01.contoso.local", "DC02.contoso.local") for m in _pair(dc, t0 + i, True)]
    send_tcp(svc.ports["tcp"], first)
    wait_for(lambda: svc.query("SELECT SUM(count) FROM dc_minutes WHERE event_id = 8004")[0][0] == 10,
             what="the first minute counted")
    time.sleep(91 - time.time() % 60)  # half a minute into the next (the page then reads its last bar alone)
    second = [m for i in range(4) for dc, with_8004 in (("DC01.contoso.local", True), ("DC02.contoso.local", False))
              for m in _pair(dc, t0 + 60 + i, with_8004)]
    send_tcp(svc.ports["tcp"], second)
    wait_for(lambda: svc.query("SELECT SUM(count) FROM dc_minutes WHERE event_id = 4776")[0][0] == 18,
             what="the second minute counted")
    ctx = browser.new_context(viewport={"width": 1400, "height": 900})
    page = ctx.new_page()
    try:
        login(page, url, svc.token)
        page.goto(f"{url}/health?hours=1")
        dc01, dc02 = page.locator('.rates[data-dc="DC01"]'), page.locator('.rates[data-dc="DC02"]')
        expect(dc02).to_be_visible()

        def row(dc, eid: int) -> dict:
            g = dc.locator(f'g.strip[data-event="{eid}"]')
            return {k: g.get_attribute(k) for k in ("data-total", "data-last", "class")} | {
                "bars": counts(page, f'.rates[data-dc="{dc.get_attribute("data-dc")}"] g.strip[data-event="{eid}"] rect')}

        r = row(dc02, 8004)
        assert r["data-total"] == "5" and r["data-last"] == "0" and "stopped" in (r["class"] or ""), r
        assert r["bars"] == [5], r  # one bar: the first minute; flat since
        r = row(dc02, 4776)
        assert r["data-total"] == "9" and r["data-last"] == "4" and "stopped" not in (r["class"] or ""), r
        r = row(dc01, 8004)
        assert r["data-total"] == "9" and r["data-last"] == "4" and r["bars"] == [5, 4], r
        expect(dc02.locator("h3 .badge")).to_contain_text("8004")
        assert dc01.locator("h3 .badge").count() == 0
        svg = page.locator("#rates-DC02")
        assert svg.get_attribute("data-slots") == "60" and svg.get_attribute("data-step") == "60"
        shots(page, "pictures-health")
        page.goto(f"{url}/health")  # the default day: a bar per 15 minutes
        assert page.locator("#rates-DC02").get_attribute("data-slots") == "96"
        shots(page, "pictures-health-day")
    finally:
        ctx.close()
        assert svc.stop() == 0
