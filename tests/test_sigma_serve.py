"""Sigma rules live in `dcsentry serve`: the real process with `detection.sigma` in its config and
`--sigma` on its command line, corpus events over syslog, Sigma alerts stored and sent as CEF."""

from __future__ import annotations

import pytest
from conftest import SHARED, corpus
from servekit import CefReceiver, Serve, corpus_json, frame, send_tcp, wait_for
from sigmakit import DATA

pytestmark = pytest.mark.timeout(240)

PSEXEC = "sigma:42c575ea-e41e-41f1-b248-8093c3e82a28"  # SigmaHQ "PsExec Service Installation"
BRUTE = "sigma:0b7c6a39-7a43-4f0b-8f61-6a4b2b1e0f15"  # tests/data/sigma/brute_force.yml


@pytest.mark.integration
def test_serve_runs_sigma_rules_and_correlations_on_the_live_stream(tmp_path) -> None:
    receiver = CefReceiver()
    rules = SHARED / "sigma" / "rules"
    svc = Serve(tmp_path / "data", "--sigma", str(DATA), "--forward", f"cef+tcp://127.0.0.1:{receiver.port}",
                config=f"[detection]\nsigma = [{str(rules)!r}]\n").start()
    try:
        summary = [line for line in svc.lines if line.startswith("sigma: ")]
        assert summary == ["sigma: 216 of 216 Sigma rules loaded (2 correlations) from 214 file(s); 0 not loaded\n"]
        psexec = corpus_json(corpus("evtx/evtx-to-mitre-attack/ID7045-7036 PSexec service installation.evtx"), {7045})
        brute = corpus_json(corpus("evtx/deepbluecli/smb-password-guessing-security.evtx"), {4625})
        sent = send_tcp(svc.ports["tcp"], (frame(m) for m in psexec + brute))
        wait_for(lambda: svc.spool_rows() >= sent, what=f"{sent} messages in the spool")
        wait_for(svc.caught_up, what="the processor to catch up")
        alerts = wait_for(lambda: (lambda got: {PSEXEC, BRUTE} <= set(got) and got)(
            {a["type"]: a for a in svc.alerts()}), what="the Sigma alerts in the store")
        rule_alert = alerts[PSEXEC]
        assert rule_alert["title"] == "PsExec Service Installation" and rule_alert["count"] == 1
        assert rule_alert["entities"]["hosts"] == ["jump01.offsec.lan"] and "PSEXESVC" in str(rule_alert["details"])
        assert "brute-force" in alerts and "suspicious-service-creation" in alerts  # the built-ins beside them
        wait_for(lambda: svc.alerts() and next(a for a in svc.alerts() if a["type"] == BRUTE)["count"] >= 3558,
                 what="the Sigma brute force to grow to every attempt")
        cef = wait_for(lambda: receiver.with_text(f"|{PSEXEC}|PsExec Service Installation|5|"), what="CEF for the rule")
        assert "cs1Label=url" in cef[0] and "externalId" not in cef[0]
        wait_for(lambda: receiver.with_text(f"|{BRUTE}|"), what="CEF for the correlation")
        wait_for(lambda: any(line.startswith("ALERT ") and PSEXEC in line for line in svc.lines),
                 what="the alert line on the terminal")
    finally:
        assert svc.stop() == 0
        receiver.close()


def test_a_detect_node_compiles_its_rules_once_for_all_partitions(tmp_path, monkeypatch) -> None:
    """With a bus, each partition runs a main engine and a honeytoken engine: the node compiles the
    rules once and every partition (and one reopened after an error) shares them; the honeytoken
    engine never compiles them. Each partition keeps its own matcher (its own correlation state)."""
    import dcsentry.detectors.sigma as sigma_pkg
    from dcsentry.bus.detect import DetectWorker
    from dcsentry.config import Config
    from dcsentry.store.store import open_store

    loads = []
    real = sigma_pkg.load_rules
    monkeypatch.setattr(sigma_pkg, "load_rules", lambda paths: loads.append(paths) or real(paths))
    cfg = Config()
    cfg.detection.sigma = [str(DATA)]
    store = open_store("sqlite:store.db", tmp_path)
    try:
        node = DetectWorker(cfg, store, announce=lambda line: None)
        node.js = None  # building a partition's engines reads nothing from the bus (`open()` does)
        runners = [node._runner(p) for p in (0, 1, 0)]
        assert len(loads) == 1 and node.sigma is not None and node.sigma.loaded == 5  # 3 files: 3 rules, 2 correlations
        assert all(r.core.main.engine.sigma.ruleset is node.sigma for r in runners)
        assert len({id(r.core.main.engine.sigma) for r in runners}) == 3
        assert all(r.core.tokens.engine.sigma is None for r in runners)
    finally:
        store.close()
