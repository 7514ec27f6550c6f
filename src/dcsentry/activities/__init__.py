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
        if self.actor_domain and self.actor_domain != "-":
            return f"{self.actor_domain}\\{self.actor_name}"
        return self.actor_name


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
    logon_id: str = ""  # 4697's SubjectLogonId
    session: Logon | None = None  # the installer's 4624 on this host (remote when a network logon)
    twin: bool = False  # a 4697 after the 7045 of the same install: only for its session, not a new service


class Logon(msgspec.Struct, gc=False):
    """A successful logon (4624) on the computer that logged it. Kept by logon id (context.py) so
    later actions under that id know where their actor came from."""

    time: datetime
    host: str  # short name of the computer that logged the 4624 (a DC, a server)
    logon_id: str  # TargetLogonId, as logged (hex text)
    account: str
    account_sid: str
    domain: str
    logon_type: int | None
    package: str  # AuthenticationPackageName (NTLM, Kerberos, Negotiate)
    process: str  # LogonProcessName (NtLmSsp, Kerberos, seclogo, User32 ...)
    source_ip: str
    source_host: str
    key_length: str = ""
    lm_package: str = ""  # LmPackageName (NTLM V1 / NTLM V2 / -)
    evidence: list[Evidence] = msgspec.field(default_factory=list)

    @property
    def source(self) -> str:
        return self.source_ip or self.source_host

    @property
    def remote(self) -> bool:
        """A network logon from another machine: what makes an action under it remote."""
        return self.logon_type == 3 and bool(self.source) and self.source != "localhost"

    @property
    def account_key(self) -> str:
        return self.account.lower()


class DcActivity(msgspec.Struct, gc=False, kw_only=True):
    """Base of the DC-log activities (activities/dclog/): what each of them has for the store's
    activity index and the console (kind, who acted, on what, where)."""

    time: datetime
    host: str  # the computer that logged it (DC, CA), short name
    actor: str = ""  # who did it (account name as logged)
    actor_sid: str = ""
    actor_domain: str = ""
    logon_id: str = ""  # SubjectLogonId, to find the actor's logon session
    session: Logon | None = None  # the actor's 4624 on the same host, when it was in the stream
    evidence: list[Evidence] = msgspec.field(default_factory=list)

    kind = "dc"

    @property
    def subject(self) -> str:
        """What the action was done to, for the activity index (override)."""
        return ""

    @property
    def source(self) -> str:
        return self.session.source if self.session is not None else ""


Activity = AuthActivity | GroupChange | ServiceCreation | Logon | DcActivity
