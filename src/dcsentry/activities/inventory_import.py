"""Account inventory from what an admin can export without extra tools (`dcsentry inventory import`).

- LDIF from `ldifde -f accounts.ldf -r "(|(objectClass=user)(objectClass=computer))"` or
  `ldapsearch ... > accounts.ldif`: RFC 2849 records separated by blank lines, folded lines (a
  leading space continues the line above), `attr:: base64` values (binary objectSid, non-ASCII
  names), comments, `changetype: add` (ldifde) and the `search:`/`result:` trailer (ldapsearch).
- CSV from `Get-ADUser -Filter * -Properties ... | Export-Csv` and `Get-ADComputer ...` (Windows
  PowerShell writes a `#TYPE Microsoft.ActiveDirectory.Management.ADUser` first line; PowerShell 7
  does not; `-UseCulture` may use `;`), and `Get-ADDomainController -Filter * | Export-Csv`.

What is taken (LDAP names; the CSV columns are the same names, any case): sAMAccountName,
objectSid (binary -> S-1-5-...) or SID, distinguishedName, userPrincipalName, dNSHostName,
objectClass, userAccountControl (0x2000 SERVER_TRUST = a DC, 0x4000000 PARTIAL_SECRETS = an RODC,
0x2 disabled), primaryGroupID 516/521 (DCs), adminCount=1 (sensitive), servicePrincipalName,
msDS-SupportedEncryptionTypes, Enabled. Groups, OUs and contacts are skipped.
"""

from __future__ import annotations

import base64
import csv
import io
import re
from dataclasses import dataclass, field
from pathlib import Path

from .context import Account

ACCOUNTDISABLE = 0x2
WORKSTATION_TRUST = 0x1000
SERVER_TRUST = 0x2000
PARTIAL_SECRETS = 0x4000000  # read-only DC
DC_GROUPS = {"516", "521"}  # Domain Controllers, Read-only Domain Controllers (primaryGroupID)
ACCOUNT_CLASSES = {"user", "computer", "inetorgperson", "msds-managedserviceaccount",
                   "msds-groupmanagedserviceaccount", "msds-delegatedmanagedserviceaccount"}
BINARY = {"objectsid", "objectguid"}
_COLLECTION = "microsoft.activedirectory.management.adpropertyvaluecollection"  # Export-Csv of a list
_SPLIT = re.compile(r"[;|\s]+")


@dataclass
class ImportResult:
    format: str  # ldif | csv
    accounts: list[Account] = field(default_factory=list)
    skipped: int = 0  # records that are not accounts (groups, OUs) or have no sAMAccountName
    problems: list[str] = field(default_factory=list)

    @property
    def dcs(self) -> list[Account]:
        return [a for a in self.accounts if a.dc]


def sid_text(raw: bytes) -> str:
    """A binary SID (MS-DTYP 2.4.2.2) as `S-1-5-21-...`; "" when it is not one."""
    if len(raw) < 8 or raw[0] != 1 or len(raw) != 8 + 4 * raw[1]:
        return ""
    authority = int.from_bytes(raw[2:8], "big")
    subs = [int.from_bytes(raw[8 + 4 * i:12 + 4 * i], "little") for i in range(raw[1])]
    return "S-1-" + "-".join(str(x) for x in [authority, *subs])


def decode_text(data: bytes) -> str:
    """Exports come as UTF-8 (with or without BOM), UTF-16 (`ldifde -u`, PowerShell `>`) or ANSI."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16")
    if len(data) > 1 and data[1:2] == b"\x00" and data[0:1] != b"\x00":
        return data.decode("utf-16-le", "replace")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("cp1252", "replace")


# -- LDIF ------------------------------------------------------------------------------------------
def ldif_records(text: str) -> list[tuple[str, dict[str, list[str | bytes]]]]:
    """(dn, {attribute lower case: values}) of each record; binary attributes stay bytes."""
    lines: list[str] = []
    for raw in text.splitlines():
        if raw.startswith(" ") and lines:
            lines[-1] += raw[1:]  # folded: the line continues the one above
        else:
            lines.append(raw)
    out: list[tuple[str, dict[str, list[str | bytes]]]] = []
    dn = ""
    attrs: dict[str, list[str | bytes]] = {}
    for line in lines + [""]:
        if not line.strip():
            if dn:
                out.append((dn, attrs))
            dn, attrs = "", {}
            continue
        if line.startswith("#"):
            continue
        name, sep, rest = line.partition(":")
        if not sep:
            continue
        name = name.strip().split(";", 1)[0].lower()  # `member;range=0-1499`
        value: str | bytes
        if rest.startswith(":"):
            try:
                blob = base64.b64decode(rest[1:].strip(), validate=False)
            except ValueError:
                continue
            value = blob if name in BINARY else blob.decode("utf-8", "replace")
        elif rest.startswith("<"):
            continue  # a URL reference: not in exports
        else:
            value = rest[1:] if rest.startswith(" ") else rest
        if name == "dn":
            if dn:  # a record without its blank line before the next one
                out.append((dn, attrs))
                attrs = {}
            dn = value if isinstance(value, str) else value.decode("utf-8", "replace")
        else:
            attrs.setdefault(name, []).append(value)
    return out


def _first(attrs: dict, name: str) -> str:
    for v in attrs.get(name, ()):
        if isinstance(v, str) and v.strip():
            return v.strip()
    return ""


def _int(value: str) -> int | None:
    v = (value or "").strip()
    try:
        return int(v, 0) if v.lower().startswith("0x") else int(v)
    except ValueError:
        return None


def _account(sam: str, *, sid: str, dn: str, classes: set[str], uac: int | None, primary_group: str,
             admin_count: str, upn: str, dns: str, spns: list[str], enc: int | None, enabled: str,
             primary_group_dn: str = "") -> Account:
    flags = uac or 0
    kind = "computer" if ("computer" in classes or flags & (WORKSTATION_TRUST | SERVER_TRUST)
                          or sam.endswith("$")) else "user"
    dc = bool(flags & (SERVER_TRUST | PARTIAL_SECRETS)) or primary_group in DC_GROUPS or \
        primary_group_dn.lower().startswith(("cn=domain controllers,", "cn=read-only domain controllers,"))
    return Account(name=sam, sid=sid.upper(), kind=kind, dn=dn, upn=upn, dns_host_name=dns,
                   sensitive=admin_count.strip() == "1", dc=dc, source="imported", enc_types=enc, spns=spns,
                   disabled=bool(flags & ACCOUNTDISABLE) or enabled.strip().lower() == "false", uac=uac)


def parse_ldif(text: str) -> ImportResult:
    res = ImportResult("ldif")
    for dn, attrs in ldif_records(text):
        classes = {v.lower() for v in attrs.get("objectclass", ()) if isinstance(v, str)}
        sam = _first(attrs, "samaccountname")
        if (classes and not classes & ACCOUNT_CLASSES) or not sam:
            res.skipped += 1
            continue
        sid = ""
        for v in attrs.get("objectsid", ()):
            sid = sid_text(v) if isinstance(v, bytes) else (v.strip() if v.strip().upper().startswith("S-1-") else "")
            if not sid and isinstance(v, bytes) and v.decode("latin-1").upper().startswith("S-1-"):
                sid = v.decode("latin-1").strip()
        spns = [v.strip() for v in attrs.get("serviceprincipalname", ()) if isinstance(v, str) and v.strip()]
        res.accounts.append(_account(
            sam, sid=sid, dn=_first(attrs, "distinguishedname") or dn, classes=classes,
            uac=_int(_first(attrs, "useraccountcontrol")), primary_group=_first(attrs, "primarygroupid"),
            admin_count=_first(attrs, "admincount"), upn=_first(attrs, "userprincipalname"),
            dns=_first(attrs, "dnshostname"), spns=spns, enc=_int(_first(attrs, "msds-supportedencryptiontypes")),
            enabled=""))
    return res


# -- CSV -------------------------------------------------------------------------------------------
def _multi(value: str) -> list[str]:
    v = (value or "").strip().strip("{}")
    if not v or v.lower() == _COLLECTION:
        return []
    return [x for x in _SPLIT.split(v) if x]


def parse_csv(text: str) -> ImportResult:
    res = ImportResult("csv")
    lines = text.splitlines()
    while lines and (not lines[0].strip() or lines[0].startswith("#")):  # `#TYPE ...` (Windows PowerShell)
        lines.pop(0)
    if not lines:
        return res
    header = lines[0]
    delimiter = max((",", ";", "\t"), key=header.count)
    reader = csv.DictReader(io.StringIO("\n".join(lines)), delimiter=delimiter)
    for row in reader:
        r = {(k or "").strip().lower(): (v or "") for k, v in row.items() if k}
        classes = {c.strip().lower() for c in _multi(r.get("objectclass", ""))}
        sam = r.get("samaccountname", "").strip()
        dc_export = "computerobjectdn" in r  # Get-ADDomainController: one row per DC
        if dc_export and not sam and r.get("name", "").strip():
            sam = r["name"].strip() + "$"
        if (classes and not classes & ACCOUNT_CLASSES) or not sam:
            res.skipped += 1
            continue
        spns = _multi(r.get("serviceprincipalname", "")) or _multi(r.get("serviceprincipalnames", ""))
        acc = _account(
            sam, sid=(r.get("sid") or r.get("objectsid") or "").strip(),
            dn=(r.get("distinguishedname") or r.get("computerobjectdn") or "").strip(), classes=classes,
            uac=_int(r.get("useraccountcontrol", "")), primary_group=r.get("primarygroupid", "").strip(),
            admin_count=r.get("admincount", ""), upn=r.get("userprincipalname", "").strip(),
            dns=(r.get("dnshostname") or r.get("hostname") or "").strip(), spns=spns,
            enc=_int(r.get("msds-supportedencryptiontypes", "")), enabled=r.get("enabled", ""),
            primary_group_dn=r.get("primarygroup", ""))
        if dc_export:
            acc.dc, acc.kind = True, "computer"
        res.accounts.append(acc)
    return res


# -- either ----------------------------------------------------------------------------------------
def sniff(text: str) -> str:
    """`ldif` or `csv` from the first lines (ValueError when neither)."""
    for line in text.splitlines():
        s = line.strip()
        if not s:
            continue
        low = s.lower()
        if low.startswith("#type"):
            return "csv"
        if s.startswith("#"):
            continue
        if low.startswith(("dn:", "version:")):
            return "ldif"
        if any(d in s for d in ",;\t") and re.search(r"samaccountname|distinguishedname|computerobjectdn", low):
            return "csv"
        break
    raise ValueError("neither an LDIF export (ldifde / ldapsearch) nor a CSV from Export-Csv "
                     "(Get-ADUser / Get-ADComputer / Get-ADDomainController)")


def parse_export(data: bytes | str) -> ImportResult:
    text = decode_text(data) if isinstance(data, bytes) else data
    return parse_ldif(text) if sniff(text) == "ldif" else parse_csv(text)


def read_export(path: str | Path) -> ImportResult:
    """Parse one export file (ValueError when it is not one; OSError when it cannot be read)."""
    try:
        res = parse_export(Path(path).read_bytes())
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from None
    if not res.accounts:
        raise ValueError(f"{path}: no user or computer account in this {res.format.upper()} export")
    return res


def read_exports(paths: list[str] | tuple[str, ...]) -> ImportResult:
    """Several exports as one inventory (users.csv + computers.csv + dcs.csv): an account in more than
    one keeps what each knows (a DC flag from the DC list, SPNs from the computer export)."""
    merged: dict[str, Account] = {}
    formats: list[str] = []
    skipped = 0
    for path in paths:
        res = read_export(path)
        formats.append(res.format)
        skipped += res.skipped
        for acc in res.accounts:
            key = acc.name.lower()
            old = merged.get(key)
            merged[key] = acc if old is None else _merge(old, acc)
    return ImportResult("+".join(dict.fromkeys(formats)), list(merged.values()), skipped)


def _merge(a: Account, b: Account) -> Account:
    for name in ("sid", "dn", "upn", "dns_host_name"):
        if not getattr(a, name):
            setattr(a, name, getattr(b, name))
    a.dc = a.dc or b.dc
    a.sensitive = a.sensitive or b.sensitive
    a.disabled = a.disabled or b.disabled
    a.kind = "computer" if "computer" in (a.kind, b.kind) else a.kind
    a.enc_types = a.enc_types if a.enc_types is not None else b.enc_types
    a.uac = a.uac if a.uac is not None else b.uac
    a.spns = a.spns + [s for s in b.spns if s not in a.spns]
    return a
