"""`dcsentry serve` end to end: the real process on ephemeral ports, corpus events over UDP, TCP and
TLS in several SIEM layouts, alerts stored and forwarded in CEF to a receiver the test runs."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest
from conftest import SHARED, corpus
from pki import make_pki
from servekit import CefReceiver, Serve, corpus_json, frame, send_tcp, send_udp, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

FAST_HEALTH = "[health]\ncheck_interval = 1\nmissing_scale = 0.00001\n"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return make_pki(tmp_path_factory.mktemp("pki"))


def client_ctx(pki: dict[str, Path]) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(pki["ca"]))
    ctx.load_cert_chain(str(pki["client"]), str(pki["client_key"]))
    return ctx


def snare_lines() -> list[bytes]:
    """Real Snare-over-syslog lines from a Windows Server 2022 Security log (CRLF endings)."""
    raw = (SHARED / "siem-samples/snare/rsyslog-mmsnareparse-windows2022-security.data").read_bytes()
    return [line for line in raw.split(b"\r\n") if line.strip()]


@pytest.fixture()
def receiver():
    r = CefReceiver()
    yield r
    r.close()


def test_corpus_over_udp_tcp_tls_is_stored_detected_and_forwarded(tmp_path, pki, receiver) -> None:
    svc = Serve(tmp_path / "data", "--syslog-tls", "127.0.0.1:0", "--tls-cert", str(pki["server"]),
                "--tls-key", str(pki["server_key"]), "--tls-client-ca", str(pki["ca"]),
                "--forward", f"cef+tcp://127.0.0.1:{receiver.port}").start()
    try:
        assert {"udp", "tcp", "tls", "web"} <= set(svc.ports)
        brute = corpus_json(corpus("evtx/deepbluecli/smb-password-guessing-security.evtx"), {4625})
        group = corpus_json(corpus("evtx/evtx-attack-samples/Network_Service_Guest_added_to_admins_4732.evtx"))
        psexec = corpus_json(corpus("evtx/evtx-to-mitre-attack/ID7045-7036 PSexec service installation.evtx"), {7045})
        sent = send_tcp(svc.ports["tcp"], (frame(m) for m in brute))
        sent += send_udp(svc.ports["udp"], (frame(m) for m in group))
        sent += send_tcp(svc.ports["tls"], (frame(m) for m in psexec), ctx=client_ctx(pki))
        snare = snare_lines()
        sent += send_tcp(svc.ports["tcp"], snare)
        wait_for(lambda: svc.spool_rows() >= sent, what=f"{sent} messages in the spool")
        wait_for(svc.caught_up, what="the processor to catch up")
        types = wait_for(lambda: {a["type"] for a in svc.alerts()} >= {"brute-force", "sensitive-group-addition",
                                                                           "suspicious-service-creation",
                                                                           "remote-code-execution"} and
                         {a["type"] for a in svc.alerts()}, what="the four alert types")
        assert "password-spray" not in types
        stored = dict(svc.query("SELECT event_id, COUNT(*) FROM events GROUP BY event_id"))
        assert stored[4625] == len(brute) and stored[7045] == 1
        assert stored[4732] == 2 + 3 and stored[4728] == 1  # corpus file + the Snare capture
        assert stored[4776] == 10  # the Snare capture's NTLM validations
        brute_alert = next(a for a in svc.alerts() if a["type"] == "brute-force")
        assert brute_alert["count"] >= 3500 and "192.168.198.149" in brute_alert["description"]
        cef = wait_for(lambda: receiver.with_text("BruteForceSecurityAlert"), what="CEF for the brute force")
        assert "externalId=2023" in cef[-1] and "CEF:0|dcsentry|dcsentry|" in cef[-1]
        wait_for(lambda: receiver.with_text("MaliciousServiceCreationSecurityAlert"), what="CEF for the service")
        # the intake's and the detection process's counters are added up about every second
        status, metrics = wait_for(lambda: (lambda r: r[0] == 200 and 'layout="snare"' in r[1]
                                            and 'event_id="4625"' in r[1] and r)(svc.http("/metrics")),
                                   what="metrics with the snare layout and the events")
        for needle in ('dcsentry_received_messages_total{transport="udp"} 2.0',
                       'dcsentry_received_messages_total{transport="tls"} 1.0', 'dcsentry_events_total{event_id="4625"}',
                       'dcsentry_alerts_total{type="brute-force"} 1.0'):
            assert needle in metrics, needle
        assert svc.http("/healthz")[0] == 200 and svc.http("/readyz")[0] == 200
        wait_for(lambda: any(line.startswith("ALERT ") and "brute-force" in line for line in svc.lines),
                 what="the alert line on the service's stdout")
        peers = svc.query("SELECT DISTINCT json_extract(body, '$.origin.source') FROM events WHERE event_id = 7045")
        assert peers[0][0].startswith("tls://127.0.0.1:") and peers[0][0].endswith("#dc01.contoso.com")
    finally:
        assert svc.stop() == 0


def test_health_alerts_say_what_to_change(tmp_path, receiver) -> None:
    """A DC that sends only 4776: no 8004, no group events, no 7045 -> one health alert each, forwarded."""
    svc = Serve(tmp_path / "data", "--forward", f"cef+tcp://127.0.0.1:{receiver.port}", config=FAST_HEALTH).start()
    try:
        only_4776 = corpus_json(corpus("evtx/evtx-attack-samples/remote_pwd_reset_rpc_mimikatz_postzerologon_target_DC.evtx"),
                                {4776})
        send_tcp(svc.ports["tcp"], (frame(m) for m in only_4776))
        health = wait_for(lambda: len(svc.alerts("health")) >= 3 and svc.alerts("health"), what="3 health alerts")
        by_type = {a["type"]: a for a in health}
        ntlm = by_type["health:ntlm-auditing"]
        assert "NTLM auditing is probably not enabled" in ntlm["title"]
        assert "Restrict NTLM: Audit NTLM authentication in this domain\" = Enable all" in ntlm["description"]
        assert "Audit Security Group Management" in by_type["health:security-group-management"]["description"]
        assert "health:credential-validation" not in by_type  # 4776 did arrive
        cef = wait_for(lambda: receiver.with_text("NtlmAuditingNotEnabledMonitoringAlert"), what="health CEF")
        assert "CEF:0|dcsentry|dcsentry|" in cef[0]
    finally:
        assert svc.stop() == 0


def test_bad_traffic_is_counted_and_the_server_stays_up(tmp_path) -> None:
    import os
    import socket

    svc = Serve(tmp_path / "data", config="[health]\ncheck_interval = 1\nunparseable_min = 20\n").start()
    try:
        tcp, udp = svc.ports["tcp"], svc.ports["udp"]
        send_tcp(tcp, [b"<13>1 - host app - - - this is not a windows event %d" % i for i in range(50)])
        send_udp(udp, [os.urandom(200) for _ in range(20)])
        with socket.create_connection(("127.0.0.1", tcp)) as s:  # a huge frame, then garbage framing
            s.sendall(b"300000 " + b"A" * 300000 + b"99999999999999 junk\n")
        half_open = socket.create_connection(("127.0.0.1", tcp))
        half_open.sendall(b"120 <13>1 - partial")  # a frame that never completes
        good = corpus_json(corpus("evtx/evtx-attack-samples/Network_Service_Guest_added_to_admins_4732.evtx"))
        send_tcp(tcp, (frame(m) for m in good))
        wait_for(lambda: svc.query("SELECT COUNT(*) FROM events WHERE event_id = 4732")[0][0] == 2,
                 what="the valid events after the bad ones")
        _, metrics = wait_for(lambda: (lambda r: "dcsentry_parse_failed_messages_total" in r[1]
                                       and 'peer="127.0.0.1"' in r[1] and r)(svc.http("/metrics")),
                              what="parse failures in metrics")
        assert "dcsentry_framing_errors_total 1.0" in metrics or "dcsentry_oversized_total 1.0" in metrics
        alerts = wait_for(lambda: svc.alerts("health"), what="the unparseable-peer health alert")
        assert any(a["type"] == "health:peer-unparseable" for a in alerts)
        assert svc.http("/healthz")[0] == 200
        half_open.close()
    finally:
        assert svc.stop() == 0
