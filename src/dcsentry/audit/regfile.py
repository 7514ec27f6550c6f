"""`reg export` files of the Lsa, Lsa\\MSV1_0 and Netlogon\\Parameters keys (audit-policy.md section 6).

    reg export HKLM\\SYSTEM\\CurrentControlSet\\Control\\Lsa lsa.reg
    reg export HKLM\\SYSTEM\\CurrentControlSet\\Services\\Netlogon\\Parameters netlogon.reg

UTF-16LE with BOM ("Windows Registry Editor Version 5.00"; "REGEDIT4" files are ANSI), CRLF,
`[key]` headers, `"name"=dword:0000000N` values, long hex values continued with a trailing `\\`.
`reg export` writes a key with all its subkeys, so a value missing under an exported key is not
set on that machine (Windows then uses its default). It is the machine's state: rank MACHINE.

A CA's `reg export HKLM\\SYSTEM\\CurrentControlSet\\Services\\CertSvc\\Configuration ca.reg` gives
each CA's AuditFilter the same way `certutil -getreg CA\\AuditFilter` does (audit/certutil.py).
"""

from __future__ import annotations

import re

from .facts import MACHINE, Export, ExportError, Setting, lines
from .inf import registry_target

HEADERS = ("windows registry editor version 5.00", "regedit4")
_KEY = re.compile(r"^\[(-?)([^\]]+)\]$")
_VALUE = re.compile(r'^(@|"(?:[^"\\]|\\.)*")\s*=\s*(.*)$')
_CONTROL_SET = re.compile(r"\\controlset\d{3}\\")
_CA_KEY = re.compile(r"^system\\currentcontrolset\\services\\certsvc\\configuration\\([^\\]+)$")


def looks_like_reg(text: str) -> bool:
    first = next((ln.strip().lower() for ln in lines(text) if ln.strip()), "")
    return first in HEADERS


def _hklm(key: str) -> str | None:
    k = key.strip().lower()
    for prefix in ("hkey_local_machine\\", "hklm\\"):
        if k.startswith(prefix):
            return _CONTROL_SET.sub(r"\\currentcontrolset\\", "\\" + k[len(prefix):])[1:]
    return None


def read_reg(text: str, path: str) -> Export:
    exp = Export(path, "reg")
    all_lines = lines(text)
    start = next((i for i, ln in enumerate(all_lines) if ln.strip()), None)
    if start is None or all_lines[start].strip().lower() not in HEADERS:
        raise ExportError(path, (start or 0) + 1, "expected 'Windows Registry Editor Version 5.00' or 'REGEDIT4' "
                                                  "(a file written by `reg export`)")
    key: str | None = None
    ca_keys: dict[str, str] = {}  # lower-case key -> the CA's name as written, for CertSvc\Configuration\<CA>
    i = start + 1
    while i < len(all_lines):
        no, s = i + 1, all_lines[i].strip()
        i += 1
        while s.endswith("\\") and i < len(all_lines) and not s.startswith("["):  # hex data continued
            s = s[:-1] + all_lines[i].strip()
            i += 1
        if not s or s.startswith(";"):
            continue
        m = _KEY.match(s)
        if m:
            key = _hklm(m.group(2))
            if key is not None and not m.group(1):
                exp.registry_scope.add(key)
                ca = _CA_KEY.match(key)
                if ca:
                    ca_keys[key] = m.group(2).rstrip("\\").rsplit("\\", 1)[-1]
            continue
        m = _VALUE.match(s)
        if not m:
            raise ExportError(path, no, f"not a registry value line: {s[:80]!r}")
        if key is None:
            continue  # a value of a key outside HKLM (or before any key): not ours
        name, data = m.group(1), m.group(2).strip()
        if name == "@":
            continue
        if key in ca_keys and name[1:-1].lower() == "auditfilter":
            if not data.lower().startswith("dword:") or not re.fullmatch(r"[0-9a-fA-F]{1,8}", data[6:]):
                raise ExportError(path, no, f"AuditFilter should be dword:<8 hex digits>, got {data[:40]!r}")
            exp.add(exp.ca_filters, ca_keys[key], Setting(int(data[6:], 16), f"{path}:{no}", MACHINE))
            continue
        target = registry_target(key + "\\" + name[1:-1].replace('\\"', '"'))
        if target is None:
            continue
        if data == "-":
            exp.add(exp.registry, target[0], Setting(None, f"{path}:{no}", MACHINE, "deleted"))
            continue
        if not data.lower().startswith("dword:"):
            raise ExportError(path, no, f"{name} should be a REG_DWORD (dword:xxxxxxxx), got {data[:40]!r}")
        digits = data[6:]
        if not re.fullmatch(r"[0-9a-fA-F]{1,8}", digits):
            raise ExportError(path, no, f"{name}: {data!r} is not dword:<8 hex digits>")
        exp.add(exp.registry, target[0], Setting(int(digits, 16), f"{path}:{no}", MACHINE))
    for ca_name in ca_keys.values():  # a CA key exported without the value: not set (the CA audits nothing)
        if ca_name not in exp.ca_filters:
            exp.add(exp.ca_filters, ca_name, Setting(None, path, MACHINE, "not set"))
    if not exp.registry_scope:
        exp.notes.append(f"{path}: no HKEY_LOCAL_MACHINE key in this file")
    return exp
