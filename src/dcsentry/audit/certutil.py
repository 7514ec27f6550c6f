"""`certutil -getreg CA\\AuditFilter` output from a certification authority: which CA events it writes.

    HKEY_LOCAL_MACHINE\\SYSTEM\\CurrentControlSet\\Services\\CertSvc\\Configuration\\contoso-CA01-CA:

      AuditFilter REG_DWORD = 7f (127)
    CertUtil: -getreg command completed successfully.

Only language-independent parts are read: the registry path, the value name, REG_DWORD and the
numbers (hex, then decimal in parentheses when they differ). The closing line is translated on
non-English Windows and ignored. A CA without the value makes certutil fail with 0x80070002
(ERROR_FILE_NOT_FOUND): not set, which Windows treats as 0 (the CA audits nothing). Several outputs
(one per CA) may be concatenated in one file. It is the CA's own state: rank MACHINE.
"""

from __future__ import annotations

import re

from .coverage import AUDIT_FILTER_BITS
from .facts import MACHINE, Export, ExportError, Setting, lines

ALL_FILTER = 127  # every AuditFilter bit: what dcsentry asks of each CA

_KEY = re.compile(r"^\s*(?:HKEY_LOCAL_MACHINE|HKLM)\\.*\\CertSvc\\Configuration\\([^\\:]+?)\s*:?\s*$", re.I)
_VALUE = re.compile(r"^\s*AuditFilter\s+REG_DWORD\s*=\s*(?:0x)?([0-9a-f]+)\s*(?:\(\s*(\d+)\s*\))?\s*$", re.I)
_NOT_FOUND = re.compile(r"0x80070002|ERROR_FILE_NOT_FOUND", re.I)
_DETECT = re.compile(r"\\CertSvc\\Configuration\\", re.I)


def looks_like_certutil(text: str) -> bool:
    return bool(_DETECT.search(text)) and ("auditfilter" in text.lower() or bool(_NOT_FOUND.search(text)))


def read_certutil(text: str, path: str) -> Export:
    exp = Export(path, "certutil-auditfilter")
    ca: str | None = None
    for no, line in enumerate(lines(text), 1):
        m = _KEY.match(line)
        if m:
            ca = m.group(1)
            exp.machine = exp.machine or ca
            continue
        m = _VALUE.match(line)
        if m:
            if ca is None:
                raise ExportError(path, no, "AuditFilter value before any CertSvc\\Configuration\\<CA> key line")
            hexa, dec = int(m.group(1), 16), m.group(2)
            if dec is not None and int(dec) != hexa:
                raise ExportError(path, no, f"AuditFilter {m.group(1)} (hex) and ({dec}) disagree")
            exp.add(exp.ca_filters, ca, Setting(hexa, f"{path}:{no}", MACHINE))
            continue
        if ca is not None and _NOT_FOUND.search(line) and ca not in exp.ca_filters:
            exp.add(exp.ca_filters, ca, Setting(None, f"{path}:{no}", MACHINE, "not set"))
    if not exp.ca_filters:
        raise ExportError(path, None, "no AuditFilter value under CertSvc\\Configuration\\<CA> (expected the output of "
                                      "`certutil -getreg CA\\AuditFilter`)")
    return exp


# -- what the filters mean for an event ---------------------------------------------------------------

def filter_text(value: int | None) -> str:
    if value is None:
        return "not set (0: the CA audits nothing)"
    on = [name for bit, name in AUDIT_FILTER_BITS.items() if value & bit]
    return f"{value} ({', '.join(on) or 'nothing'})"


def filter_verdict(gate: int | None, filters: dict[str, Setting]) -> tuple[str, str, str]:
    """(status, detail, source) of the CAs' AuditFilter for an event gated by bit(s) `gate` (0 or
    None: the gating bit is not documented, only 127 is sure). Every CA given must have it."""
    if not filters:
        return "unknown", ("no `certutil -getreg CA\\AuditFilter` output from the CA among the inputs: whether the CA "
                           "audits these cannot be told"), ""
    bits = gate or ALL_FILTER
    bad: list[str] = []
    unsure: list[str] = []
    for ca, s in sorted(filters.items()):
        value = s.value or 0
        if value & bits == bits:
            continue
        (unsure if not gate and value else bad).append(f"{ca}: AuditFilter = {filter_text(s.value)}")
    source = ", ".join(s.source for s in filters.values())
    if bad:
        need = f"bit {bits} ({AUDIT_FILTER_BITS[bits]})" if bits in AUDIT_FILTER_BITS else "127 (all bits)"
        return "no", f"{'; '.join(bad)}: these events need {need}", source
    if unsure:
        return "unknown", (f"{'; '.join(unsure)}: which AuditFilter bit gates these events is not documented; 127 "
                           "(all bits) covers them"), source
    return "yes", "; ".join(f"{ca}: AuditFilter = {filter_text(s.value)}" for ca, s in sorted(filters.items())), source
