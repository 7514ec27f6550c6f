"""Incidents in a running `dcsentry serve`: the OTRF AD playbook sent over syslog becomes one incident
in the REST API, every CEF line forwarded over real UDP carries its incident id, and the console
shows the Incidents page (live) and the incident page (timeline, graph, status, comments) in Chromium."""

from __future__ import annotations

import socket
import threading
from pathlib import Path

import pytest
from conftest import read_file_events
from playwright.sync_api import expect, sync_playwright
from servekit import frame, send_tcp, wait_for
from test_console_e2e import ARGS, CHROMIUM
from test_incidents import PURPLESHARP
from webkit import artifacts, base_url, client, start

from dcsentry.synth.render import to_evtx_json

pytestmark = [pytest.mark.browser, pytest.mark.integration, pytest.mark.timeout(300)]
WANTED = {4624, 4625, 4768, 4769, 4776, 5156}


class UdpCatcher:
    """A real UDP socket standing in for the SIEM: every datagram kept."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.5)
        self.port = self.sock.getsockname()[1]
        self.lines: list[str] = []
        self._stop = threading.Event()
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.lines.append(self.sock.recv(65535).decode("utf-8", "replace"))
            except OSError:
                continue

    def close(self) -> None:
        self._stop.set()
        self.sock.close()


@pytest.fixture(scope="module")
def svc(tmp_path_factory: pytest.TempPathFactory):
    siem = UdpCatcher()
    s = start(tmp_path_factory.mktemp("incidents") / "data", "--forward", f"cef+udp://127.0.0.1:{siem.port}")
    s.siem = siem
    yield s
    assert s.stop() == 0
    siem.close()


def _send_playbook(svc) -> int:
    events, _ = read_file_events(PURPLESHARP)
    msgs = [frame(to_evtx_json(e), "MORDORDC") for e in events if e.event_id in WANTED]
    return send_tcp(svc.ports["tcp"], msgs)


def test_incidents_live_in_the_console_api_and_cef(svc) -> None:
    url = base_url(svc)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        page = browser.new_context(viewport={"width": 1400, "height": 900}).new_page()
        problems: list[str] = []
        page.on("pageerror", lambda e: problems.append(str(e)))
        page.goto(f"{url}/incidents")
        page.fill("#token", svc.token)
        page.click("#login-form button[type=submit]")
        expect(page).to_have_url(f"{url}/incidents")
        expect(page.locator("#live")).to_have_attribute("data-state", "open")
        expect(page.locator("#empty")).to_be_visible()
        page.evaluate("window.__sameDocument = true")

        assert _send_playbook(svc) > 100
        row = page.locator("#incidents tbody tr", has_text="Password spray from WORKSTATION5")
        expect(row).to_have_count(1, timeout=60_000)
        expect(row.locator("td.chain .step")).to_have_count(2, timeout=30_000)
        assert page.evaluate("window.__sameDocument") is True, "the incident arrived without a reload"
        page.screenshot(path=str(artifacts() / "console-incidents.png"), full_page=True)

        with client(svc, svc.token) as api:
            [inc] = api.get("/api/v1/incidents").json()["incidents"]
            assert inc["title"] == "Password spray from WORKSTATION5, then Kerberoasting by pgustavo"
            assert [a["type"] for a in inc["alerts"]] == ["password-spray", "kerberoasting"]
            assert [a["tactic"] for a in inc["alerts"]] == ["Credential Access", "Credential Access"]
            for a in inc["alerts"]:
                assert api.get(f"/api/v1/alerts/{a['id']}").json()["alert"]["incident"] == inc["id"]
            assert api.get("/api/v1/incidents/inc-nope").status_code == 404
        wait_for(lambda: sum(f"cs6={inc['id']}" in x for x in svc.siem.lines) >= 2, timeout=30,
                 what="both alerts forwarded as CEF with cs6Label=incidentId")
        assert all("cs6Label=incidentId" in x for x in svc.siem.lines if "|KerberoastingSecurityAlert|" in x)

        row.locator("a.title").click()
        expect(page.locator("h1")).to_have_text(inc["title"])
        expect(page.locator("#incident-timeline > li")).to_have_count(2)
        expect(page.locator("#incident-timeline > li").first).to_contain_text("Credential Access")
        expect(page.locator("#incident-timeline > li").first.locator("ul.key-events li").first).to_contain_text("event 4625 on WORKSTATION5")
        graph = page.locator("svg#incident-graph")
        expect(graph.locator('g.node[data-name="WORKSTATION5"]')).to_have_count(1)
        expect(graph.locator('g.node[data-name="pgustavo"]')).to_have_count(1)
        expect(graph.locator('line.edge[data-type="kerberoasting"]').first).to_be_attached()
        expect(page.locator("#incident-entities")).to_contain_text("172.18.39.5")
        page.select_option("#incident-status-select", "closed")
        page.fill("#incident-status-form input[name=comment]", "spray owner reset")
        page.click("#incident-status-save")
        expect(page.locator("#status")).to_have_text("closed", timeout=15_000)
        page.fill("#incident-comment", "Kerberoasted services rotated")
        page.click("#incident-comment-save")
        expect(page.locator("#incident-comments li")).to_have_count(2, timeout=15_000)
        expect(page.locator("#incident-comments")).to_contain_text("Kerberoasted services rotated")
        page.screenshot(path=str(artifacts() / "console-incident.png"), full_page=True)
        page.locator("#incident-timeline > li > a").first.click()
        expect(page.locator("#alert-incident")).to_have_text(inc["id"])  # the alert page links back
        assert not problems, problems
        browser.close()
    assert Path(artifacts() / "console-incident.png").stat().st_size > 10_000
