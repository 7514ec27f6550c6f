"""Read the files an admin exported, whatever they are: the format is told from the content.

A file named on the command line that is none of the formats is an error; inside a directory
(a GPO backup holds Backup.xml, registry.pol, ...) such files are skipped and listed.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field

from .auditpol_csv import looks_like_csv, read_auditpol_csv
from .certutil import looks_like_certutil, read_certutil
from .facts import Export, ExportError, NotAnExport, decode
from .gpresult import looks_like_xml, read_policy_xml
from .inf import looks_like_inf, read_inf
from .regfile import looks_like_reg, read_reg

MAX_BYTES = 64 << 20  # a gpresult /x of a big domain is a few MB; anything far larger is not an export


def read_export(path: str) -> Export:
    try:
        with open(path, "rb") as fh:
            data = fh.read(MAX_BYTES + 1)
    except OSError as exc:
        raise ExportError(path, None, f"cannot read: {exc.strerror or exc}") from None
    if len(data) > MAX_BYTES:
        raise ExportError(path, None, f"larger than {MAX_BYTES >> 20} MB: not an audit-policy export")
    if looks_like_xml(data):
        return read_policy_xml(data, path)
    text = decode(data, path)
    if looks_like_reg(text):
        return read_reg(text, path)
    if looks_like_inf(text):
        return read_inf(text, path)
    if looks_like_certutil(text):
        return read_certutil(text, path)
    if looks_like_csv(text):
        return read_auditpol_csv(text, path)
    # Not recognised by content: a known extension gets its reader, whose error names the line.
    ext = os.path.splitext(path)[1].lower()
    if ext == ".inf":
        return read_inf(text, path)
    if ext == ".reg":
        return read_reg(text, path)
    if ext == ".csv":
        return read_auditpol_csv(text, path)
    raise NotAnExport(path, None, "not an auditpol CSV, GPO audit.csv, security template (.inf), reg export (.reg), "
                                  "gpresult /x XML or certutil -getreg CA\\AuditFilter output")


@dataclass
class ReadResult:
    exports: list[Export] = field(default_factory=list)
    errors: list[ExportError] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


def read_exports(paths: Iterable[str]) -> ReadResult:
    out = ReadResult()
    for p in paths:
        if os.path.isdir(p):
            for root, dirs, files in os.walk(p):
                dirs.sort()
                for f in sorted(files):
                    full = os.path.join(root, f)
                    try:
                        out.exports.append(read_export(full))
                    except NotAnExport:
                        out.skipped.append(full)
                    except ExportError as exc:
                        out.errors.append(exc)
        else:
            try:
                out.exports.append(read_export(p))
            except ExportError as exc:
                out.errors.append(exc)
    return out
