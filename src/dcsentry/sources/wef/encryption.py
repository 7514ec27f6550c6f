"""The `multipart/encrypted` framing of WinRM message encryption (MS-WSMV 2.2.9.1).

Only the byte layout lives here; the GSS wrap/unwrap is in kerberos.py. A Kerberos/SPNEGO
encrypted WinRM body is an RFC 1847 two-part MIME body:

    --Encrypted Boundary\r\n
    Content-Type: application/HTTP-Kerberos-session-encrypted\r\n
    OriginalContent: type=application/soap+xml;charset=UTF-16;Length=<cleartext bytes>\r\n
    --Encrypted Boundary\r\n
    Content-Type: application/octet-stream\r\n
    <uint32 LE length of the GSS header><GSS header><ciphertext>--Encrypted Boundary--\r\n

MS-WSMV puts a TAB before each part header, and pywinrm/pypsrp write one; the real Windows
capture in the reference does not: its three encrypted bodies (Windows 10 client and Windows
WEC replies) are each exactly 302 bytes longer than their 4-digit Length, which is this layout
without tabs (with tabs it would be 305). Replies are written byte for byte as Windows' own
collector writes them; the parser takes the part headers with or without the tab, tolerates a
blank line after the octet-stream header (plain MIME would have one) and LF-only line ends, and
refuses everything else with `ValueError`, so a malformed body is a 400 and never reaches the
crypto.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

BOUNDARY = "Encrypted Boundary"
KERBEROS = "application/HTTP-Kerberos-session-encrypted"
SPNEGO = "application/HTTP-SPNEGO-session-encrypted"
PROTOCOLS = {KERBEROS.lower(): KERBEROS, SPNEGO.lower(): SPNEGO}
OCTET_STREAM = "application/octet-stream"
# A GSS wrap header is 60 bytes for AES (RFC 4121 with RRC 28), 45 with RC4; anything much
# larger is not a header but a framing error.
MAX_HEADER = 1024


@dataclass(frozen=True)
class Encrypted:
    """One encrypted WinRM message, split into what `gss_unwrap_iov` needs."""

    protocol: str  # KERBEROS or SPNEGO, canonical spelling
    original_type: str  # the cleartext's media type, e.g. "application/soap+xml;charset=UTF-16"
    length: int  # OriginalContent Length: the number of cleartext bytes
    header: bytes  # the GSS wrap token header (RFC 4121 token header + rotated checksum part)
    data: bytes  # the ciphertext (and padding, if the mechanism used any)


def _params(text: str) -> tuple[str, dict[str, str]]:
    """`a/b; k="v"; k2=v2` -> ("a/b", {"k": "v", "k2": "v2"}); names lower-cased, quotes removed.

    Quoted values may contain `;` (they do not in WinRM, but a boundary may)."""
    parts: list[str] = []
    cur: list[str] = []
    quoted = False
    for ch in text:
        if ch == '"':
            quoted = not quoted
        if ch == ";" and not quoted:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    parts.append("".join(cur))
    params: dict[str, str] = {}
    for p in parts[1:]:
        name, eq, value = p.partition("=")
        if not eq or not name.strip():
            if p.strip():
                raise ValueError(f"malformed parameter {p.strip()!r}")
            continue
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] == '"':
            value = value[1:-1]
        params[name.strip().lower()] = value
    return parts[0].strip(), params


def parse_content_type(value: str) -> tuple[str, str]:
    """The (protocol, boundary) of a `multipart/encrypted` Content-Type header value."""
    media, params = _params(value)
    if media.lower() != "multipart/encrypted":
        raise ValueError(f"expected multipart/encrypted, got {media or 'no'} content type")
    protocol = PROTOCOLS.get(params.get("protocol", "").lower())
    if protocol is None:
        raise ValueError(f"unsupported multipart/encrypted protocol {params.get('protocol')!r}")
    boundary = params.get("boundary", "")
    if not boundary or len(boundary) > 70 or any(c in boundary for c in "\r\n"):
        raise ValueError("multipart/encrypted without a usable boundary")
    return protocol, boundary


def _line(body: bytes, pos: int) -> tuple[bytes, int]:
    """The line starting at `pos` (without its CRLF/LF) and where the next one starts."""
    end = body.find(b"\n", pos)
    if end < 0:
        raise ValueError("truncated multipart/encrypted body")
    return body[pos:end].rstrip(b"\r"), end + 1


def _header(line: bytes) -> tuple[str, str]:
    name, colon, value = line.decode("latin-1").strip().partition(":")
    if not colon or not name.strip():
        raise ValueError(f"malformed part header {line[:80]!r}")
    return name.strip().lower(), value.strip()


def split(body: bytes, content_type: str) -> Encrypted:
    """Parse a `multipart/encrypted` body; raises ValueError on anything but the WinRM layout."""
    protocol, boundary = parse_content_type(content_type)
    delim = b"--" + boundary.encode("latin-1")
    pos = 0
    while body.startswith((b"\r\n", b"\n"), pos):  # a preamble of empty lines is harmless
        pos += 2 if body.startswith(b"\r\n", pos) else 1
    line, pos = _line(body, pos)
    if line.rstrip() != delim:
        raise ValueError("multipart/encrypted body does not start with its boundary")
    # Part 1: control information (headers only, up to the next boundary line).
    headers: dict[str, str] = {}
    while True:
        line, pos = _line(body, pos)
        if line.rstrip() == delim:
            break
        if line.strip():
            name, value = _header(line)
            headers[name] = value
        if len(headers) > 16:
            raise ValueError("too many headers in the control part")
    part_type = PROTOCOLS.get(headers.get("content-type", "").lower())
    if part_type != protocol:
        raise ValueError(f"control part Content-Type {headers.get('content-type')!r} does not match {protocol}")
    original = headers.get("originalcontent")
    if original is None:
        raise ValueError("control part has no OriginalContent header")
    otype, oparams = _params(original.replace("type=", "", 1) if original.lower().startswith("type=") else original)
    length_text = oparams.pop("length", "")
    if not length_text.isdigit() or len(length_text) > 12:
        raise ValueError(f"OriginalContent without a valid Length: {original!r}")
    original_type = ";".join([otype] + [f"{k}={v}" for k, v in oparams.items()])
    # Part 2: one header line, then the binary payload runs to the closing delimiter.
    line, pos = _line(body, pos)
    name, value = _header(line)
    if name != "content-type" or value.lower() != OCTET_STREAM:
        raise ValueError(f"encrypted part must be {OCTET_STREAM}, got {line[:80]!r}")
    end = body.rfind(delim + b"--")
    if end < pos or body[end + len(delim) + 2:].strip():
        raise ValueError("multipart/encrypted body does not end with its closing boundary")
    payload = body[pos:end]
    if payload.startswith((b"\r\n", b"\n")) and _implausible(payload):
        payload = payload[2:] if payload.startswith(b"\r\n") else payload[1:]
    if len(payload) < 4:
        raise ValueError("encrypted part too short for its header length")
    (hlen,) = struct.unpack_from("<I", payload)
    if hlen == 0 or hlen > MAX_HEADER or 4 + hlen > len(payload):
        raise ValueError(f"encrypted part header length {hlen} does not fit the {len(payload)}-byte part")
    return Encrypted(protocol, original_type, int(length_text), payload[4:4 + hlen], payload[4 + hlen:])


def _implausible(payload: bytes) -> bool:
    """True when the bytes after the octet-stream header cannot start with a header length,
    so they are the blank line a MIME writer puts after part headers."""
    if len(payload) < 4:
        return True
    (hlen,) = struct.unpack_from("<I", payload)
    return hlen == 0 or hlen > MAX_HEADER


def join(protocol: str, original_type: str, length: int, header: bytes, data: bytes) -> tuple[bytes, str]:
    """Build the body and its Content-Type header value, byte for byte as Windows' WEC does."""
    head = (f"--{BOUNDARY}\r\nContent-Type: {protocol}\r\n"
            f"OriginalContent: type={original_type};Length={length}\r\n"
            f"--{BOUNDARY}\r\nContent-Type: {OCTET_STREAM}\r\n").encode("latin-1")
    body = b"".join((head, struct.pack("<I", len(header)), header, data, f"--{BOUNDARY}--\r\n".encode("latin-1")))
    return body, f'multipart/encrypted;protocol="{protocol}";boundary="{BOUNDARY}"'
