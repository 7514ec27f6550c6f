"""Which groups are sensitive: by well-known SID/RID where there is one, by name where not.

Defender for Identity's default list (../shared/reference/alerts.md section 8) plus groups known
to lead to domain takeover. A renamed or localised builtin group still matches by SID.
"""

from __future__ import annotations

from collections.abc import Iterable

BUILTIN = {
    "S-1-5-32-544": "Administrators",
    "S-1-5-32-547": "Power Users",
    "S-1-5-32-548": "Account Operators",
    "S-1-5-32-549": "Server Operators",
    "S-1-5-32-550": "Print Operators",
    "S-1-5-32-551": "Backup Operators",
    "S-1-5-32-552": "Replicator",
    "S-1-5-32-556": "Network Configuration Operators",
    "S-1-5-32-557": "Incoming Forest Trust Builders",
}
DOMAIN_RIDS = {
    498: "Enterprise Read-only Domain Controllers",
    512: "Domain Admins",
    516: "Domain Controllers",
    518: "Schema Admins",
    519: "Enterprise Admins",
    520: "Group Policy Creator Owners",
    521: "Read-only Domain Controllers",
    526: "Key Admins",
    527: "Enterprise Key Admins",
}
# Groups with no fixed RID: matched by name (case-insensitive).
BY_NAME = ("DnsAdmins", "Microsoft Exchange Servers", "Exchange Windows Permissions",
           "Exchange Trusted Subsystem", "Organization Management", "Key Admins", "Enterprise Key Admins")


class SensitiveGroups:
    """Answers "is this group sensitive, and why" for a (SID, name) pair."""

    def __init__(self, extra: Iterable[str] = ()) -> None:
        self._names = {n.lower(): n for n in BY_NAME}
        self._sids: dict[str, str] = dict(BUILTIN)
        for item in extra:  # user-defined: a SID or a name
            if item.upper().startswith("S-1-"):
                self._sids[item.upper()] = item
            else:
                self._names[item.lower()] = item

    def why(self, sid: str, name: str) -> str | None:
        sid = (sid or "").upper()
        if sid in self._sids:
            return f"{self._sids[sid]} ({sid})"
        if sid.startswith("S-1-5-21-"):
            try:
                rid = int(sid.rsplit("-", 1)[1])
            except ValueError:
                rid = -1
            if rid in DOMAIN_RIDS:
                return f"{DOMAIN_RIDS[rid]} (RID {rid})"
        known = self._names.get((name or "").lower())
        return f"{known} (by name)" if known else None
