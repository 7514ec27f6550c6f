"""Syslog input of `dcsentry serve`: UDP, TCP and TLS listeners (RFC 5426, 6587, 5425) feeding a consumer in batches."""

from .framing import Deframer
from .listeners import COUNTERS, Consumer, ListenerSet, Received
from .tls import peer_common_name, server_context

__all__ = ["COUNTERS", "Consumer", "Deframer", "ListenerSet", "Received", "peer_common_name", "server_context"]
