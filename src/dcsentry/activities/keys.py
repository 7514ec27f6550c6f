"""The keys detections count by, public so routing and detectors agree on them.

The distributed mode sends every event a detector counts together to one partition; the
single-node intake routes the same way (to its one partition). Both decide with these functions,
and the detectors compute their own keys from the same ones, so "which source", "is this a DC"
and "is this a honeytoken" have one answer everywhere.
"""

from __future__ import annotations

from ..catalogue import GROUP_ADD_IDS, GROUP_REMOVE_IDS, NTLM_CHANNEL, NTLM_DC_AUDIT_IDS
from ..model import WindowsEvent

GROUP_IDS = GROUP_ADD_IDS | GROUP_REMOVE_IDS
SERVICE_IDS = frozenset({7045, 4697})
# account-management and directory-change events a honeytoken can be the object (or subject) of
TOKEN_ACCOUNT_IDS = frozenset({4720, 4722, 4724, 4725, 4726, 4738, 4741, 4742, 4743, 4781, 4765, 4766})
TOKEN_DIRECTORY_IDS = frozenset({5136, 5137, 5139, 5141})
# events only a domain controller writes (the rule the activity builder learns DCs by)
_DC_ONLY = frozenset({4768, 4769, 4771, 4662, 5136, 5137, 5141})


def host_key(name: str) -> str:
    """NetBIOS-style host key: no leading backslashes, upper case, `-`/NULL as empty."""
    name = (name or "").strip().lstrip("\\")
    return "" if name in ("-", "NULL", "") else name.upper()


def ip_key(addr: str) -> str:
    """An event's client address: "" for none, `localhost` for loopback, IPv4-mapped unwrapped."""
    addr = (addr or "").strip()
    if addr in ("-", "", "::1", "127.0.0.1"):
        return "" if addr in ("-", "") else "localhost"
    return addr.removeprefix("::ffff:")


def computer_key(computer: str) -> str:
    """An event's Computer as a host label (`dc01.corp.local` -> `DC01`)."""
    return computer.split(".", 1)[0].upper()


def dc_of(ev: WindowsEvent) -> str | None:
    """The computer's host label when this event proves it is a domain controller."""
    eid = ev.event_id
    if (eid in _DC_ONLY and ev.channel == "Security") \
            or (eid in NTLM_DC_AUDIT_IDS and ev.channel == NTLM_CHANNEL) \
            or (eid in GROUP_IDS and eid not in (4732, 4733)):  # local groups (4732/4733) exist on members too
        return computer_key(ev.computer)
    return None


def detection_key(ev: WindowsEvent) -> str | None:
    """The key the detectors count this event by, or None when none does.

    NTLM/Kerberos authentications by their source (the address when the event has one, else the
    workstation, as `AuthActivity.source`; the 4776/8004 join is on DC + account + workstation, so
    both halves meet); group changes by their actor; service installs by host; DC-log events by
    what their detectors count together (`_dc_log_key`)."""
    eid, d = ev.event_id, ev.data
    if eid == 4776 and ev.channel == "Security":
        return "src:" + (host_key(d.get("Workstation", "")) or "unknown")
    if eid in NTLM_DC_AUDIT_IDS and ev.channel == NTLM_CHANNEL:
        return "src:" + (host_key(d.get("WorkstationName", "")) or "unknown")
    if eid == 4625:
        return "src:" + (ip_key(d.get("IpAddress", "")) or host_key(d.get("WorkstationName", "")) or "unknown")
    if eid in (4768, 4771) and ev.channel == "Security":
        return "src:" + (ip_key(d.get("IpAddress", "")) or "unknown")
    if eid in GROUP_IDS:
        sid = (d.get("SubjectUserSid", "") or "").strip()
        return "actor:" + (sid or d.get("SubjectUserName", "") or "unknown").upper()
    if eid in SERVICE_IDS:
        return "host:" + computer_key(ev.computer)
    if ev.channel == "Security" or eid == 104:
        return _dc_log_key(ev)
    return None


# A logon (4624) meets the actions done under it (4662, 5136) by (computer, logon id); a 5136 change
# made of several events stays whole by its OpCorrelationID; account changes go by the account
# changed, Kerberos tickets by client address, cover-ups and CA events by host.
_SESSION_IDS = frozenset({4624, 4662})
_HOST_IDS = frozenset({1102, 104, 4719, 4706, 4865, 4794, 4882, 4885, 4886, 4887, 4888, 4890, 4896, 4898,
                       4899, 4900})


def _dc_log_key(ev: WindowsEvent) -> str | None:
    eid, d = ev.event_id, ev.data
    if eid == 4769:
        return "src:" + (ip_key(d.get("IpAddress", "")) or "unknown")
    if eid in _SESSION_IDS:
        logon_id = d.get("TargetLogonId" if eid == 4624 else "SubjectLogonId", "") or ""
        return "sess:" + computer_key(ev.computer) + "|" + logon_id.lower()
    if eid in (5136, 5137, 5141):
        return "dsop:" + (d.get("OpCorrelationID", "") or d.get("ObjectGUID", "") or "").lower()
    if eid in TOKEN_ACCOUNT_IDS:
        name = d.get("OldTargetUserName", "") if eid == 4781 else d.get("TargetUserName", "")
        return "acct:" + (name or "").lower()
    if eid in _HOST_IDS:
        return "host:" + computer_key(ev.computer)
    return None


def token_name(name: str) -> str:
    """How honeytokens compare: the account part of `DOM\\x`, `x@REALM` or `CN=x,...`, lower case."""
    short = (name or "").strip().lower().split("\\")[-1].split("@")[0]
    if short.startswith("cn="):
        short = short[3:].split(",", 1)[0]
    return short


class Honeytokens:
    """The configured honeytoken list: names, SIDs or distinguished names. `match` answers with the
    token (its name or SID) an account is, or None."""

    def __init__(self, tokens: list[str]) -> None:
        tokens = [h.strip() for h in tokens if h.strip()]
        self.sids = {h.upper() for h in tokens if h.upper().startswith("S-1-")}
        self.dns = {h.lower() for h in tokens if h.lower().startswith("cn=") and "," in h}
        self.names = {token_name(h) for h in tokens if not h.upper().startswith("S-1-")}
        self.names.discard("")

    def __bool__(self) -> bool:
        return bool(self.names or self.sids)

    def match(self, name: str, sid: str = "") -> str | None:
        short = token_name(name)
        if short and short in self.names:
            return short
        return sid.upper() if sid and sid.upper() in self.sids else None

    def match_dn(self, dn: str) -> str | None:
        """A DN listed, or whose CN is a listed name (the inventory's DN map is the detector's)."""
        key = (dn or "").strip().lower()
        if not key:
            return None
        if key in self.dns:
            return token_name(key)
        return self.match(dn)

    def token_of(self, ev: WindowsEvent) -> str | None:
        """The honeytoken an event names (as the account used, changed or acting), or None: the
        events the honeytoken detector reads, looked at without building activities."""
        if not self:
            return None
        eid, d, m = ev.event_id, ev.data, self.match
        if eid in (4776, 4625, 4768, 4771):
            return m(d.get("TargetUserName", ""), d.get("TargetSid", "") or d.get("TargetUserSid", ""))
        if eid in NTLM_DC_AUDIT_IDS:
            return m(d.get("UserName", ""))
        if eid in GROUP_IDS:
            return m(d.get("MemberName", ""), d.get("MemberSid", ""))
        if eid == 4769:  # the requester (`user@REALM`), or the account owning the SPN asked for
            return m(d.get("TargetUserName", "")) or m(d.get("ServiceName", ""), d.get("ServiceSid", ""))
        if eid == 4624:
            return m(d.get("TargetUserName", ""), d.get("TargetUserSid", ""))
        if eid in TOKEN_ACCOUNT_IDS:  # a change to the account (4781: either name), or made by it
            return (m(d.get("TargetUserName", "") or d.get("NewTargetUserName", ""), d.get("TargetSid", ""))
                    or m(d.get("OldTargetUserName", ""))
                    or m(d.get("SubjectUserName", ""), d.get("SubjectUserSid", "")))
        if eid in TOKEN_DIRECTORY_IDS:
            return (self.match_dn(d.get("ObjectDN", "") or d.get("OldObjectDN", ""))
                    or self.match_dn(d.get("NewObjectDN", ""))
                    or m(d.get("SubjectUserName", ""), d.get("SubjectUserSid", "")))
        return None
