"""What every SIEM layout shares: the parsed message, the error types, key=value splitting, the
time formats the layouts use, and `build_event`, which makes the result look exactly like the
XML rendering (catalogue provider/channel spelling, lower-case hex, field order)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache

from ...catalogue import CATALOGUE, NETLOGON, SCM, SECURITY_AUDITING, EventSpec, canonical_channel
from ...model import EPOCH, Origin, WindowsEvent
from ..syslog import SyslogHeader
from ..values import as_int, parse_time

AUDIT_SUCCESS = "0x8020000000000000"
AUDIT_FAILURE = "0x8010000000000000"
PACKAGE_V1_0 = "MICROSOFT_AUTHENTICATION_PACKAGE_V1_0"  # 4776's PackageName, the same in every event


class MessageError(ValueError):
    """A syslog message that yields no Windows event."""


class UnknownLayout(MessageError):
    """No SIEM layout recognises the message."""


class NotWindows(UnknownLayout):
    """A known wire format (CEF, LEEF, QRadar JSON) carrying something other than a Windows event."""


class BadMessage(MessageError):
    """The layout is recognised but the message lacks or garbles what that layout must carry."""


@dataclass(slots=True)
class Message:
    """One message after the syslog header was split off."""

    header: SyslogHeader
    body: str
    origin: Origin | None
    depth: int = 0  # nesting (QRadar JSON carries a whole syslog line in `payload`)


def spec_for(event_id: int) -> EventSpec | None:
    """8005/8006 share 8004's template, so they read with its fields."""
    return CATALOGUE.get(8004 if event_id in (8005, 8006) else event_id)


# ---- key=value ---------------------------------------------------------------------------------

# A key follows a separator: whitespace, or the two characters `\t` `\r` `\n` as printed in docs
# (the Splunk doc sample even has `\r\ComputerName`, hence a lone backslash too).
_SEP = r"(?:^|(?<=\s)|(?<=\\[rnt])|(?<=\\)(?![rnt][A-Z]))"
_KEY = re.compile(_SEP + r"([A-Za-z][A-Za-z0-9_]{0,39})=")
_MESSAGE = re.compile(_SEP + r"Message=")


_TRIM_LAST = frozenset(" \t\r\n\x0b\x0c\\rnt")


def _trim(v: str) -> str:
    """Drop trailing whitespace and literal `\\r` `\\n` `\\t` `\\` separators (in linear time), then strip."""
    i = len(v)
    if i and v[-1] not in _TRIM_LAST:  # the usual case: nothing literal to drop
        return v.strip()
    while i > 0:
        c = v[i - 1]
        if c.isspace() or c == "\\":
            i -= 1
        elif i >= 2 and c in "rnt" and v[i - 2] == "\\":
            i -= 2
        else:
            break
    return v[:i].strip()


def split_kv(body: str) -> tuple[dict[str, str], str | None]:
    """`key=value` pairs before `Message=`, and the Message text (to the end) or None."""
    m = _MESSAGE.search(body)
    head, text = (body[:m.start()], body[m.end():]) if m else (body, None)
    out: dict[str, str] = {}
    keys = list(_KEY.finditer(head))
    for i, k in enumerate(keys):
        end = keys[i + 1].start() if i + 1 < len(keys) else len(head)
        out.setdefault(k.group(1), _trim(head[k.end():end]))
    if text is not None and "\n" not in text and "\\r\\n" in text:
        text = text.replace("\\r\\n", "\r\n")
    return out, text


# ---- times -------------------------------------------------------------------------------------

_MONTHS = {m: i for i, m in enumerate(("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct",
                                       "nov", "dec"), 1)}
_WMI = re.compile(r"(\d{4})(\d\d)(\d\d)(\d\d)(\d\d)(\d\d)(?:\.(\d{1,6}))?(?:([+-])(\d{1,4}))?")
_RSA = re.compile(r"(\d{4})-([A-Za-z]{3})-(\d{1,2})[ T](\d\d?):(\d\d):(\d\d)(?:[.,](\d{1,6}))?")
_SNARE = re.compile(r"(?:[A-Za-z]{3} )?([A-Za-z]{3}) +(\d{1,2}) (\d\d?):(\d\d):(\d\d)(?:\.(\d{1,6}))? (\d{4})")
_CEF = re.compile(r"([A-Za-z]{3}) +(\d{1,2}) (\d{4}) (\d\d?):(\d\d):(\d\d)(?:\.(\d{1,6}))?(?: (UTC|GMT|Z))?")
_US = re.compile(r"(\d{1,2})/(\d{1,2})/(\d{4}),? (\d{1,2}):(\d\d):(\d\d)(?:\.(\d{1,6}))?(?: ?([AaPp][Mm]))?")


def _mk(y: int, mo: int, d: int, h: int, mi: int, s: int, frac: str | None) -> datetime | None:
    try:
        return datetime(y, mo, d, h, mi, s, int((frac or "0")[:6].ljust(6, "0")), tzinfo=UTC)
    except (ValueError, OverflowError):
        return None


def epoch_time(s: str) -> datetime | None:
    """Epoch milliseconds (CEF `rt`, QRadar `TimeGenerated`); 10 digits or fewer read as seconds."""
    try:
        n = int(s)
        return EPOCH + (timedelta(milliseconds=n) if len(s) > 10 else timedelta(seconds=n))
    except (ValueError, OverflowError):
        return None


def event_time(s: str | None) -> datetime | None:
    """Any event-time spelling the layouts use, as aware UTC; a time without a zone is UTC.

    Epoch ms; WMI `yyyyMMddHHmmss.ffffff[+-mmm]` (offset in minutes east of UTC); RSA
    `yyyy-MMM-dd HH:mm:ss[.fff]`; Snare `Fri Sep 17 16:37:25 2021`; CEF `MMM dd yyyy HH:mm:ss[.SSS]`;
    US `M/d/yyyy[,] h:mm:ss[.fff] [AM|PM]` (Splunk, Sentinel); ISO 8601.
    """
    if not s:
        return None
    s = s.strip()
    if s.isdigit():
        return epoch_time(s) if len(s) != 14 else event_time(s + ".0")
    m = _WMI.fullmatch(s)
    if m:
        y, mo, d, h, mi, sec, frac, sign, off = m.groups()
        t = _mk(int(y), int(mo), int(d), int(h), int(mi), int(sec), frac)
        if t is not None and sign:
            t -= (1 if sign == "+" else -1) * timedelta(minutes=int(off))
        return t
    m = _RSA.fullmatch(s)
    if m and m.group(2).lower() in _MONTHS:
        y, mon, d, h, mi, sec, frac = m.groups()
        return _mk(int(y), _MONTHS[mon.lower()], int(d), int(h), int(mi), int(sec), frac)
    m = _SNARE.fullmatch(s)
    if m and m.group(1).lower() in _MONTHS:
        mon, d, h, mi, sec, frac, y = m.groups()
        return _mk(int(y), _MONTHS[mon.lower()], int(d), int(h), int(mi), int(sec), frac)
    m = _CEF.fullmatch(s)
    if m and m.group(1).lower() in _MONTHS:
        mon, d, y, h, mi, sec, frac, _ = m.groups()
        return _mk(int(y), _MONTHS[mon.lower()], int(d), int(h), int(mi), int(sec), frac)
    m = _US.fullmatch(s)
    if m:
        mo, d, y, h, mi, sec, frac, ampm = m.groups()
        hour = int(h)
        if ampm and hour <= 12:  # "14:51:35.857 PM" (Sentinel sample data) is already 24-hour
            hour = hour % 12 + (12 if ampm.lower() == "pm" else 0)
        return _mk(int(y), int(mo), int(d), hour, int(mi), int(sec), frac)
    return parse_time(s)


# ---- the event ---------------------------------------------------------------------------------

_HEX_FIELDS = frozenset({
    "Status", "SubStatus", "SubjectLogonId", "TargetLogonId", "TargetLinkedLogonId", "ProcessId", "TicketOptions",
    "TicketEncryptionType", "ServiceType", "OldUacValue", "NewUacValue",
})
_HEX = re.compile(r"0[xX][0-9A-Fa-f]+")
# Names SIEMs use for a provider, normalised (letters and digits, lower case), by catalogue provider.
_ALIASES = {
    SECURITY_AUDITING: {"microsoftwindowssecurityauditing", "securityauditing", "windows", "security",
                        "microsoftwindowssecurity"},
    NETLOGON: {"microsoftwindowssecuritynetlogon", "netlogon"},
    SCM: {"servicecontrolmanager", "scm"},
}
_EMPTY = {"", "na", "none", "null", "unknown"}


@lru_cache(maxsize=4096)
def _norm(s: str) -> str:
    return "".join(c for c in s.lower() if c.isalnum())


def keywords_from(text: str | None) -> str | None:
    """`Audit Success` / `Success Audit` / `/Success` ... to the Keywords the XML carries."""
    t = _norm(text or "")
    if t in ("auditsuccess", "successaudit", "success"):
        return AUDIT_SUCCESS
    if t in ("auditfailure", "failureaudit", "failure"):
        return AUDIT_FAILURE
    return None


def build_event(event_id: int, provider: str, channel: str, computer: str, time: datetime | None,
                data: dict[str, str], msg: Message, record_id: object = None, keywords: str | None = None,
                task: object = None, sequence: object = None) -> WindowsEvent:
    """The WindowsEvent, spelled as the XML would spell it.

    For catalogue events a missing or SIEM-renamed provider (`Microsoft Windows security
    auditing.`, Snare's `Windows`) and a missing channel are filled from the catalogue, when what
    the message does say agrees with it.
    """
    provider, channel = provider.strip(), canonical_channel(channel.strip())
    spec = spec_for(event_id)
    if spec is not None and (_norm(channel) in _EMPTY or channel == spec.channel):
        pn = _norm(provider)
        if pn in _EMPTY or pn in _ALIASES.get(spec.provider, ()):
            provider = spec.provider
        if provider == spec.provider and _norm(channel) in _EMPTY:
            channel = spec.channel
    if keywords is not None and channel != "Security":  # audit success/failure exist only there
        keywords = None
    for k in _HEX_FIELDS & data.keys():
        if _HEX.fullmatch(data[k]):
            data[k] = "0x" + data[k][2:].lower()
    if spec is not None:
        ordered = {f: data[f] for f in spec.fields if f in data}
        ordered.update(data)
        data = ordered
    return WindowsEvent(event_id=event_id, provider=provider, channel=channel, computer=computer.strip(),
                        time=time or msg.header.time or EPOCH, record_id=as_int(record_id), data=data,
                        origin=msg.origin, keywords=keywords, level=None, task=as_int(task),
                        sequence=as_int(sequence))


def event_id_of(*candidates: str | None) -> int:
    """The first candidate that is a plain event number (0..65535)."""
    for c in candidates:
        c = (c or "").strip()
        if c.isdigit() and len(c) <= 5 and int(c) <= 0xFFFF:
            return int(c)
    raise BadMessage("no event id")
