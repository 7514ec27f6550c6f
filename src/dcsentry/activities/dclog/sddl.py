"""SDDL security descriptors as 5136 logs them (`nTSecurityDescriptor`,
`msDS-AllowedToActOnBehalfOfOtherIdentity`): parse, diff old -> new, and say an ACE in words.

Written here rather than taken from PyPI: the parsers there (`sddl-parser`, `winacl`, `winsddl`)
are single-maintainer packages that pull parser-combinator or Windows-API layers in, turn rights
into enums we would map back, and raise on the truncated or `Malformed Security Descriptor`
values 5136 really logs. What the detectors need is small: the ACEs as written (for an exact
"new ACEs" diff), the rights as letters and as a mask, the GUIDs and the trustee, and names an
analyst reads (replication rights, User-Force-Change-Password, msDS-KeyCredentialLink ...).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

# Access mask bits by SDDL letters (MS-DTYP 2.5.1.1, directory-service and generic rights).
RIGHTS: dict[str, int] = {
    "CC": 0x1, "DC": 0x2, "LC": 0x4, "SW": 0x8, "RP": 0x10, "WP": 0x20, "DT": 0x40, "LO": 0x80, "CR": 0x100,
    "SD": 0x10000, "RC": 0x20000, "WD": 0x40000, "WO": 0x80000,
    "GA": 0x10000000, "GX": 0x20000000, "GW": 0x40000000, "GR": 0x80000000,
    "FA": 0x1F01FF, "FR": 0x120089, "FW": 0x120116, "FX": 0x1200A0,
    "KA": 0xF003F, "KR": 0x20019, "KW": 0x20006, "KX": 0x20019,
}
_DS_BITS = [(k, v) for k, v in RIGHTS.items() if k[0] not in "FK"]
DS_FULL = 0xF01FF  # every directory right: what "Full Control" writes on an AD object
_RIGHT_WORDS = {
    "CC": "create all child objects", "DC": "delete all child objects", "LC": "list contents",
    "SW": "all validated writes",
    "RP": "read all properties", "WP": "write all properties", "DT": "delete subtree", "LO": "list object",
    "CR": "all extended rights", "SD": "delete", "RC": "read permissions", "WD": "WriteDacl (modify permissions)",
    "WO": "WriteOwner (take ownership)", "GA": "GenericAll (full control)", "GX": "GenericExecute",
    "GW": "GenericWrite", "GR": "GenericRead",
}

ACE_TYPES = {"A": "Allow", "D": "Deny", "OA": "Allow", "OD": "Deny", "AU": "Audit", "OU": "Audit", "AL": "Alarm",
             "OL": "Alarm", "ML": "Label", "XA": "Allow", "XD": "Deny", "ZA": "Allow", "XU": "Audit",
             "SP": "Policy", "RA": "Attribute"}

# Extended rights, attributes, property sets and classes an analyst meets in AD ACEs (adschema).
REPLICATION_GUIDS = {
    "1131f6aa-9c07-11d1-f79f-00c04fc2dcd2": "DS-Replication-Get-Changes",
    "1131f6ad-9c07-11d1-f79f-00c04fc2dcd2": "DS-Replication-Get-Changes-All",
    "89e95b76-444d-4c62-991a-0facbeda640c": "DS-Replication-Get-Changes-In-Filtered-Set",
}
GUIDS: dict[str, str] = {
    **REPLICATION_GUIDS,
    "1131f6ab-9c07-11d1-f79f-00c04fc2dcd2": "DS-Replication-Synchronize",
    "1131f6ac-9c07-11d1-f79f-00c04fc2dcd2": "DS-Replication-Manage-Topology",
    "9923a32a-3607-11d2-b9be-0000f87a36b2": "DS-Install-Replica",
    "3e0f7e18-2c7a-4c10-ba82-4d926db99a3e": "DS-Clone-Domain-Controller",
    "00299570-246d-11d0-a768-00aa006e0529": "User-Force-Change-Password",
    "ab721a53-1e2f-11d0-9819-00aa0040529b": "User-Change-Password",
    "ba33815a-4f93-4c76-87f3-57574bff8109": "Migrate-SID-History",
    "ccc2dc7d-a6ad-4a7a-8846-c04e3cc53501": "Unexpire-Password",
    "edacfd8f-ffb3-11d1-b41d-00a0c968f939": "Apply-Group-Policy",
    "0e10c968-78fb-11d2-90d4-00c04f79dc55": "Certificate-Enrollment",
    "a05b8cc2-17bc-4802-a710-e7c15ab866a2": "Certificate-AutoEnrollment",
    "e2a36dc9-ae17-47c3-b58b-be34c55ba633": "Create-Inbound-Forest-Trust",
    "1abd7cf8-0a99-11d1-adbb-00c04fd8d5cd": "Allocate-Rids",
    "bf9679c0-0de6-11d0-a285-00aa003049e2": "member",
    "5b47d60f-6090-40b2-9f37-2a4de88f3063": "msDS-KeyCredentialLink",
    "3f78c3e5-f79a-46bd-a0b8-9d18116ddc79": "msDS-AllowedToActOnBehalfOfOtherIdentity",
    "f3a64788-5306-11d1-a9c5-0000f80367c1": "servicePrincipalName",
    "72e39547-7b18-11d1-adef-00c04fd8d5cd": "DNS-Host-Name-Attributes",
    "00fbf30c-91fe-11d1-aebc-0000f80367c1": "altSecurityIdentities",
    "bf9679a8-0de6-11d0-a285-00aa003049e2": "scriptPath",
    "f30e3bbe-9ff0-11d1-b603-0000f80367c1": "gPLink",
    "ea1b7b93-5e48-46d5-bc6c-4df4fda78a35": "msTPM-TpmInformationForComputer",
    "46a9b11d-60ae-405a-b7e8-ff8a58d456d2": "tokenGroupsGlobalAndUniversal",
    "b7c69e6d-2cc7-11d2-854e-00a0c983f608": "tokenGroups",
    "4c164200-20c0-11d0-a768-00aa006e0529": "User-Account-Restrictions",
    "5f202010-79a5-11d0-9020-00c04fc2d4cf": "User-Logon",
    "bc0ac240-79a9-11d0-9020-00c04fc2d4cf": "Membership",
    "59ba2f42-79a2-11d0-9020-00c04fc2d3cf": "General-Information",
    "037088f8-0ae1-11d2-b422-00a0c968f939": "RAS-Information",
    "e45795b2-9455-11d1-aebd-0000f80367c1": "Email-Information",
    "e45795b3-9455-11d1-aebd-0000f80367c1": "Web-Information",
    "77b5b886-944a-11d1-aebd-0000f80367c1": "Personal-Information",
    "91e647de-d96f-4b70-9557-d63ff4f3ccd8": "Private-Information",
    "bf967aba-0de6-11d0-a285-00aa003049e2": "user",
    "bf967a86-0de6-11d0-a285-00aa003049e2": "computer",
    "bf967a9c-0de6-11d0-a285-00aa003049e2": "group",
    "4828cc14-1437-45bc-9b07-ad6f015e5f28": "inetOrgPerson",
    "bf967aa5-0de6-11d0-a285-00aa003049e2": "organizationalUnit",
    "f30e3bc2-9ff0-11d1-b603-0000f80367c1": "groupPolicyContainer",
    "7b8b558a-93a5-4af7-adca-c017e67f1057": "msDS-GroupManagedServiceAccount",
    "ce206244-5827-4a86-ba1c-1c0c386c1b64": "msDS-ManagedServiceAccount",
}
_VALIDATED = {"bf9679c0-0de6-11d0-a285-00aa003049e2": "Self-Membership",
              "f3a64788-5306-11d1-a9c5-0000f80367c1": "Validated-SPN",
              "72e39547-7b18-11d1-adef-00c04fd8d5cd": "Validated-DNS-Host-Name"}

# SDDL SID aliases: machine-wide ones as SIDs, domain-relative ones as RIDs (MS-DTYP 2.5.1.1).
ALIASES: dict[str, str] = {
    "WD": "S-1-1-0", "CO": "S-1-3-0", "CG": "S-1-3-1", "NU": "S-1-5-2", "IU": "S-1-5-4", "SU": "S-1-5-6",
    "AN": "S-1-5-7", "ED": "S-1-5-9", "PS": "S-1-5-10", "AU": "S-1-5-11", "RC": "S-1-5-12", "SY": "S-1-5-18",
    "LS": "S-1-5-19", "NS": "S-1-5-20", "BA": "S-1-5-32-544", "BU": "S-1-5-32-545", "BG": "S-1-5-32-546",
    "PU": "S-1-5-32-547", "AO": "S-1-5-32-548", "SO": "S-1-5-32-549", "PO": "S-1-5-32-550", "BO": "S-1-5-32-551",
    "RE": "S-1-5-32-552", "RU": "S-1-5-32-554", "RD": "S-1-5-32-555", "NO": "S-1-5-32-556",
    "ER": "S-1-5-32-573", "CD": "S-1-5-32-574",
}
DOMAIN_ALIASES: dict[str, int] = {
    "LA": 500, "LG": 501, "DA": 512, "DU": 513, "DG": 514, "DC": 515, "DD": 516, "CA": 517, "SA": 518, "EA": 519,
    "PA": 520, "RO": 498, "CN": 522, "AP": 525, "KA": 526, "EK": 527, "RS": 553,
}
WELL_KNOWN: dict[str, str] = {
    "S-1-1-0": "Everyone", "S-1-3-0": "Creator Owner", "S-1-3-1": "Creator Group", "S-1-5-2": "Network",
    "S-1-5-4": "Interactive", "S-1-5-6": "Service", "S-1-5-7": "Anonymous Logon",
    "S-1-5-9": "Enterprise Domain Controllers",
    "S-1-5-10": "Principal Self", "S-1-5-11": "Authenticated Users", "S-1-5-12": "Restricted Code",
    "S-1-5-18": "SYSTEM", "S-1-5-19": "Local Service", "S-1-5-20": "Network Service",
    "S-1-5-32-544": "Administrators", "S-1-5-32-545": "Users", "S-1-5-32-546": "Guests", "S-1-5-32-547": "Power Users",
    "S-1-5-32-548": "Account Operators", "S-1-5-32-549": "Server Operators", "S-1-5-32-550": "Print Operators",
    "S-1-5-32-551": "Backup Operators", "S-1-5-32-552": "Replicator",
    "S-1-5-32-554": "Pre-Windows 2000 Compatible Access",
    "S-1-5-32-555": "Remote Desktop Users", "S-1-5-32-556": "Network Configuration Operators",
    "S-1-5-32-560": "Windows Authorization Access Group", "S-1-5-32-561": "Terminal Server License Servers",
    "S-1-5-32-573": "Event Log Readers", "S-1-5-32-574": "Certificate Service DCOM Access",
}
RIDS: dict[int, str] = {
    500: "Administrator", 501: "Guest", 502: "krbtgt", 498: "Enterprise Read-only Domain Controllers",
    512: "Domain Admins", 513: "Domain Users", 514: "Domain Guests", 515: "Domain Computers", 516: "Domain Controllers",
    517: "Cert Publishers", 518: "Schema Admins", 519: "Enterprise Admins", 520: "Group Policy Creator Owners",
    521: "Read-only Domain Controllers", 522: "Cloneable Domain Controllers", 525: "Protected Users",
    526: "Key Admins", 527: "Enterprise Key Admins", 553: "RAS and IAS Servers",
}


@dataclass(frozen=True, slots=True)
class Ace:
    type: str  # A, D, OA, OD, AU, OU, ...
    flags: tuple[str, ...]  # CI, OI, NP, IO, ID, SA, FA
    mask: int
    rights: frozenset[str]  # SDDL letters (from the letters written or decoded from a hex mask)
    object_guid: str  # lower case, "" when none
    inherited_object_guid: str
    trustee: str  # a SID, or an alias (BA, DA ...) as written
    raw: str  # the ACE as written, parentheses included

    @property
    def allow(self) -> bool:
        return self.type in ("A", "OA", "XA", "ZA")

    @property
    def deny(self) -> bool:
        return self.type in ("D", "OD", "XD")

    @property
    def inherited(self) -> bool:
        return "ID" in self.flags

    @property
    def effective_here(self) -> bool:
        """Applies to the object itself (not inherit-only)."""
        return "IO" not in self.flags

    @property
    def key(self) -> tuple:
        return (self.type, tuple(sorted(self.flags)), self.mask, self.object_guid, self.inherited_object_guid,
                self.trustee.upper())

    def has(self, *letters: str) -> bool:
        return any(x in self.rights for x in letters)


@dataclass(slots=True)
class SecurityDescriptor:
    owner: str = ""
    group: str = ""
    dacl_flags: str = ""  # P (protected), AI, AR, NO_ACCESS_CONTROL
    sacl_flags: str = ""
    dacl: list[Ace] = field(default_factory=list)
    sacl: list[Ace] = field(default_factory=list)
    valid: bool = True  # False for `Malformed Security Descriptor` or text we could not read


def mask_of(text: str) -> tuple[int, frozenset[str]]:
    """`CCDCLCRPWP` or `0x100` -> (mask, letters). Hex masks are decoded to the letters they hold."""
    t = text.strip()
    if t[:2].lower() == "0x" or t.isdigit():
        try:
            m = int(t, 0)
        except ValueError:
            return 0, frozenset()
        return m, frozenset(k for k, v in _DS_BITS if m & v == v)
    m = 0
    letters = set()
    for i in range(0, len(t) - 1, 2):
        k = t[i:i + 2].upper()
        bit = RIGHTS.get(k)
        if bit is not None:
            m |= bit
            letters.add(k)
    return m, frozenset(letters)


def parse_ace(body: str) -> Ace | None:
    """One ACE without its parentheses: `OA;CI;CR;<guid>;<guid>;<sid>[;(condition)]`."""
    parts = body.split(";", 6)
    if len(parts) < 6:
        return None
    flags = tuple(parts[1][i:i + 2].upper() for i in range(0, len(parts[1]) - 1, 2))
    mask, letters = mask_of(parts[2])
    return Ace(parts[0].strip().upper(), flags, mask, letters, parts[3].strip().strip("{}").lower(),
               parts[4].strip().strip("{}").lower(), parts[5].strip(), f"({body})")


def _aces(text: str, i: int) -> tuple[list[Ace], int]:
    """The ACEs starting at text[i] ('('), to the end of the ACL; balanced parentheses, so a
    conditional ACE's expression stays inside its ACE."""
    aces: list[Ace] = []
    n = len(text)
    while i < n and text[i] == "(":
        depth, j = 0, i
        while j < n:
            c = text[j]
            if c == "(":
                depth += 1
            elif c == ")":
                depth -= 1
                if depth == 0:
                    break
            j += 1
        ace = parse_ace(text[i + 1:j])
        if ace is not None:
            aces.append(ace)
        i = j + 1
    return aces, i


def parse(text: str | None) -> SecurityDescriptor:
    """An SDDL string -> SecurityDescriptor; never raises (valid=False when it is not SDDL)."""
    s = (text or "").strip()
    sd = SecurityDescriptor()
    if not s or s[1:2] != ":" or s[0] not in "OGDS":
        sd.valid = False
        return sd
    i, n = 0, len(s)
    while i + 1 < n and s[i + 1] == ":" and s[i] in "OGDS":
        part, i = s[i], i + 2
        if part in "OG":
            j = i
            while j < n and not (s[j] in "GDS" and j + 1 < n and s[j + 1] == ":"):
                j += 1
            if part == "O":
                sd.owner = s[i:j]
            else:
                sd.group = s[i:j]
            i = j
        else:
            j = i
            while j < n and s[j] != "(" and not (s[j] in "DS" and j + 1 < n and s[j + 1] == ":"):
                j += 1
            flags = s[i:j]
            aces, i = _aces(s, j)
            if part == "D":
                sd.dacl_flags, sd.dacl = flags, aces
            else:
                sd.sacl_flags, sd.sacl = flags, aces
    return sd


def added_aces(old: SecurityDescriptor, new: SecurityDescriptor, sacl: bool = False) -> list[Ace]:
    """ACEs in the new SD's DACL (or SACL) absent from the old one (compared as parsed, so the
    order and the letters-vs-hex spelling of a mask do not matter)."""
    before = {a.key for a in (old.sacl if sacl else old.dacl)}
    return [a for a in (new.sacl if sacl else new.dacl) if a.key not in before]


def removed_aces(old: SecurityDescriptor, new: SecurityDescriptor) -> list[Ace]:
    after = {a.key for a in new.dacl}
    return [a for a in old.dacl if a.key not in after]


# -- words ----------------------------------------------------------------------------------------
def sid_of(trustee: str, domain_sid: str = "") -> str:
    """An alias as a SID (domain-relative ones need the domain SID, else the alias stays)."""
    t = trustee.strip().upper()
    if t in ALIASES:
        return ALIASES[t]
    if t in DOMAIN_ALIASES and domain_sid:
        return f"{domain_sid}-{DOMAIN_ALIASES[t]}"
    return t


def rid(sid: str) -> int | None:
    if not sid.startswith("S-1-5-21-"):
        return None
    tail = sid.rsplit("-", 1)[-1]
    return int(tail) if tail.isdigit() else None


def trustee_words(trustee: str, names: Callable[[str], str | None] | None = None) -> str:
    """`Domain Admins (S-1-5-21-...-512)`, `Everyone`, or the SID when nothing names it."""
    t = trustee.strip().upper()
    if t in DOMAIN_ALIASES:
        return RIDS.get(DOMAIN_ALIASES[t], t)
    s = ALIASES.get(t, t)
    if s in WELL_KNOWN:
        return WELL_KNOWN[s]
    name = names(s) if names else None
    if not name:
        r = rid(s)
        name = RIDS.get(r) if r is not None else None
    return f"{name} ({s})" if name else s


def guid_name(g: str) -> str:
    return GUIDS.get(g, g)


def rights_words(ace: Ace) -> str:
    """What the ACE grants/denies, in adschema names where a GUID narrows it."""
    r = ace.rights
    if "GA" in r or ace.mask & DS_FULL == DS_FULL:
        return "full control (GenericAll)"
    g = ace.object_guid
    words: list[str] = []
    for k in ("CR", "WP", "RP", "SW", "CC", "DC", "WD", "WO", "GW", "GR", "GX", "DT", "SD", "RC", "LC", "LO"):
        if k not in r:
            continue
        if g and k == "CR":
            words.append(GUIDS.get(g, f"extended right {g}"))
        elif g and k in ("WP", "RP"):
            words.append(f"{'write' if k == 'WP' else 'read'} {GUIDS.get(g, g)}")
        elif g and k == "SW":
            words.append(_VALIDATED.get(g, f"validated write {GUIDS.get(g, g)}"))
        elif g and k in ("CC", "DC"):
            words.append(f"{'create' if k == 'CC' else 'delete'} {GUIDS.get(g, g)} objects")
        else:
            words.append(_RIGHT_WORDS[k])
    if not words:
        words.append(f"access mask 0x{ace.mask:x}")
    return ", ".join(words)


def ace_words(ace: Ace, names: Callable[[str], str | None] | None = None) -> str:
    """`Allow DS-Replication-Get-Changes-All to S-1-5-21-...-1151`, with the inheritance said."""
    out = f"{ACE_TYPES.get(ace.type, ace.type)} {rights_words(ace)} to {trustee_words(ace.trustee, names)}"
    if ace.inherited_object_guid:
        out += f" on descendant {guid_name(ace.inherited_object_guid)} objects"
    elif "IO" in ace.flags:
        out += " on descendant objects"
    elif "CI" in ace.flags:
        out += " (inherited by child objects)"
    return out


def grants_replication(ace: Ace) -> str:
    """The replication right an allow ACE grants on the object itself ("" when none): a named
    replication GUID, or all extended rights / GenericAll (which include them)."""
    if not ace.allow or not ace.effective_here:
        return ""
    if ace.object_guid in REPLICATION_GUIDS and (ace.has("CR") or ace.mask & 0x100):
        return REPLICATION_GUIDS[ace.object_guid]
    if not ace.object_guid and (ace.has("GA", "CR") or ace.mask & DS_FULL == DS_FULL):
        return "full control" if ace.has("GA") or ace.mask & DS_FULL == DS_FULL else "all extended rights"
    return ""


def is_deny_delete_everyone(ace: Ace) -> bool:
    """`(D;;DTSD;;;WD)` (maybe with DC): the "Protect object from accidental deletion" ACE."""
    return ace.deny and sid_of(ace.trustee) == "S-1-1-0" and not ace.object_guid and \
        ace.rights <= {"DT", "SD", "DC"} and bool(ace.rights)
