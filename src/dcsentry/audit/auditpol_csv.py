"""Advanced audit policy CSV: `auditpol /get /category:* /r`, `auditpol /backup`, and a GPO's audit.csv
(reference/audit-policy.md sections 3 and 4; MS-GPAC 2.2).

- `/get /r`: 6 columns, no Setting Value; the effective policy of the machine named in column 1.
- `/backup` and GPO audit.csv: 7 columns, `Setting Value` 0-4 (the number is what Windows applies;
  the text beside it is for people). A GPO copy leaves Machine Name empty.
- The header row, subcategory names, Policy Target and Inclusion Setting are translated on
  non-English Windows (a Spanish header even uses ", " separators): the header is recognised by
  position, subcategories by GUID (any case), and settings by the number when there is one. For
  the 6-column form, only the text exists: the translations in `INCLUSION` are those of Windows'
  own audit policy strings (auditpolmsg.dll.mui, English/Spanish/German/Greek); any other text
  leaves that subcategory "unknown" and says to use `auditpol /backup`, which has the number.
- Option rows (`Option:CrashOnAuditFail`, translated) and global SACL rows carry no GUID and are
  skipped; rows whose Policy Target is a SID or DOMAIN\\user are per-user policy and skipped too.
"""

from __future__ import annotations

import csv
import re
import unicodedata

from .facts import MACHINE, POLICY, Export, ExportError, Setting, lines

GUID = re.compile(r"^\{?[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\}?$")
SETTING_BITS = {0: 0, 1: 1, 2: 2, 3: 3, 4: 0}  # MS-GPAC 2.2.1.3.1: 4 = none, 0 = no auditing in a backup


def _fold(text: str) -> str:
    t = unicodedata.normalize("NFKD", text.strip().casefold())
    return " ".join("".join(c for c in t if not unicodedata.combining(c)).split())


INCLUSION = {_fold(k): v for k, v in {
    "No Auditing": 0, "Success": 1, "Failure": 2, "Success and Failure": 3,
    "Sin auditoría": 0, "Aciertos": 1, "Errores": 2, "Aciertos y errores": 3,
    "Keine Überwachung": 0, "Erfolgreich": 1, "Erfolg": 1, "Fehler": 2, "Erfolg und Fehler": 3,
    "Κανένας έλεγχος": 0, "Επιτυχία": 1, "Αποτυχία": 2, "Επιτυχία και αποτυχία": 3,
}.items()}


def looks_like_csv(text: str) -> bool:
    first = next((ln for ln in lines(text) if ln.strip()), "")
    return first.count(",") >= 5


def _is_header(row: list[str]) -> bool:
    return len(row) >= 4 and not GUID.match(row[3].strip()) and not row[3].strip() == ""


def read_auditpol_csv(text: str, path: str) -> Export:
    rows = list(enumerate(lines(text), 1))
    parsed: list[tuple[int, list[str]]] = []
    for no, ln in rows:
        if not ln.strip():
            continue
        try:
            row = next(csv.reader([ln], skipinitialspace=True))
        except csv.Error as exc:
            raise ExportError(path, no, f"not a CSV row: {exc}") from None
        parsed.append((no, row))
    if not parsed:
        raise ExportError(path, None, "empty file")
    no, header = parsed[0]
    if not _is_header(header):
        raise ExportError(path, no, "expected the auditpol/audit.csv header (Machine Name,Policy Target,Subcategory,"
                                    "Subcategory GUID,Inclusion Setting,Exclusion Setting[,Setting Value])")
    width = len(header)
    if width not in (6, 7):
        raise ExportError(path, no, f"header has {width} columns; auditpol /r writes 6, audit.csv and "
                                    "auditpol /backup write 7")
    exp = Export(path, "auditpol-get" if width == 6 else "gpo-audit-csv")
    machines = set()
    unknown_texts = set()
    for no, row in parsed[1:]:
        if len(row) == width - 1 and width == 6:
            row = row + [""]  # /get /r may drop the empty trailing Exclusion Setting
        if len(row) != width:
            raise ExportError(path, no, f"{len(row)} columns where the header has {width}")
        machine, target, name, guid, incl = (c.strip() for c in row[:5])
        if not guid:
            continue  # Option:... and global SACL rows
        if target.upper().startswith("S-1-") or "\\" in target:
            continue  # per-user policy
        if not GUID.match(guid):
            raise ExportError(path, no, f"Subcategory GUID {guid!r} is not a GUID")
        key = "{" + guid.strip("{}").lower() + "}"
        if machine:
            machines.add(machine)
        value: int | None = None
        if width == 7 and row[6].strip():
            raw = row[6].strip()
            if not raw.isdigit() or int(raw) not in SETTING_BITS:
                raise ExportError(path, no, f"Setting Value {raw!r} is not 0-4 (MS-GPAC 2.2.1.3.1)")
            value = SETTING_BITS[int(raw)]
        else:
            value = INCLUSION.get(_fold(incl))
            if value is None:
                unknown_texts.add(incl)
        exp.add(exp.subcategories, key, Setting(value, f"{path}:{no}", POLICY, incl or name))
    if width == 7 and machines:
        exp.kind = "auditpol-backup"
    if exp.kind in ("auditpol-get", "auditpol-backup"):
        for settings in exp.subcategories.values():
            settings[:] = [Setting(s.value, s.source, MACHINE, s.text) for s in settings]
    exp.machine = ", ".join(sorted(machines))
    if unknown_texts:
        exp.notes.append(f"{path}: Inclusion Setting text {', '.join(sorted(map(repr, unknown_texts)))} is not a known "
                         "translation and this form has no Setting Value: export with `auditpol /backup /file:x.csv` "
                         "(it carries the number) for those subcategories")
    return exp
