"""What the processor does for events that came over WEF: decode them, drop what a client sent
twice, and check that each event's Computer is the computer that delivered it.

- Duplicates: a client re-sends from its last acknowledged bookmark, so after a lost Ack the
  same events come again. They are removed by (computer, channel, record id) before detection, so
  nothing is counted, learned or alerted twice: a per-(computer, channel) high-water mark lets the
  common case (a new, higher record id) through without a lookup; anything at or below it is
  checked against recently seen keys and then against the store's events table.
- Sender identity: the certificate CN or Kerberos principal that delivered an event is not bound
  to the event's `Computer` by anything in the protocol, so a compromised forwarder could write
  events "from" a DC. A mismatch raises `wef-sender-mismatch`, except for senders on the
  `intermediate_collectors` allow-list (a relay that forwards others' events legitimately).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable

from ...alerts import Alert, Evidence
from ...config import Detection
from ...detectors.base import Incidents
from ...formats.xml import parse_event_xml
from ...model import Origin, WindowsEvent
from .status import machine_name

RECENT_KEYS = 200_000
ALERT = "wef-sender-mismatch"


def decode_wef(data: bytes, origin: Origin) -> tuple[str, WindowsEvent]:
    """A spooled WEF event (its XML, UTF-8) -> ("wef", event). Raises ValueError."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"WEF event is not UTF-8: {exc.reason}") from None
    return "wef", parse_event_xml(text, origin)


def sender_of(peer: str) -> str:
    """The authenticated name in a spool row's peer (`https://10.0.0.5:50123#dc01.example.test`)."""
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


class WefChecks:
    """Per-processor state for WEF rows; `seen` asks the store whether an event key is stored and
    `high` for the highest stored record id of a (computer, channel)."""

    def __init__(self, detection: Detection, intermediates: list[str],
                 seen: Callable[[str, str, int], bool], high: Callable[[str, str], int | None]) -> None:
        self.allowed = {_norm(n) for n in intermediates} | {_norm(machine_name(n)) for n in intermediates}
        self.incidents = Incidents(detection)
        self.seen, self.high = seen, high
        self._recent: OrderedDict[tuple[str, str, int], None] = OrderedDict()
        self._high: dict[tuple[str, str], int] = {}
        self.duplicates = 0

    def duplicate(self, ev: WindowsEvent, replay: bool) -> bool:
        """True for an event already processed. `replay` (rebuilding state after a restart, every
        event is in the store already) consults memory only."""
        rid = ev.record_id
        if rid is None:
            return False
        pair = (ev.computer, ev.channel)
        key = (ev.computer, ev.channel, rid)
        hw = self._high.get(pair)
        if hw is None:
            hw = -1 if replay else (self.high(*pair) or -1)
        dup = False
        if rid <= hw:
            dup = key in self._recent or (not replay and self.seen(*key))
        if not dup:
            self._high[pair] = max(hw, rid)
            self._recent[key] = None
            if len(self._recent) > RECENT_KEYS:
                self._recent.popitem(last=False)
        if len(self._high) > RECENT_KEYS:
            self._high.clear()
        return dup

    def check_sender(self, ev: WindowsEvent, peer: str) -> Alert | None:
        sender = sender_of(peer)
        if not sender or computer_matches(ev.computer, sender):
            return None
        if _norm(sender) in self.allowed or _norm(machine_name(sender)) in self.allowed:
            return None
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
