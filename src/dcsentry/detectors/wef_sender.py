"""Events delivered over WEF whose Computer is not the computer that delivered them.

The certificate CN or Kerberos principal that delivered an event is not bound to the event's
`Computer` by anything in the protocol, so a compromised forwarder could write events "from" a DC.
A mismatch raises `wef-sender-mismatch`, except for senders on the `intermediate_collectors`
allow-list (a relay that forwards others' events legitimately). The check runs where the sender is
known (the intake of either mode); a client re-sending after a lost Ack does not grow the alert.
"""

from __future__ import annotations

from ..alerts import Alert, Evidence
from ..config import Detection
from ..identity import machine_name
from ..model import WindowsEvent
from .base import Incidents, Lru

ALERT = "wef-sender-mismatch"
RECENT_KEYS = 200_000


def sender_of(peer: str) -> str:
    """The authenticated name in a peer (`https://10.0.0.5:50123#dc01.example.test`)."""
    return peer.split("#", 1)[1] if "#" in peer else ""


def _norm(name: str) -> str:
    return name.strip().rstrip(".").lower()


def computer_matches(computer: str, sender: str) -> bool:
    """Full names compare whole when both have a domain part; otherwise the host labels compare
    (a Kerberos principal `DC01$@REALM` names only the host)."""
    c, s = _norm(computer), _norm(machine_name(sender))
    if not c or not s:
        return False
    if "." in c and "." in s:
        return c == s
    return c.split(".", 1)[0] == s.split(".", 1)[0]


class WefSenderCheck:
    def __init__(self, detection: Detection, intermediates: list[str]) -> None:
        self.allowed = {_norm(n) for n in intermediates} | {_norm(machine_name(n)) for n in intermediates}
        self.incidents = Incidents(detection)
        self._recent: Lru[tuple[str, str, int], None] = Lru(RECENT_KEYS)

    def check(self, ev: WindowsEvent, peer: str) -> Alert | None:
        """The grown alert when `ev` claims another computer than its sender, else None."""
        sender = sender_of(peer)
        if not sender or computer_matches(ev.computer, sender):
            return None
        if _norm(sender) in self.allowed or _norm(machine_name(sender)) in self.allowed:
            return None
        if ev.record_id is not None:  # the same event again (a re-send): the alert does not grow
            key3 = (ev.computer, ev.channel, ev.record_id)
            if key3 in self._recent:
                return None
            self._recent.touch(key3, lambda: None)
        key = f"{_norm(sender)}|{_norm(ev.computer)}"
        ip = peer.split("://", 1)[-1].split("#", 1)[0].rsplit(":", 1)[0].strip("[]")
        evidence = Evidence(ev.event_id, ev.computer, ev.record_id, ev.time, str(ev.origin) if ev.origin else None)
        a = self.incidents.raise_or_grow(ALERT, key, ev.time, [evidence])
        a.count += 1
        a.hosts = [ev.computer]
        a.dcs = [ev.computer]
        a.details = {"sender": sender, "sender_address": ip, "claimed_computer": ev.computer}
        a.description = (
            f"{a.count} event(s) delivered over Windows Event Forwarding by {sender} ({ip}) claim to come from "
            f"{ev.computer}. The protocol does not bind an event's Computer to the client that sends it, so a "
            f"compromised or misconfigured forwarder can write events in another computer's name. If {sender} is "
            f"a legitimate intermediate collector, add it to [wef] intermediate_collectors; otherwise investigate "
            f"{sender} and treat events from it claiming to be {ev.computer} as untrusted.")
        return a
