"""The console end to end in headless Chromium (Debian's `chromium`, driven by Playwright): start
`dcsentry serve`, log in with the printed token, send corpus events over syslog, watch the alert
appear without a reload, open it, read its evidence, close it; visit every page. A screenshot of
each page goes to the test-artifact directory ($DCSENTRY_ARTIFACTS or test-artifacts/)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from conftest import SHARED
from playwright.sync_api import Page, expect, sync_playwright
from servekit import Serve, wait_for
from webkit import BRUTE, GROUP, PSEXEC, artifacts, base_url, cli_token, send_corpus, start

pytestmark = [pytest.mark.browser, pytest.mark.integration, pytest.mark.timeout(300)]
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def browser():
    assert Path(CHROMIUM).is_file(), "Debian's chromium is missing: scripts/bootstrap.sh test installs it"
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        yield b
        b.close()


def shot(page: Page, name: str) -> None:
    page.screenshot(path=str(artifacts() / f"console-{name}.png"), full_page=True)


def login(page: Page, url: str, token: str) -> None:
    page.goto(f"{url}/alerts")
    expect(page).to_have_url(f"{url}/login?next=%2Falerts")
    page.fill("#token", token)
    page.click("#login-form button[type=submit]")
    expect(page).to_have_url(f"{url}/alerts")


def test_log_in_watch_an_alert_arrive_open_it_and_close_it(tmp_path, browser) -> None:
    svc = start(tmp_path / "data")
    url = base_url(svc)
    ctx = browser.new_context(viewport={"width": 1400, "height": 900})
    page = ctx.new_page()
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    try:
        page.goto(f"{url}/alerts")
        page.fill("#token", "dcs_000000000000_wrong")
        page.click("#login-form button[type=submit]")
        expect(page.locator(".error")).to_contain_text("not valid")
        shot(page, "login")
        problems.clear()  # the refused login's 401 is logged by the browser: expected
        login(page, url, svc.token)
        expect(page.locator("#live")).to_have_attribute("data-state", "open")
        shot(page, "alerts-empty")

        page.evaluate("window.__sameDocument = true")  # gone if the page reloads
        send_corpus(svc, BRUTE, {4625})
        send_corpus(svc, GROUP)
        send_corpus(svc, PSEXEC, {7045})
        row = page.locator("#alerts tbody tr", has_text="Brute Force")
        expect(row).to_have_count(1, timeout=60_000)
        expect(page.locator("#alerts tbody tr", has_text="sensitive groups")).to_have_count(1, timeout=60_000)
        assert page.evaluate("window.__sameDocument") is True, "the alerts arrived without a reload"
        shot(page, "alerts-live")

        row.locator("a.title").click()
        expect(page.locator("h1")).to_contain_text("Brute Force")
        evidence = page.locator("#evidence tbody tr")
        expect(evidence.first).to_be_visible()
        assert evidence.count() >= 10
        expect(evidence.first).to_contain_text("192.168.198.149")
        expect(page.locator("#timeline li").first).to_be_visible()
        shot(page, "alert")

        page.select_option("#status-select", "closed")
        page.fill("#status-comment", "red team exercise")
        page.click("#status-save")
        expect(page.locator("#status")).to_have_text("closed")
        expect(page.locator("#timeline")).to_contain_text("red team exercise")
        shot(page, "alert-closed")

        page.locator("a.ent.host", has_text="192.168.198.149").first.click()
        expect(page.locator("h1")).to_contain_text("192.168.198.149")
        expect(page.locator("#auth tbody tr").first).to_be_visible()
        shot(page, "entity")

        page.click("nav >> text=DC health")
        expect(page.locator("section.dc").first).to_be_visible()
        shot(page, "health")

        page.click("nav >> text=Readiness")
        page.set_input_files("#audit-file", str(SHARED / "audit-samples/disa-stig-gpo/ws2019-dc_audit.csv"))
        page.click("#audit-form button")
        expect(page.locator("#verdict tbody tr").first).to_be_visible()
        expect(page.locator("#verdict")).to_contain_text("4776")
        shot(page, "readiness")

        page.click("nav >> text=Settings")
        form = page.locator("form.setting-form[data-name=honeytokens]")
        form.locator("textarea").fill("sql-admin\nbackup-svc")
        form.locator("input[name=comment]").fill("decoys from the AD team")
        form.locator("button").click()
        expect(page.locator("#audit")).to_contain_text("decoys from the AD team")
        shot(page, "settings")

        page.click("header .who button")
        expect(page).to_have_url(f"{url}/login")
        page.goto(f"{url}/settings")
        expect(page).to_have_url(f"{url}/login?next=%2Fsettings")
        assert not problems, problems
    finally:
        ctx.close()
        assert svc.stop() == 0


def test_read_only_console_cannot_change_anything(tmp_path, browser) -> None:
    svc = start(tmp_path / "data")
    url = base_url(svc)
    send_corpus(svc, GROUP)
    ctx = browser.new_context()
    page = ctx.new_page()
    try:
        login(page, url, cli_token(svc, "read-only", "auditor"))
        row = page.locator("#alerts tbody tr").first
        expect(row).to_be_visible(timeout=60_000)
        row.locator("a.title").click()
        expect(page.locator(".status-change")).to_contain_text("read-only")
        assert page.locator("#status-form").count() == 0
        alert_id = page.url.rsplit("/", 1)[1]
        csrf = page.get_attribute('meta[name="csrf-token"]', "content")
        status = page.evaluate("""async ([id, csrf]) => (await fetch(`/api/v1/alerts/${id}/status`, {method: "POST",
            headers: {"Content-Type": "application/json", "X-CSRF-Token": csrf},
            body: JSON.stringify({status: "closed"})})).status""", [alert_id, csrf])
        assert status == 403
        no_csrf = page.evaluate("""async () => (await fetch("/api/v1/settings/honeytokens", {method: "PUT",
            headers: {"Content-Type": "application/json"}, body: JSON.stringify({values: []})})).status""")
        assert no_csrf == 403
        cookie = next(c for c in ctx.cookies() if c["name"] == "dcsentry_session")
        assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
        shot(page, "alert-read-only")
        wait_for(lambda: svc.query("SELECT COUNT(*) FROM audit_log WHERE action = 'alert.status'")[0][0] == 0,
                 what="no status change recorded")
    finally:
        ctx.close()
        assert svc.stop() == 0


def test_demo_prints_a_login_link_that_shows_alerts_arriving(tmp_path, browser) -> None:
    """The README's main command (`scripts/run.sh` = `serve --demo`): open the printed URL, see alerts."""
    svc = Serve(tmp_path / "data", "--demo").start()
    ctx = browser.new_context(viewport={"width": 1400, "height": 900})
    page = ctx.new_page()
    try:
        link = next(ln.split("console: ", 1)[1].strip() for ln in svc.lines if ln.startswith("console: "))
        assert "/login#token=dcs_" in link
        page.goto(link)
        expect(page).to_have_url(re.compile(r".*/alerts$"))  # logged in by the link, token out of the URL
        expect(page.locator("#live")).to_have_attribute("data-state", "open")
        expect(page.locator("#alerts tbody tr").first).to_be_visible(timeout=90_000)
        shot(page, "demo")
    finally:
        ctx.close()
        assert svc.stop() == 0
