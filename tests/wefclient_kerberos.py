"""The Windows forwarder's Kerberos half, written from the specifications, not from dcsentry.

What a Windows WinRM client does on port 5985 (MS-WSMV 2.2.9.1, RFC 4559, RFC 4178, RFC 4121):
- authenticate once per TCP connection: POST with an empty body and `Authorization: Kerberos
  <GSS AP-REQ>` (or `Negotiate <SPNEGO NegTokenInit>` listing MS-KRB5, KRB5 and NTLMSSP as
  Windows does), check the server's mutual-authentication token in `WWW-Authenticate`;
- encrypt each SOAP body with `gss_wrap_iov` (HEADER, DATA, PADDING; confidentiality on) and
  frame it as `multipart/encrypted`: part headers, the 4-byte little-endian header length and no
  CRLF before the closing boundary. Windows 10 writes the part headers without the TAB that
  MS-WSMV 2.2.9.1.1.2 asks for (its captured bodies are Length + 302 bytes, which only the
  tab-less layout gives); `tabs=True` writes the MS-WSMV/pywinrm form instead;
- decrypt the replies the same way in reverse.

python-gssapi over MIT krb5 plays SSPI here. The SPNEGO DER and the MIME framing are written out
by hand in this file (deliberately not pyspnego, which the server uses), so a mistake on one side
is not mirrored on the other. Nothing here imports dcsentry.
"""

from __future__ import annotations

import base64
import http.client
import re
import struct
from dataclasses import dataclass

import gssapi
from gssapi.raw import IOV, IOVBufferType, unwrap_iov, wrap_iov

KRB5 = "1.2.840.113554.1.2.2"
MS_KRB5 = "1.2.840.48018.1.2.2"  # what Windows lists first in SPNEGO
NTLMSSP = "1.3.6.1.4.1.311.2.2.10"
SPNEGO = "1.3.6.1.5.5.2"
BOUNDARY = b"Encrypted Boundary"
PROTOCOL = {"Kerberos": "application/HTTP-Kerberos-session-encrypted",
            "Negotiate": "application/HTTP-SPNEGO-session-encrypted"}
SOAP_UTF16 = "application/soap+xml;charset=UTF-16"


# -- DER, just enough for SPNEGO (RFC 4178 section 4.2) --------------------------------------------
def der(tag: int, content: bytes) -> bytes:
    n = len(content)
    if n < 0x80:
        return bytes([tag, n]) + content
    size = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(size)]) + size + content


def der_oid(dotted: str) -> bytes:
    parts = [int(p) for p in dotted.split(".")]
    out = bytearray([40 * parts[0] + parts[1]])
    for p in parts[2:]:
        chunk = [p & 0x7F]
        while p > 0x7F:
            p >>= 7
            chunk.append(0x80 | (p & 0x7F))
        out += bytes(reversed(chunk))
    return der(0x06, bytes(out))


def der_items(data: bytes) -> list[tuple[int, bytes]]:
    """The (tag, content) elements one after another in `data`."""
    out, pos = [], 0
    while pos < len(data):
        tag, n = data[pos], data[pos + 1]
        pos += 2
        if n & 0x80:
            k = n & 0x7F
            n = int.from_bytes(data[pos:pos + k], "big")
            pos += k
        out.append((tag, data[pos:pos + n]))
        pos += n
    return out


def oid_text(content: bytes) -> str:
    first, vals, cur = content[0], [], 0
    for b in content[1:]:
        cur = (cur << 7) | (b & 0x7F)
        if not b & 0x80:
            vals.append(cur)
            cur = 0
    return ".".join(str(v) for v in [first // 40, first % 40, *vals])


def neg_token_init(mech_token: bytes, mechs: tuple[str, ...] = (MS_KRB5, KRB5, NTLMSSP)) -> tuple[bytes, bytes]:
    """(GSS InitialContextToken carrying a NegTokenInit, the DER MechTypeList it lists)."""
    mech_list = der(0x30, b"".join(der_oid(m) for m in mechs))
    init = der(0x30, der(0xA0, mech_list) + der(0xA2, der(0x04, mech_token)))
    return der(0x60, der_oid(SPNEGO) + der(0xA0, init)), mech_list


@dataclass
class NegTokenResp:
    state: int | None
    mech: str | None
    token: bytes | None
    mic: bytes | None


def neg_token_resp(data: bytes) -> NegTokenResp:
    [(tag, body)] = der_items(data)
    assert tag == 0xA1, f"expected a NegTokenResp ([1]), got tag {tag:#x}"
    [(seq, fields)] = der_items(body)
    assert seq == 0x30
    resp = NegTokenResp(None, None, None, None)
    for ftag, fval in der_items(fields):
        [(_, inner)] = der_items(fval)
        if ftag == 0xA0:
            resp.state = inner[0]
        elif ftag == 0xA1:
            resp.mech = oid_text(inner)
        elif ftag == 0xA2:
            resp.token = inner
        elif ftag == 0xA3:
            resp.mic = inner
    return resp


# -- RFC 4121 wrap token header -------------------------------------------------------------------
@dataclass
class WrapHeader:
    tok_id: bytes
    flags: int  # 1 SentByAcceptor, 2 Sealed, 4 AcceptorSubkey
    ec: int
    rrc: int
    seq: int


def wrap_header(header: bytes) -> WrapHeader:
    tok_id, flags, filler, ec, rrc, seq = struct.unpack(">2sBBHHQ", header[:16])
    assert filler == 0xFF, "RFC 4121 filler byte"
    return WrapHeader(tok_id, flags, ec, rrc, seq)


# -- the client ----------------------------------------------------------------------------------
class KerberosClient:
    """One WinRM connection's security: authenticate, then encrypt/decrypt bodies.

    `scheme` "Kerberos" sends the raw krb5 token; "Negotiate" wraps it in a Windows-shaped
    SPNEGO NegTokenInit (`spnego="windows"`) or lets MIT's SPNEGO mechanism build it
    (`spnego="gssapi"`)."""

    FLAGS = (gssapi.RequirementFlag.mutual_authentication | gssapi.RequirementFlag.confidentiality
             | gssapi.RequirementFlag.integrity | gssapi.RequirementFlag.replay_detection
             | gssapi.RequirementFlag.out_of_sequence_detection)

    def __init__(self, host: str, ccache: str, scheme: str = "Kerberos", service: str = "HTTP",
                 spnego: str = "windows") -> None:
        assert scheme in PROTOCOL
        self.scheme, self.spnego = scheme, spnego
        creds = gssapi.Credentials(usage="initiate", store={"ccache": ccache})
        mech = gssapi.OID.from_int_seq(SPNEGO if scheme == "Negotiate" and spnego == "gssapi" else KRB5)
        target = gssapi.Name(f"{service}@{host}", gssapi.NameType.hostbased_service)
        self.ctx = gssapi.SecurityContext(name=target, creds=creds, usage="initiate", mech=mech, flags=self.FLAGS)
        self._mech_list = b""
        self.sent: list[WrapHeader] = []

    def authorization(self) -> str:
        """The `Authorization` header value of the first (empty-bodied) POST."""
        token = self.ctx.step()
        if self.scheme == "Negotiate" and self.spnego == "windows":
            token, self._mech_list = neg_token_init(token)
        return f"{self.scheme} {base64.b64encode(token).decode()}"

    def accept(self, www_authenticate: str | None) -> None:
        """Check the server's mutual-authentication token; afterwards the context is complete."""
        assert www_authenticate, "the server sent no mutual-authentication token"
        scheme, _, b64 = www_authenticate.partition(" ")
        assert scheme == self.scheme, f"server answered with scheme {scheme!r}"
        token = base64.b64decode(b64)
        if self.scheme == "Negotiate" and self.spnego == "windows":
            resp = neg_token_resp(token)
            assert resp.state == 0, f"SPNEGO negState {resp.state} (0 = accept-completed)"
            assert resp.mech in (MS_KRB5, KRB5), resp.mech
            assert resp.token, "NegTokenResp without the AP-REP"
            out = self.ctx.step(resp.token)
            if resp.mic is not None:  # RFC 4178 5: verify the acceptor's MIC over our mech list
                self.ctx.verify_signature(self._mech_list, resp.mic)
        else:
            out = self.ctx.step(token)
        assert not out and self.ctx.complete, "context not complete after the server's token"

    @property
    def complete(self) -> bool:
        return bool(self.ctx.complete)

    def encrypt(self, soap: bytes, original_type: str = SOAP_UTF16, tabs: bool = False) -> tuple[bytes, str]:
        """(multipart/encrypted body, Content-Type) as a Windows client sends them."""
        iov = IOV(IOVBufferType.header, soap, IOVBufferType.padding, std_layout=False)
        assert wrap_iov(self.ctx, iov, confidential=True), "wrap did not encrypt"
        header, data, padding = iov[0].value, iov[1].value, iov[2].value or b""
        self.sent.append(wrap_header(header))
        protocol = PROTOCOL[self.scheme]
        ht = b"\t" if tabs else b""
        body = (b"--" + BOUNDARY + b"\r\n"
                + ht + b"Content-Type: " + protocol.encode() + b"\r\n"
                + ht + b"OriginalContent: type=" + original_type.encode() + b";Length=%d\r\n" % len(soap)
                + b"--" + BOUNDARY + b"\r\n"
                + ht + b"Content-Type: application/octet-stream\r\n"
                + struct.pack("<I", len(header)) + header + data + padding
                + b"--" + BOUNDARY + b"--\r\n")
        ctype = f'multipart/encrypted;protocol="{protocol}";boundary="{BOUNDARY.decode()}"'
        return body, ctype

    PART = re.compile(rb"\A--Encrypted Boundary\r\n\t?Content-Type: (?P<proto>[^\r\n]+)\r\n"
                      rb"\t?OriginalContent: type=(?P<type>[^\r\n]+?);Length=(?P<len>\d+)\r\n"
                      rb"--Encrypted Boundary\r\n\t?Content-Type: application/octet-stream\r\n", re.S)

    def decrypt(self, body: bytes, content_type: str) -> tuple[bytes, WrapHeader, str]:
        """(cleartext, the server's wrap header, the OriginalContent type) of an encrypted reply;
        the reply must be framed as MS-WSMV 2.2.9.1 says (the part-header TAB optional)."""
        protocol = PROTOCOL[self.scheme]
        assert content_type == f'multipart/encrypted;protocol="{protocol}";boundary="Encrypted Boundary"', content_type
        m = self.PART.match(body)
        assert m, f"reply is not framed as MS-WSMV 2.2.9.1 says: {body[:200]!r}"
        assert m["proto"].decode() == protocol
        tail = b"--Encrypted Boundary--\r\n"
        assert body.endswith(tail)
        payload = body[m.end():-len(tail)]
        (hlen,) = struct.unpack_from("<I", payload)
        header, data = payload[4:4 + hlen], payload[4 + hlen:]
        iov = IOV((IOVBufferType.header, False, header), (IOVBufferType.data, False, data), std_layout=False)
        res = unwrap_iov(self.ctx, iov)
        assert res.encrypted, "reply was not encrypted"
        plain = iov[1].value
        assert len(plain) == int(m["len"]), "OriginalContent Length is not the cleartext length"
        return plain, wrap_header(header), m["type"].decode()


class KerberosHTTP:
    """A keep-alive HTTP/1.1 connection speaking WinRM's Kerberos-encrypted POSTs."""

    HEADERS = {"User-Agent": "Microsoft WinRM Client", "Connection": "Keep-Alive"}

    def __init__(self, port: int, client: KerberosClient, host: str = "127.0.0.1", timeout: float = 30,
                 server_name: str | None = None) -> None:
        """Connect to host:port; `server_name` goes in the Host header (the name the SPN is for,
        which the test machine's resolver does not know)."""
        self.conn = http.client.HTTPConnection(host, port, timeout=timeout)
        self.client = client
        self.headers = dict(self.HEADERS)
        if server_name:
            self.headers["Host"] = f"{server_name}:{port}"

    def authenticate(self, path: str, content_encoding: str | None = None) -> http.client.HTTPResponse:
        """The empty auth POST; returns the response (its body read) after checking mutual auth."""
        headers = {**self.headers, "Authorization": self.client.authorization(), "Content-Length": "0",
                   "Content-Type": SOAP_UTF16}
        if content_encoding:
            headers["Content-Encoding"] = content_encoding
        self.conn.request("POST", path, body=b"", headers=headers)
        resp = self.conn.getresponse()
        resp.read()
        if resp.status == 200:
            self.client.accept(resp.getheader("WWW-Authenticate"))
        return resp

    def post(self, path: str, payload: bytes, content_encoding: str | None = None,
             original_type: str = SOAP_UTF16) -> tuple[int, bytes, http.client.HTTPResponse]:
        """Encrypt and POST `payload` (SLDC-compressed already when `content_encoding` says so);
        returns (status, decrypted reply body or b"", response)."""
        body, ctype = self.client.encrypt(payload, original_type)
        headers = {**self.headers, "Content-Type": ctype}
        if content_encoding:
            headers["Content-Encoding"] = content_encoding
        self.conn.request("POST", path, body=body, headers=headers)
        resp = self.conn.getresponse()
        raw = resp.read()
        if raw and resp.getheader("Content-Type", "").startswith("multipart/encrypted"):
            return resp.status, self.client.decrypt(raw, resp.getheader("Content-Type"))[0], resp
        return resp.status, raw, resp

    def close(self) -> None:
        self.conn.close()
