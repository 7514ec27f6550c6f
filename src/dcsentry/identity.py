"""An event's identity: what makes two received copies the same event, and how far its source can
be trusted. One definition for the one-node processor, the ingest nodes' message ids and the store.

- The key is (computer, channel, record id) when the event has a record id, else a hash of its
  content (the origin left out: the same event re-sent after a reconnect is the same content; the
  sender's counter, `sequence`, kept in: Snare's tells apart identical events of one second).
- The key includes the trust class of the source. An *authenticated* source proved who it is:
  WEF (client certificate or Kerberos) and TLS/RELP-TLS with a verified client certificate. Every
  other source (UDP, TCP, TLS without client certificates, RELP) is *unauthenticated*: anyone who
  can reach the port can claim any computer and any record id. Two copies of one class are one
  event; an unauthenticated copy never suppresses an authenticated one (docs/security.md).
"""

from __future__ import annotations

import hashlib

import msgspec

from .model import WindowsEvent

AUTHENTICATED_TRANSPORTS = frozenset({"wef"})
CERT_TRANSPORTS = frozenset({"tls", "relp-tls"})  # authenticated when the peer showed a verified certificate


def trusted_source(transport: str, peer: str) -> bool:
    """WEF, or a TLS transport whose peer carries its verified certificate name (`...#cn`)."""
    return transport in AUTHENTICATED_TRANSPORTS or (transport in CERT_TRANSPORTS and "#" in peer)


def event_key(ev: WindowsEvent) -> str:
    if ev.record_id is not None:
        return f"{ev.computer}|{ev.channel}|{ev.record_id}"
    body = msgspec.msgpack.encode(msgspec.structs.replace(ev, origin=None))
    return "h|" + hashlib.blake2b(body, digest_size=12).hexdigest()


def event_identity(ev: WindowsEvent, trusted: bool) -> str:
    """The de-duplication id: the event's key in its trust class."""
    return ("a|" if trusted else "u|") + event_key(ev)


def machine_name(identity: str) -> str:
    """The computer an authenticated identity stands for: `DC01$@EXAMPLE.TEST` -> `DC01`,
    `dc01.example.test` (certificate CN) stays as it is."""
    name = identity.split("@", 1)[0] if "@" in identity else identity
    return name.removesuffix("$")
