"""The one record every input turns into: a Windows event, whatever carried it."""

from __future__ import annotations

from datetime import UTC, datetime

import msgspec

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class Origin(msgspec.Struct, frozen=True, gc=False, omit_defaults=True):
    """Where an event came from, so an analyst can go back to the raw record.

    `source` is a file path or a peer (``tcp://10.0.0.5:51234``); `member` names the entry of a
    zip/gz container; `position` is the record number (EVTX), line number (JSON lines, syslog
    captures) or character offset (XML) inside that source.
    """

    source: str
    position: int | None = None
    member: str | None = None

    def __str__(self) -> str:
        where = self.source if self.member is None else f"{self.source}!{self.member}"
        return where if self.position is None else f"{where}@{self.position}"


class WindowsEvent(msgspec.Struct, gc=False, omit_defaults=True):
    """A Windows event normalised from EVTX, XML, shipper JSON or a SIEM layout.

    `data` holds the EventData (or flattened UserData) fields by their `Name`, always as strings,
    exactly as the XML rendering would show them, so detectors never know which format carried
    the event. `time` is timezone-aware UTC.
    """

    event_id: int
    provider: str
    channel: str
    computer: str
    time: datetime
    record_id: int | None
    data: dict[str, str]
    origin: Origin | None = None
    keywords: str | None = None
    level: int | None = None
    task: int | None = None
    user_sid: str | None = None
    sequence: int | None = None  # the sender's own counter (Snare), never a record id: tells apart
    # identical events of one second when there is no record id, and is kept by a re-sent copy

    @property
    def is_failure_audit(self) -> bool:
        """Security events say success/failure in Keywords (bit 52 = Audit Failure), not Level."""
        kw = self.keywords
        if not kw:
            return False
        try:
            return bool(int(kw, 0) & 0x0010000000000000)
        except ValueError:
            return False

    @property
    def epoch(self) -> float:
        return self.time.timestamp()

    def to_dict(self) -> dict:
        """The `events --jsonl` shape (a contract: keys only ever get added). msgspec encodes the
        struct itself to the same JSON, in C, which is what the hot path does."""
        return msgspec.to_builtins(self)


def iso_utc(t: datetime) -> str:
    """ISO 8601 in UTC with a `Z`, microsecond precision when there is a fraction."""
    s = t.isoformat()
    if s.endswith("+00:00"):  # every reader already gives UTC: the cheap path
        return s[:-6] + "Z"
    return t.astimezone(UTC).replace(tzinfo=None).isoformat() + "Z"
