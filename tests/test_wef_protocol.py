"""The collector's protocol pieces against the real WEF messages in ../shared/reference/wef-samples:
SLDC decoding of the two real compressed captures, parsing every client message (UTF-16 wire bytes,
pretty-printed copies, a raw control character, EventID 111, SubscriptionEnd), the shape of our
replies next to Windows' own, and the conversation through the collector into a real spool file.
"""

from __future__ import annotations

import asyncio
import codecs

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree

from conftest import SHARED
from dcsentry.config import Wef
from dcsentry.model import Origin
from dcsentry.sources.wef import soap
from dcsentry.sources.wef.collector import Collector, Identity, Request
from dcsentry.detectors.wef_sender import computer_matches
from dcsentry.formats.xml import decode_wef
from dcsentry.sources.wef.sldc import decompress
from dcsentry.sources.wef.subscriptions import build, gpo_string, subscribe_envelope, thumbprint
from dcsentry.sources.spool import Spool
from wefclient import NS, make_wef_pki, parse_subscriptions, sldc_compress

SAMPLES = SHARED / "reference" / "wef-samples"


def sample(name: str) -> bytes:
    return (SAMPLES / name).read_bytes()


def events_request() -> bytes:
    """The OpenWEC doc's Events batch without its printing artefacts (\\' and a trailing ')."""
    text = sample("openwec-events-request.xml").decode().replace("\\'", "'").rstrip().rstrip("'")
    return codecs.BOM_UTF16_LE + text.encode("utf-16-le")


@pytest.mark.parametrize("compressed, plain", [
    ("openwec-heartbeat-request.sldc.bin", "openwec-heartbeat-request.utf16le.bin"),
    ("markkurossi-sldc-heartbeat-request.sldc.bin", "markkurossi-sldc-heartbeat-request.utf16le-derived.bin")])
def test_sldc_decodes_the_real_captures(compressed: str, plain: str) -> None:
    out = decompress(sample(compressed))
    assert out == sample(plain) and out.startswith(b"\xff\xfe")
    assert soap.parse(out).action == soap.HEARTBEAT


def test_sldc_small_vector_trailer_and_refusals() -> None:
    assert decompress(bytes.fromhex((SAMPLES / "openwec-sldc-test-string.sldc.hex").read_text().split()[0])) == \
        b"test string"
    real = sample("openwec-heartbeat-request.sldc.bin")
    with pytest.raises(ValueError, match="length trailer"):
        decompress(real[:-4] + (3041).to_bytes(4, "little"))
    with pytest.raises(ValueError):
        decompress(sample("openwec-heartbeat-request.utf16le.bin"))  # a body that is not compressed
    with pytest.raises(ValueError, match="over"):
        decompress(sldc_compress(b"a" * 5000), max_output=1000)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=3000))
def test_sldc_round_trips_and_never_fails_other_than_valueerror(data: bytes) -> None:
    assert decompress(sldc_compress(data)) == data
    try:
        decompress(data, max_output=1 << 16)
    except ValueError:
        pass


def test_parse_every_client_message_of_the_captures() -> None:
    enum = soap.parse(sample("openwec-enumerate-request.utf16le.bin"), "application/soap+xml;charset=UTF-16")
    assert enum.action == soap.ENUMERATE and enum.message_id.startswith("uuid:") and enum.operation_id
    owinec = soap.parse(sample("owinec-raw-01-client.raw.xml"))
    assert owinec.action == soap.ENUMERATE and owinec.machine_id == "Georgiou"
    assert soap.parse(sample("openwec-end-request.xml")).action == soap.END
    hb = soap.parse(sample("owinec-raw-03-client.raw.xml"))
    assert hb.action == soap.HEARTBEAT and hb.ack_requested and hb.bookmark is None and hb.identifier
    ev = soap.parse(events_request())
    assert ev.action == soap.EVENTS and len(ev.events) == 21 and ev.ack_requested
    assert ev.identifier == "219C5353-5F3D-4CD7-A644-F6B69E57C1C1"
    assert 'RecordId="149161"' in ev.bookmark and ev.bookmark.startswith("<BookmarkList")
    ids = [decode_wef(e.encode(), Origin("t"))[1].record_id for e in ev.events]
    assert ids == list(range(149141, 149162))
    end = soap.parse(sample("openwec-subscriptionend-request.xml"))
    assert end.action == soap.SUBSCRIPTION_END and end.end_status.endswith("SourceCancelling")
    assert "1717" in end.end_reason and "failed to read events" in end.end_reason
    marker = soap.parse(sample("owinec-raw-05-client.xml"))
    assert marker.bookmark is None and "SubscriptionBookmarkEvent" in marker.events[0]


def test_a_raw_control_character_costs_nothing() -> None:
    env = soap.parse(sample("openwec-events-request-nonxmlchar-derived.xml"))
    assert len(env.events) == 1
    _, event = decode_wef(env.events[0].encode(), Origin("t"))
    assert "\x05" in event.provider and event.record_id


def test_a_truncated_event_is_an_error_for_that_event_only() -> None:
    with pytest.raises(ValueError):
        decode_wef(sample("openwec-event-security-4798-truncated-partial.xml"), Origin("t"))
    _, ok = decode_wef(sample("openwec-event-security-4689-renderedtext-oneline.xml"), Origin("t"))
    assert ok.event_id == 4689


@pytest.mark.parametrize("doc, kind", [
    ("<!DOCTYPE x [<!ENTITY a 'b'>]><x>&a;</x>", "dtd"),
    ("<s:Envelope xmlns:s='http://www.w3.org/2003/05/soap-envelope'><s:Body/></s:Envelope>", "malformed"),
    ("<Envelope/>", "malformed"), ("<<<", "malformed")])
def test_bad_envelopes_are_refused_with_their_reason(doc: str, kind: str) -> None:
    with pytest.raises(soap.SoapError) as err:
        soap.parse(doc.encode())
    assert err.value.kind == kind
    with pytest.raises(soap.SoapError):
        soap.parse(b"\xff\xfe\x00\xd8")  # an unpaired surrogate: not UTF-16 text


def _paths(el: etree._Element, prefix: str = "") -> set[str]:
    out = set()
    for child in el:
        if isinstance(child.tag, str):
            p = f"{prefix}/{child.tag}"
            out |= {p} | _paths(child, p)
    return out


def test_replies_have_the_shape_of_windows_own() -> None:
    req = soap.parse(events_request())
    ack = soap.ack(req)
    assert ack.startswith(b"\xff\xfe")
    ours, golden = etree.fromstring(ack), etree.fromstring(sample("openwec-events-ack.xml"))
    assert _paths(ours) == _paths(golden)
    assert ours.findtext("s:Header/a:RelatesTo", namespaces=NS) == req.message_id
    op = ours.find("s:Header/p:OperationID", NS)
    assert op.text == req.operation_id and op.get(f"{{{NS['s']}}}mustUnderstand") == "false"
    cfg = Wef(compression=True)
    sub = build(cfg)[0]
    xml = subscribe_envelope(sub, cfg, "http://wec.example.test:5985", "<BookmarkList><Bookmark Channel='Security' "
                             "RecordId='5' IsCurrent='true'/></BookmarkList>", kerberos=True, thumbprints=[])
    enum = soap.parse(sample("openwec-enumerate-request.utf16le.bin"))
    response = soap.enumerate_response(enum, [(sub.version, xml)])
    windows = etree.fromstring(sample("openwec-enumerate-response.xml"))
    assert _paths(windows) <= _paths(etree.fromstring(response))  # every element Windows sends, we send
    (parsed,) = parse_subscriptions(response)
    assert parsed.compressed and parsed.positions == {"Security": 5} and parsed.address.startswith(
        "http://wec.example.test:5985/wsman/subscriptions/")
    assert soap.parse(soap.fault("x")).action  # a fault is itself a well-formed envelope


def test_thumbprint_and_gpo_string(tmp_path) -> None:
    pki = make_wef_pki(tmp_path, ["dc01"])
    cert = x509.load_pem_x509_certificate(pki["ca"].read_bytes())
    assert thumbprint(pki["ca"]) == cert.fingerprint(hashes.SHA1()).hex().upper()
    assert gpo_string("wec.example.test", 5986, refresh=60, issuer_ca="AB" * 20) == \
        "Server=HTTPS://wec.example.test:5986/wsman/SubscriptionManager/WEC,Refresh=60,IssuerCA=" + "AB" * 20
    assert gpo_string("wec.example.test", 5985, refresh=120) == \
        "Server=http://wec.example.test:5985/wsman/SubscriptionManager/WEC,Refresh=120"


@pytest.mark.parametrize("computer, sender, ok", [
    ("DC01.example.test", "DC01$@EXAMPLE.TEST", True), ("dc01.example.test", "dc01.example.test", True),
    ("DC01", "dc01.example.test", True), ("DC02.example.test", "DC01$@EXAMPLE.TEST", False),
    ("dc01.other.test", "dc01.example.test", False), ("", "dc01", False)])
def test_computer_matches_sender(computer: str, sender: str, ok: bool) -> None:
    assert computer_matches(computer, sender) is ok


def test_collector_spools_events_and_bookmark_together_then_acks(tmp_path) -> None:
    spool = Spool(tmp_path / "spool.db")
    cfg = Wef(https=["127.0.0.1:0"])

    async def sink(rows: list, update) -> None:
        await asyncio.to_thread(spool.append_wef, rows, update, 1.0)

    async def bookmark_of(client: str, sub: str) -> str | None:
        return spool.wef_bookmark(client, sub)

    col = Collector(cfg, sink, bookmark_of, thumbprints=["AB" * 20])
    sub = col.subscriptions[0]
    who = Identity("win10.windomain.local", "certificate")

    def post(path: str, body: bytes, encoding: str = "") -> tuple[int, bytes]:
        r = asyncio.run(col.handle(Request(path, body, "", encoding, "10.0.0.5:50000", "https", "wec:5986"), who))
        return r.status, r.body

    path = f"/wsman/subscriptions/{sub.id}/1"
    status, body = post(path, sldc_compress(events_request()), "SLDC")
    assert status == 200 and etree.fromstring(body).findtext("s:Header/a:Action", namespaces=NS) == soap.ACK
    rows = spool.read(0, 100)
    assert len(rows) == 21 and all(r.transport == "wef" and r.peer.endswith("#win10.windomain.local") for r in rows)
    assert 'RecordId="149161"' in spool.wef_bookmark("win10.windomain.local", "dcsentry")
    status, _ = post(path, sample("owinec-raw-05-client.xml"))  # EventID 111 only: acked, nothing spooled
    assert status == 200 and len(spool.read(0, 100)) == 21 and col.counters["forwarder_markers"] == 1
    status, _ = post(path, sample("openwec-end-request-after-subscriptionend.xml"), "SLDC")  # header lies
    assert status == 204 and col.counters["sldc_not_compressed"] == 1
    status, body = post("/wsman/SubscriptionManager/WEC", sample("openwec-enumerate-request.utf16le.bin"))
    (offered,) = parse_subscriptions(body)
    assert offered.positions == {"Microsoft-Windows-WinRM/Operational": 149161}  # the stored bookmark, sent back
    assert offered.address.startswith("http://srv.windomain.local:5985/") is False  # our scheme, not theirs
    assert post("/wsman/subscriptions/00000000-0000-0000-0000-000000000000/1",
                sample("owinec-raw-03-client.raw.xml"))[0] == 404
    (row,) = spool.wef_clients()
    assert row["events"] == 21 and row["state"] == "enumerated"
    spool.close()
