"""Group Policy XML: `gpresult /x` (the DC's resultant set of policy, root `Rsop`) and a GPO's
`gpreport.xml` / `Get-GPOReport -ReportType Xml` (one GPO, root `GPO`, or several under `report`).

Only the computer part is read (ComputerResults / Computer). Namespace prefixes (q1:, q2:, ...)
change from file to file, so elements are matched by local name:

- `AuditSetting` (SubcategoryGuid, SettingValue 0-4, PolicyTarget): advanced audit policy;
- `Audit` (Name = AuditAccountLogon..., SuccessAttempts, FailureAttempts): legacy audit policy;
- `SecurityOptions` (KeyName = MACHINE\\...\\AuditNTLMInDomain, SettingNumber): registry options.

In an RSoP, a setting several GPOs define is listed per GPO with its `Precedence`; 1 is the one
applied and only that one is read. The parser is lxml with entity resolution, DTD loading and
network access off (the settings of formats/xml.py); a DOCTYPE or ENTITY declaration is refused
before parsing: Windows never writes one.
"""

from __future__ import annotations

import re

from lxml import etree

from .auditpol_csv import GUID, SETTING_BITS
from .facts import EFFECTIVE, POLICY, Export, ExportError, NotAnExport, Setting, parse_int
from .inf import registry_target
from .requirements import LEGACY_CATEGORIES

_DTD = re.compile(rb"<\x00?!\x00?(D\x00?O\x00?C\x00?T\x00?Y\x00?P\x00?E|E\x00?N\x00?T\x00?I\x00?T\x00?Y)", re.I)


def _parser() -> etree.XMLParser:
    return etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, dtd_validation=False,
                           huge_tree=False, remove_comments=True, remove_pis=True)


def _local(tag: object) -> str:
    if not isinstance(tag, str):
        return ""
    return tag.rsplit("}", 1)[-1]


def _child(el: etree._Element, name: str) -> etree._Element | None:
    return next((c for c in el if _local(c.tag) == name), None)


def _text(el: etree._Element, name: str) -> str:
    c = _child(el, name)
    return (c.text or "").strip() if c is not None else ""


def looks_like_xml(data: bytes) -> bool:
    head = data[:200].replace(b"\x00", b"").lstrip(b"\xef\xbb\xbf\xff\xfe \t\r\n")
    return head.startswith(b"<")


def read_policy_xml(data: bytes, path: str) -> Export:
    m = _DTD.search(data)
    if m:
        line = data[:m.start()].replace(b"\x00", b"").count(b"\n") + 1
        raise ExportError(path, line, "DOCTYPE/ENTITY declaration refused (gpresult never writes one)")
    try:
        root = etree.fromstring(data, _parser())
    except etree.XMLSyntaxError as exc:
        at = exc.lineno if getattr(exc, "lineno", None) else None
        raise ExportError(path, at, f"not well-formed XML: {exc.msg}") from None
    kind = _local(root.tag)
    if kind == "Rsop":
        exp, rank = Export(path, "gpresult"), EFFECTIVE
        parts = [c for c in root if _local(c.tag) == "ComputerResults"]
        exp.machine = ", ".join(_text(p, "Name") for p in parts if _text(p, "Name"))
    elif kind in ("GPO", "report"):
        exp, rank = Export(path, "gpreport"), POLICY
        gpos = [root] if kind == "GPO" else [g for g in root if _local(g.tag) == "GPO"]
        parts = []
        for g in gpos:
            comp = _child(g, "Computer")
            if comp is None:
                continue
            if _text(comp, "Enabled").lower() == "false":
                exp.notes.append(f"{path}: the computer settings of GPO {_text(g, 'Name')!r} are disabled: ignored")
                continue
            parts.append(comp)
        exp.machine = ", ".join(f"GPO {_text(g, 'Name')}" for g in gpos)
    else:
        raise NotAnExport(path, root.sourceline, f"root element <{kind}> is neither gpresult /x (<Rsop>) nor a GPO "
                                                 "report (<GPO>)")
    for part in parts:
        for el in part.iter():
            name = _local(el.tag)
            if name not in ("AuditSetting", "Audit", "SecurityOptions"):
                continue
            prec = _text(el, "Precedence")
            if prec and prec != "1":
                continue  # a GPO that lost to another for this setting
            where = f"{path}:{el.sourceline}"
            if name == "AuditSetting":
                _audit_setting(exp, el, where, rank)
            elif name == "Audit":
                key = _text(el, "Name").lower()
                if key in LEGACY_CATEGORIES:
                    bits = (1 if _text(el, "SuccessAttempts").lower() == "true" else 0) | \
                           (2 if _text(el, "FailureAttempts").lower() == "true" else 0)
                    exp.add(exp.legacy, key, Setting(bits, where, rank))
            else:
                exp.registry_scope.add("*")
                target = registry_target(_text(el, "KeyName"))
                if target is None:
                    continue
                raw = _text(el, "SettingNumber") or _text(el, "SettingString")
                try:
                    exp.add(exp.registry, target[0], Setting(parse_int(raw), where, rank))
                except ValueError:
                    raise ExportError(path, el.sourceline, f"{_text(el, 'KeyName')}: {raw!r} is not a number") from None
    return exp


def _audit_setting(exp: Export, el: etree._Element, where: str, rank: int) -> None:
    target = _text(el, "PolicyTarget")
    if target.upper().startswith("S-1-") or "\\" in target:
        return  # per-user policy
    guid, raw = _text(el, "SubcategoryGuid"), _text(el, "SettingValue")
    if not GUID.match(guid):
        raise ExportError(exp.path, el.sourceline, f"SubcategoryGuid {guid!r} is not a GUID")
    if not raw.isdigit() or int(raw) not in SETTING_BITS:
        raise ExportError(exp.path, el.sourceline, f"SettingValue {raw!r} is not 0-4")
    key = "{" + guid.strip("{}").lower() + "}"
    exp.add(exp.subcategories, key, Setting(SETTING_BITS[int(raw)], where, rank, _text(el, "SubcategoryName")))
