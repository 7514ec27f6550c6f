"""What the export readers hand to the verdict: settings found, each with the file and line it
came from, and which settings a file could have carried (so "absent" can mean "not set").

Every reader turns one file into an `Export`; a file that does not follow its format raises
`ExportError` naming the file and line. Text decoding is shared here: Windows tools write UTF-16LE
with a BOM (reg export, secedit, gpresult), UTF-8 with or without BOM, or the ANSI code page
(an auditpol /backup from a Spanish system was Windows-1252), with CRLF line ends.
"""

from __future__ import annotations

import codecs
from dataclasses import dataclass, field

MACHINE = 3  # the machine's own state: auditpol /get or /backup output, reg export
EFFECTIVE = 2  # what Group Policy applied to the machine: gpresult /x (RSoP)
POLICY = 1  # what a policy asks for: a GPO's audit.csv / GptTmpl.inf / gpreport.xml, secedit templates
RANK_OF_KIND = {"auditpol-get": MACHINE, "auditpol-backup": MACHINE, "reg": MACHINE, "certutil-auditfilter": MACHINE,
                "gpresult": EFFECTIVE,
                "gpo-audit-csv": POLICY, "inf": POLICY, "gpreport": POLICY}


class ExportError(ValueError):
    """A file that is not what it claims to be; the message names the file and the line."""

    def __init__(self, path: str, line: int | None, message: str) -> None:
        self.path, self.line, self.reason = path, line, message
        where = path if line is None else f"{path}:{line}"
        super().__init__(f"{where}: {message}")


class NotAnExport(ExportError):
    """Readable, but none of the formats dcsentry knows."""


@dataclass(frozen=True, slots=True)
class Setting:
    value: int | None  # bits for audit policy (0-3), the number for a registry value
    source: str  # "file:line"
    rank: int  # MACHINE, EFFECTIVE or POLICY
    text: str = ""  # the value as the file wrote it, when it is not the number


@dataclass
class Export:
    """The facts one file holds."""

    path: str
    kind: str  # auditpol-get | auditpol-backup | gpo-audit-csv | inf | reg | gpresult | gpreport | certutil-auditfilter
    machine: str = ""  # the computer (or GPO) it describes, when the file says
    subcategories: dict[str, list[Setting]] = field(default_factory=dict)  # guid -> settings
    legacy: dict[str, list[Setting]] = field(default_factory=dict)  # secedit key (lower) -> settings
    registry: dict[str, list[Setting]] = field(default_factory=dict)  # value name (lower) -> settings
    ca_filters: dict[str, list[Setting]] = field(default_factory=dict)  # CA name -> its AuditFilter (None: not set)
    # Registry keys (lower case, under HKLM) whose absent values mean "not set" in this file; "*" for
    # every key (an INF [Registry Values] section, a report's Security Options).
    registry_scope: set[str] = field(default_factory=set)
    notes: list[str] = field(default_factory=list)  # what the reader wants the admin to know

    def add(self, table: dict[str, list[Setting]], key: str, setting: Setting) -> None:
        table.setdefault(key, []).append(setting)

    @property
    def rank(self) -> int:
        return RANK_OF_KIND.get(self.kind, POLICY)

    def covers(self, key: str) -> bool:
        k = key.lower()
        return "*" in self.registry_scope or any(k == s or k.startswith(s + "\\") for s in self.registry_scope)


def decode(data: bytes, path: str) -> str:
    """The text of an export, whatever Windows encoding it was written in."""
    if data.startswith(codecs.BOM_UTF16_LE):
        enc, data = "utf-16-le", data[2:]
    elif data.startswith(codecs.BOM_UTF16_BE):
        enc, data = "utf-16-be", data[2:]
    elif data.startswith(codecs.BOM_UTF8):
        enc, data = "utf-8", data[3:]
    elif len(data) >= 4 and data[1] == 0 and data[3] == 0 and data[0] != 0:
        enc = "utf-16-le"  # UTF-16 without a BOM (seen from some PowerShell redirections)
    else:
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            return data.decode("cp1252", errors="replace")  # the ANSI code page of Western Windows
    try:
        return data.decode(enc)
    except UnicodeDecodeError as exc:
        line = data[:exc.start].decode(enc, errors="replace").count("\n") + 1
        raise ExportError(path, line, f"not valid {enc.upper()} text") from None


def lines(text: str) -> list[str]:
    """Lines without their CR/LF; numbering starts at 1 for index 0."""
    return text.replace("\r\n", "\n").replace("\r", "\n").split("\n")


def parse_int(text: str) -> int:
    """Decimal or 0x-hex, as Windows tools write numbers."""
    t = text.strip().strip('"')
    return int(t, 16) if t.lower().startswith("0x") else int(t)
