"""TLS syslog (RFC 5425) against real sockets: client certificates from a CA made in the test, refusals
(unknown CA, expired, missing), plaintext and stalled handshakes, and write-and-close senders."""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
from pathlib import Path

import pytest
from pki import make_pki
from syslogkit import Sink, any_close, arun, octet, start, tcp_send, until

from dcsentry.sources.syslog import server_context

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A CA, a server and client cert from it, an expired client cert, and a client cert from another CA."""
    return make_pki(tmp_path_factory.mktemp("pki"))


def client_ctx(pki: dict[str, Path], who: str | None) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(pki["ca"]))
    if who:
        ctx.load_cert_chain(str(pki[who]), str(pki[who + "_key"]))
    return ctx


async def tls_try(port: int, ctx: ssl.SSLContext, payload: bytes) -> None:
    """Sends, then waits for the server to close; a refused client sees an alert, a reset or EOF."""
    try:
        r, w = await asyncio.open_connection("127.0.0.1", port, ssl=ctx, server_hostname="localhost")
        w.write(payload)
        await w.drain()
        await asyncio.wait_for(r.read(), 5)
        w.close()
    except (ssl.SSLError, ConnectionError):
        pass


def test_tls_client_cert_cn_recorded(pki: dict[str, Path]) -> None:
    async def main() -> None:
        sink = Sink()
        ctx = server_context(pki["server"], pki["server_key"], client_ca=pki["ca"])
        assert ctx.minimum_version == ssl.TLSVersion.TLSv1_2 and ctx.verify_mode == ssl.CERT_REQUIRED
        ls, ports = await start(sink, kinds=("tls",), tls_context=ctx)
        msgs = [b"<13>1 - dc01 - - - - tls %d" % i for i in range(200)]
        await tcp_send(ports["tls"], b"".join(octet(m) for m in msgs), ctx=client_ctx(pki, "client"))
        await until(lambda: len(sink.items) == 200, what="TLS frames")
        assert sink.data == msgs
        r = sink.items[0]
        assert (r.transport, r.peer_name) == ("tls", "dc01.contoso.com") and r.peer.startswith("tls://127.0.0.1:")
        await ls.stop()
        assert ls.counters["received_messages_tls"] == 200 and ls.counters["tls_handshake_failures"] == 0

    arun(main())


@pytest.mark.parametrize(("who", "reason"), [("rogue", "unable to get local issuer"), ("expired", "expired"),
                                             (None, "did not return a certificate")])
def test_tls_untrusted_expired_or_missing_client_cert_refused(pki: dict[str, Path], who: str | None, reason: str,
                                                             caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="dcsentry.sources.syslog")

    async def main() -> None:
        sink = Sink()
        ctx = server_context(pki["server"], pki["server_key"], client_ca=pki["ca"])
        ls, ports = await start(sink, kinds=("tls",), tls_context=ctx)
        await tls_try(ports["tls"], client_ctx(pki, who), octet(b"<13>should not pass"))
        await until(lambda: ls.counters["tls_handshake_failures"] == 1, what="handshake failure counted")
        await tcp_send(ports["tls"], octet(b"<13>good client"), ctx=client_ctx(pki, "client"))  # still serving
        await until(lambda: len(sink.items) == 1)
        assert sink.data == [b"<13>good client"] and ls.per_peer["127.0.0.1"]["errors"] == 1
        await ls.stop()
        assert ls.counters["connections_open"] == 0

    arun(main())
    assert reason in caplog.text


def test_tls_sender_that_closes_at_once_loses_nothing(pki: dict[str, Path]) -> None:
    """Write-only clients close without reading: unread TLS 1.3 session tickets would turn that close
    into a RST and our kernel would discard what it still held. The server sends no tickets."""

    def send(port: int, blob: bytes) -> None:
        with socket.create_connection(("127.0.0.1", port)) as raw, \
                client_ctx(pki, "client").wrap_socket(raw, server_hostname="localhost") as s:
            s.sendall(blob)

    async def main() -> None:
        gate = asyncio.Event()
        sink = Sink(gate)
        ctx = server_context(pki["server"], pki["server_key"], client_ca=pki["ca"])
        ls, ports = await start(sink, kinds=("tls",), tls_context=ctx, batch_max=1000)
        msgs = [b"<13>burst %06d" % i for i in range(30_000)]
        await asyncio.to_thread(send, ports["tls"], b"".join(octet(m) for m in msgs))
        await asyncio.sleep(0.2)  # closed by the client while the server still holds unread data
        gate.set()
        await until(lambda: len(sink.items) == len(msgs), what="all TLS messages")
        assert sink.data == msgs
        await ls.stop()

    arun(main())


def test_tls_optional_client_cert_plaintext_and_stalled_handshakes(pki: dict[str, Path]) -> None:
    async def main() -> None:
        sink = Sink()
        ctx = server_context(pki["server"], pki["server_key"], client_ca=pki["ca"], require_client_cert=False)
        ls, ports = await start(sink, kinds=("tls",), tls_context=ctx, handshake_timeout=0.3)
        await tcp_send(ports["tls"], b"<13>anonymous\n", ctx=client_ctx(pki, None))
        await until(lambda: len(sink.items) == 1)
        assert sink.items[0].peer_name is None and sink.data == [b"<13>anonymous"]
        await tcp_send(ports["tls"], b"<13>plain text to a TLS port\n" * 10)  # not TLS at all
        r, w = await asyncio.open_connection("127.0.0.1", ports["tls"])  # connects, never says hello
        with any_close():
            assert await asyncio.wait_for(r.read(), 5) == b""
        await until(lambda: ls.counters["tls_handshake_failures"] == 2, what="both failures counted")
        w.close()
        await ls.stop()
        assert len(sink.items) == 1 and ls.counters["connections_open"] == 0

    arun(main())


def test_tls_listener_needs_a_context() -> None:
    async def main() -> None:
        with pytest.raises(ValueError, match="tls_context"):
            await start(Sink(), kinds=("tls",))

    arun(main())
