"""Windows events -> activities: what happened, in the words of a responder.

An activity is one authentication attempt, one group membership change or one service creation,
whatever event (or pair of events) told of it.
"""

from __future__ import annotations

from datetime import datetime

import msgspec

from ..alerts import Evidence
from ..model import WindowsEvent


def evidence_of(ev: WindowsEvent) -> Evidence:
    return Evidence(ev.event_id, ev.computer, ev.record_id, ev.time, str(ev.origin) if ev.origin else None)


class AuthActivity(msgspec.Struct, gc=False):
    """One authentication attempt, seen by a DC (4776, 4768, 4771) or by the host accessed (4625)."""

    time: datetime
    protocol: str  # "NTLM" or "Kerberos"
    account: str  # as logged (case kept for display)
    domain: str
    source_host: str  # client workstation name (NTLM) or "" when unknown
    source_ip: str  # client address (Kerberos, 4625) or ""
    reporter: str  # computer that logged it: the DC, or the host accessed for 4625
    result: str  # success / wrong-password / no-such-user / locked / disabled / ...
    status: str  # the raw status code
    evidence: list[Evidence]
    server: str | None = None  # server accessed (NTLM, from 8004 on the same DC)
    logon_type: int | None = None
    account_sid: str = ""  # when the event carries it (4768/4771 TargetSid, 4625 TargetUserSid); 4776 does not

    @property
    def source(self) -> str:
        """The attacker-side key. The address when the logging host saw one (4625, Kerberos): the
        workstation name in an NTLM message is whatever the client chose (Metasploit sends a
        random one per attempt). The workstation name for 4776, which has nothing else."""
        return self.source_ip or self.source_host or "unknown"

    @property
    def account_key(self) -> str:
        return self.account.lower()

    @property
    def failed(self) -> bool:
        return self.result != "success"


class GroupChange(msgspec.Struct, gc=False):
    """A member added to or removed from a security group (4728/4729, 4732/4733, 4756/4757)."""

    time: datetime
    dc: str
    added: bool
    group_name: str
    group_sid: str
    group_domain: str
    scope: str  # global / local / universal
    member_name: str
    member_sid: str
    actor_name: str
    actor_sid: str
    actor_domain: str
    evidence: list[Evidence]
    sensitive: str | None = None  # why the group is sensitive, or None

    @property
    def member(self) -> str:
        """Readable member: the CN of the DN when there is one, else the SID."""
        name = self.member_name
        if name and name != "-":
            return name.split(",", 1)[0].removeprefix("CN=") if name.upper().startswith("CN=") else name
        return self.member_sid

    @property
    def actor(self) -> str:
        return f"{self.actor_domain}\\{self.actor_name}" if self.actor_domain and self.actor_domain != "-" else self.actor_name


class ServiceCreation(msgspec.Struct, gc=False):
    """A service installed on a host (7045 in System, or 4697 in Security)."""

    time: datetime
    host: str
    name: str
    image_path: str
    service_type: str
    start_type: str
    account: str
    creator_sid: str | None
    creator_name: str | None
    evidence: list[Evidence]


Activity = AuthActivity | GroupChange | ServiceCreation
