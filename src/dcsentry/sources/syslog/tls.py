"""TLS for the syslog listener (RFC 5425): the server context from file paths, and who the client is.

Client certificates are how a TLS syslog server tells DCs/SIEM relays from anyone else on the
network, so a CA file turns verification on; `require_client_cert` (the default when a CA is given)
refuses clients without a certificate from that CA. Expiry and chain are checked by OpenSSL.
"""

from __future__ import annotations

import os
import ssl
from typing import Any


def server_context(certfile: str | os.PathLike[str], keyfile: str | os.PathLike[str] | None = None, *,
                   client_ca: str | os.PathLike[str] | None = None, require_client_cert: bool = True,
                   password: str | None = None) -> ssl.SSLContext:
    """A server-side SSLContext: TLS >= 1.2, the given certificate chain and key.

    `client_ca` (a PEM file of CA certificates) enables client-certificate verification: required
    when `require_client_cert`, else checked only if the client presents one.
    """
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.options |= ssl.OP_NO_COMPRESSION | ssl.OP_CIPHER_SERVER_PREFERENCE
    ctx.options |= getattr(ssl, "OP_NO_RENEGOTIATION", 0)  # client renegotiation is a cheap CPU DoS
    # No session tickets: syslog clients only write, so TLS 1.3 tickets sit unread in their socket and
    # turn their close() into a RST, which discards what our kernel buffer still holds for us.
    ctx.options |= ssl.OP_NO_TICKET
    ctx.num_tickets = 0
    ctx.load_cert_chain(os.fspath(certfile), os.fspath(keyfile) if keyfile else None, password)
    if client_ca is not None:
        ctx.load_verify_locations(cafile=os.fspath(client_ca))
        ctx.verify_mode = ssl.CERT_REQUIRED if require_client_cert else ssl.CERT_OPTIONAL
    return ctx


def peer_common_name(cert: dict[str, Any] | None) -> str | None:
    """The subject CN of a verified peer certificate (as `SSLObject.getpeercert()` returns it), if any."""
    if not cert:
        return None
    for rdn in cert.get("subject", ()):
        for key, value in rdn:
            if key == "commonName":
                return str(value)
    return None
