"""WEF over HTTP with Kerberos: real KDC, real tickets, real GSS encryption (sources/wef/kerberos.py).

A temporary MIT realm (krbkit) issues the DC's machine account `DC01$` a TGT from its keytab;
the client half (wefclient_kerberos, written from MS-WSMV/RFC 4121/RFC 4178, not from the
server) authenticates to a `KerberosAcceptor` built from a keytab holding the collector's
HTTP/ and HOST/ keys, and the two exchange encrypted SOAP both ways. The byte-level facts
checked against the real Windows capture in ../shared/reference/wef-samples are: the AP-REP
shape, wrap tokens `05 04` with flags 0x06/0x07, EC 0, RRC 28, a 60-byte header, and a framing
overhead of exactly 302 bytes for a 4-digit Length (Windows: 3542 - 3240, 8974 - 8672 and
1736 - 1434), i.e. part headers without the TAB MS-WSMV describes (with it: 305).
No real Windows *encrypted* body with its key exists (reference gap), so the ciphertext side
is proven between MIT's SSPI-compatible IOV wrap and the server, per the specification.
"""

from __future__ import annotations

import base64
import os
import struct
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from conftest import SHARED
from krbkit import Realm, in_process, start_realm
from wefclient_kerberos import MS_KRB5, NTLMSSP, KerberosClient, der_items, neg_token_resp, wrap_header

from dcsentry.sources.wef.kerberos import AuthError, KerberosAcceptor

HOST = "wec.dcsentry.test"
SAMPLES = SHARED / "reference" / "wef-samples"
ENUMERATE = (SAMPLES / "openwec-enumerate-request.utf16le.bin").read_bytes()  # real Windows SOAP, 3240 bytes


@pytest.fixture(scope="module")
def realm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Realm]:
    root = tmp_path_factory.mktemp("realm")
    with start_realm(root, host=HOST, clients=("DC01$", "DC02$")) as r, in_process(r):
        r.keytabs["mixed"] = r.add("HTTP/mixed.dcsentry.test", "cifs/mixed.dcsentry.test", keytab=root / "mixed.keytab")
        r.add("HTTP/stale.dcsentry.test", keytab=root / "stale.keytab")
        r.rekey("HTTP/stale.dcsentry.test", root / "fresh.keytab")  # the KDC now uses kvno 2; stale.keytab has 1
        yield r


@pytest.fixture(scope="module")
def ccache(realm: Realm) -> str:
    return realm.kinit("DC01$", realm.keytabs["DC01$"], realm.root / "dc01.ccache")


@pytest.fixture(scope="module")
def acceptor(realm: Realm) -> KerberosAcceptor:
    return KerberosAcceptor(str(realm.keytabs["service"]))


def connect(acceptor: KerberosAcceptor, ccache: str, scheme: str = "Kerberos", service: str = "HTTP",
            spnego: str = "windows", host: str = HOST):
    client = KerberosClient(host, ccache, scheme, service, spnego)
    sec = acceptor.new_context()
    token = sec.step(client.authorization())
    client.accept(token)
    return client, sec


@pytest.mark.parametrize("scheme,service,spnego", [
    ("Kerberos", "HTTP", "-"), ("Kerberos", "HOST", "-"),
    ("Negotiate", "HTTP", "windows"), ("Negotiate", "HOST", "gssapi")])
def test_authenticate_and_exchange_encrypted_soap(acceptor, ccache, scheme, service, spnego):
    client, sec = connect(acceptor, ccache, scheme, service, spnego)
    assert sec.complete and sec.principal == "DC01$@DCSENTRY.TEST" and sec.scheme == scheme
    for i in range(3):  # several messages each way: sequence numbers advance on both sides
        soap = ENUMERATE if i == 0 else ENUMERATE + b"<\x00!\x00-\x00-\x00>\x00" * i
        body, ctype = client.encrypt(soap)
        assert sec.unwrap(body, ctype) == soap
        assert sec.original_type == "application/soap+xml;charset=UTF-16"
        reply_body, reply_type = sec.wrap(soap[::-1] if i else soap)
        plain, header, otype = client.decrypt(reply_body, reply_type)
        assert plain == (soap[::-1] if i else soap)
        # as Windows' collector: CFX wrap token, SentByAcceptor|Sealed|AcceptorSubkey, EC 0, RRC 28
        assert (header.tok_id, header.flags, header.ec, header.rrc) == (b"\x05\x04", 0x07, 0, 28)
    assert otype == "application/soap+xml;charset=UTF-8"  # the reversed bytes have no BOM
    # the client's tokens are what the Windows capture shows: flags 0x06, EC 0, RRC 28
    assert {(h.tok_id, h.flags, h.ec, h.rrc) for h in client.sent} == {(b"\x05\x04", 0x06, 0, 28)}
    assert [h.seq for h in client.sent] == sorted(h.seq for h in client.sent)


def test_framing_bytes_match_the_windows_capture(acceptor, ccache):
    client, sec = connect(acceptor, ccache)
    body, ctype = client.encrypt(ENUMERATE)
    assert len(body) == 3542  # the captured Windows Enumerate: Length=3240, Content-Length 3542
    assert sec.unwrap(body, ctype) == ENUMERATE
    tabbed, ctype = client.encrypt(ENUMERATE, tabs=True)  # MS-WSMV's / pywinrm's form
    assert len(tabbed) == 3545 and sec.unwrap(tabbed, ctype) == ENUMERATE
    reply, reply_type = sec.wrap(ENUMERATE)
    assert reply_type == 'multipart/encrypted;protocol="application/HTTP-Kerberos-session-encrypted";' \
                         'boundary="Encrypted Boundary"'
    head = (b"--Encrypted Boundary\r\nContent-Type: application/HTTP-Kerberos-session-encrypted\r\n"
            b"OriginalContent: type=application/soap+xml;charset=UTF-16;Length=3240\r\n"
            b"--Encrypted Boundary\r\nContent-Type: application/octet-stream\r\n")
    assert reply.startswith(head) and reply.endswith(b"--Encrypted Boundary--\r\n")
    assert struct.unpack_from("<I", reply, len(head))[0] == 60 and len(reply) == 3542
    wrap_header(reply[len(head) + 4:len(head) + 64])  # a well-formed RFC 4121 header


def test_mutual_authentication_token_has_the_captured_shape(acceptor, ccache):
    client = KerberosClient(HOST, ccache)
    sec = acceptor.new_context()
    token = sec.step(client.authorization())
    scheme, _, b64 = token.partition(" ")
    raw = base64.b64decode(b64)
    # GSS framing + krb5 OID + TOK_ID 02 00 + KRB-AP-REP ([APPLICATION 15]), as in frame 3732
    [(tag, inner)] = der_items(raw)
    assert scheme == "Kerberos" and tag == 0x60 and inner[:11] == bytes.fromhex("06092a864886f712010202")
    assert inner[11:13] == b"\x02\x00" and inner[13] == 0x6F
    client.accept(token)


def test_windows_spnego_answer(acceptor, ccache):
    """Windows lists MS-KRB5 before KRB5; the answer is accept-completed with the AP-REP inside."""
    client = KerberosClient(HOST, ccache, "Negotiate")
    sec = acceptor.new_context()
    token = sec.step(client.authorization())
    resp = neg_token_resp(base64.b64decode(token.split(" ", 1)[1]))
    assert resp.state == 0 and resp.mech == MS_KRB5 and resp.token[0] == 0x60  # echoes Windows' first mech
    assert resp.mic is None  # the preferred mech was taken: no MIC round trip (RFC 4178 5)
    client.accept(token)
    body, ctype = client.encrypt(ENUMERATE)
    assert "HTTP-SPNEGO-session-encrypted" in ctype and sec.unwrap(body, ctype) == ENUMERATE
    assert "HTTP-SPNEGO-session-encrypted" in sec.wrap(b"x")[1]


def test_sldc_payload_is_unwrapped_as_sent(acceptor, ccache):
    """Windows compresses, then encrypts: Length is the compressed size (reference fact 3)."""
    sldc = (SAMPLES / "openwec-heartbeat-request.sldc.bin").read_bytes()
    client, sec = connect(acceptor, ccache)
    body, ctype = client.encrypt(sldc)
    assert b";Length=1006\r\n" in body and sec.unwrap(body, ctype) == sldc


def test_large_envelope(acceptor, ccache):
    client, sec = connect(acceptor, ccache)
    soap = b"\xff\xfe" + os.urandom(512000 - 2)
    assert sec.unwrap(*client.encrypt(soap)) == soap
    assert client.decrypt(*sec.wrap(soap))[0] == soap


def test_reauthentication_on_the_same_connection(realm, acceptor, ccache):
    client, sec = connect(acceptor, ccache)
    other = realm.kinit("DC02$", realm.keytabs["DC02$"], realm.root / "dc02.ccache")
    client2 = KerberosClient(HOST, other)
    client2.accept(sec.step(client2.authorization()))
    assert sec.principal == "DC02$@DCSENTRY.TEST"
    assert sec.unwrap(*client2.encrypt(b"after")) == b"after"


def test_lenient_framing(acceptor, ccache):
    """Tabs and spaces around headers, LF line ends, a MIME blank line before the binary part."""
    client, sec = connect(acceptor, ccache)
    body, ctype = client.encrypt(ENUMERATE, tabs=True)
    head, binary = body.split(b"octet-stream\r\n", 1)  # edit the text part only, never the ciphertext
    head = head.replace(b"\r\n\t", b"\r\n \t").replace(b": ", b":  ").replace(b"\r\n", b"\n")
    ctype = ctype.replace('"Encrypted Boundary"', '"Encrypted Boundary" ')
    assert sec.unwrap(head + b"octet-stream\r\n\r\n" + binary, ctype) == ENUMERATE


# -- refusals ---------------------------------------------------------------------------------------
def _binary_at(body: bytes) -> int:
    """Offset of the 4-byte header length in a framed body."""
    return body.index(b"application/octet-stream\r\n") + len(b"application/octet-stream\r\n")


def test_unauthenticated_connection_refuses_bodies(acceptor, ccache):
    sec = acceptor.new_context()
    assert not sec.complete and sec.principal is None
    client, _ = connect(acceptor, ccache)
    with pytest.raises(AuthError):
        sec.unwrap(*client.encrypt(ENUMERATE))
    with pytest.raises(AuthError):
        sec.wrap(ENUMERATE)


@pytest.mark.parametrize("offset", [2, 8, 20, 63, 64 + 100, -25], ids=[
    "token-flags", "token-seq", "rotated-checksum", "confounder", "ciphertext", "last-byte"])
def test_tampered_message_fails_integrity(acceptor, ccache, offset):
    client, sec = connect(acceptor, ccache)
    body, ctype = client.encrypt(ENUMERATE)
    pos = _binary_at(body) + 4 + offset if offset >= 0 else len(body) + offset
    before = acceptor.counters["integrity_failed"]
    with pytest.raises(AuthError, match="integrity"):
        sec.unwrap(body[:pos] + bytes([body[pos] ^ 0x01]) + body[pos + 1:], ctype)
    assert acceptor.counters["integrity_failed"] == before + 1
    assert not sec.complete and sec.principal is None  # the connection must authenticate again


def test_replay_reflection_and_cross_connection_bodies_fail(acceptor, ccache):
    client, sec = connect(acceptor, ccache)
    body, ctype = client.encrypt(ENUMERATE)
    assert sec.unwrap(body, ctype) == ENUMERATE
    with pytest.raises(AuthError):  # the same body again on the same connection
        sec.unwrap(body, ctype)
    client, sec = connect(acceptor, ccache)
    with pytest.raises(AuthError):  # the server's own reply sent back to it (direction flag)
        sec.unwrap(*sec.wrap(ENUMERATE))
    client2, sec2 = connect(acceptor, ccache)
    with pytest.raises(AuthError):  # a body encrypted for another connection's session key
        sec2.unwrap(*client.encrypt(ENUMERATE))


def test_wrong_service_key_is_refused(realm, ccache, tmp_path):
    stale = KerberosAcceptor(str(realm.root / "stale.keytab"))  # kvno 1; the KDC issues kvno 2
    for scheme in ("Kerberos", "Negotiate"):  # the log says why, not a pyspnego internal
        with pytest.raises(AuthError, match=r"HTTP/stale.dcsentry.test@DCSENTRY.TEST kvno 2 not found in keytab"):
            connect(stale, ccache, scheme, host="stale.dcsentry.test")
    connect(KerberosAcceptor(str(realm.root / "fresh.keytab")), ccache, host="stale.dcsentry.test")
    with start_realm(tmp_path / "other", name="OTHER.TEST", host=HOST) as other:  # same SPNs, other keys
        foreign = KerberosAcceptor(str(other.keytabs["service"]))
    with pytest.raises(AuthError):
        connect(foreign, ccache)
    assert foreign.counters["auth_failed"] == 1 and foreign.counters["auth_ok"] == 0


def test_service_restriction(realm, ccache):
    keytab = str(realm.keytabs["mixed"])
    strict = KerberosAcceptor(keytab, services=("HTTP", "HOST"))
    connect(strict, ccache, host="mixed.dcsentry.test")
    with pytest.raises(AuthError, match="cifs/mixed.dcsentry.test"):
        connect(strict, ccache, service="cifs", host="mixed.dcsentry.test")
    assert strict.counters["auth_wrong_service"] == 1
    connect(KerberosAcceptor(keytab), ccache, service="cifs", host="mixed.dcsentry.test")  # default: the keytab decides


def _ntlm_only() -> str:
    from wefclient_kerberos import neg_token_init

    token, _ = neg_token_init(b"NTLMSSP\x00\x01\x00\x00\x00\x07\x82\x08\xa2" + bytes(16), mechs=(NTLMSSP,))
    return "Negotiate " + base64.b64encode(token).decode()


@pytest.mark.parametrize("header", [
    "", "Kerberos", "Kerberos    ", "Kerberos !!!not base64!!!", "Kerberos " + base64.b64encode(bytes(10)).decode(),
    "Kerberos " + base64.b64encode(os.urandom(300)).decode(), "Negotiate " + base64.b64encode(os.urandom(300)).decode(),
    "Negotiate YIIBAAYGKwYBBQUC", "Basic dXNlcjpwYXNz", "NTLM TlRMTVNTUAABAAAAB4IIogAAAAAAAAAAAAAAAAAAAAA=",
    "Kerberos " + "A" * 200_000, _ntlm_only()], ids=lambda h: h[:24])
def test_garbage_authorization_is_refused(acceptor, header):
    sec = acceptor.new_context()
    with pytest.raises(AuthError):
        sec.step(header)
    assert not sec.complete and sec.principal is None


def test_truncated_and_flipped_ap_req(acceptor, ccache):
    for cut in (10, 100, 400, -1):
        auth = KerberosClient(HOST, ccache).authorization()
        raw = base64.b64decode(auth.split(" ", 1)[1])
        with pytest.raises(AuthError):
            acceptor.new_context().step("Kerberos " + base64.b64encode(raw[:cut]).decode())
    for pos in range(20, 700, 37):
        raw = bytearray(base64.b64decode(KerberosClient(HOST, ccache).authorization().split(" ", 1)[1]))
        raw[pos % len(raw)] ^= 0x40
        sec = acceptor.new_context()
        try:
            sec.step("Kerberos " + base64.b64encode(bytes(raw)).decode())
        except AuthError:
            continue
        assert sec.principal == "DC01$@DCSENTRY.TEST"  # a flip in an unprotected field may still verify


MALFORMED = {
    "not-multipart": (lambda b: b, lambda c: "application/soap+xml;charset=UTF-16"),
    "no-boundary": (lambda b: b, lambda c: c.split(";boundary")[0]),
    "credssp-protocol": (lambda b: b, lambda c: c.replace("HTTP-Kerberos", "HTTP-CredSSP")),
    "empty": (lambda b: b"", lambda c: c),
    "no-closing-boundary": (lambda b: b[:-24], lambda c: c),
    "junk-after-close": (lambda b: b + b"junk", lambda c: c),
    "truncated-head": (lambda b: b[:60], lambda c: c),
    "part-type-mismatch": (lambda b: b.replace(b"HTTP-Kerberos", b"HTTP-SPNEGO", 1), lambda c: c),
    "no-original-content": (lambda b: b.replace(b"OriginalContent", b"Original-Stuff", 1), lambda c: c),
    "bad-length": (lambda b: b.replace(b"Length=3240", b"Length=32x0", 1), lambda c: c),
    "huge-header-length": (lambda b: b[:_binary_at(b)] + b"\xff\xff\xff\x7f" + b[_binary_at(b) + 4:], lambda c: c),
    "header-past-end": (lambda b: b[:_binary_at(b)] + b"\xf0\x03\x00\x00" + b[_binary_at(b) + 4:4 + _binary_at(b) + 900]
                        + b"--Encrypted Boundary--\r\n", lambda c: c),
    "text-part": (lambda b: b.replace(b"application/octet-stream", b"text/plain", 1), lambda c: c),
    "preamble": (lambda b: b"hello\r\n" + b, lambda c: c),
}


@pytest.mark.parametrize("case", list(MALFORMED))
def test_malformed_framing_is_a_value_error(acceptor, ccache, case):
    client, sec = connect(acceptor, ccache)
    body, ctype = client.encrypt(ENUMERATE)
    mangle_body, mangle_type = MALFORMED[case]
    with pytest.raises(ValueError):
        sec.unwrap(mangle_body(body), mangle_type(ctype))
    assert sec.complete and sec.unwrap(body, ctype) == ENUMERATE  # refused before any crypto


def test_length_mismatch_is_a_value_error(acceptor, ccache):
    client, sec = connect(acceptor, ccache)
    body, ctype = client.encrypt(ENUMERATE)
    with pytest.raises(ValueError, match="Length=3241"):
        sec.unwrap(body.replace(b"Length=3240", b"Length=3241", 1), ctype)


def test_bad_keytabs_are_configuration_errors(tmp_path):
    (tmp_path / "empty.keytab").write_bytes(b"")
    (tmp_path / "junk.keytab").write_bytes(os.urandom(64))
    for name in ("missing.keytab", "empty.keytab", "junk.keytab"):
        with pytest.raises(ValueError, match="keytab"):
            KerberosAcceptor(str(tmp_path / name))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(scheme=st.sampled_from(["Kerberos", "Negotiate"]), token=st.binary(max_size=1500))
def test_fuzzed_tokens_only_raise_auth_error(acceptor, scheme, token):
    sec = acceptor.new_context()
    with pytest.raises(AuthError):
        sec.step(f"{scheme} {base64.b64encode(token).decode()}")


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_fuzzed_bodies_are_refused_or_read_right(acceptor, ccache, data):
    """Byte edits anywhere in a real body (framing or ciphertext) on a real connection: refused
    with ValueError/AuthError, or (an edit the lenient parser forgives) read as sent; never a crash."""
    client, sec = connect(acceptor, ccache)
    body, ctype = client.encrypt(ENUMERATE[:400])
    edits = data.draw(st.lists(st.tuples(st.integers(0, len(body) - 1), st.binary(max_size=3)), min_size=1, max_size=4))
    mangled = bytearray(body)
    for pos, new in edits:
        mangled[pos:pos + 1] = new
    try:
        assert sec.unwrap(bytes(mangled), ctype) == ENUMERATE[:400]
    except (ValueError, AuthError):
        pass
