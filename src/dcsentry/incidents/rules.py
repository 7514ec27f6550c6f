"""The linking rules, as data: who an alert's accounts and hosts are, and which alert feeds which.

docs/incidents.md explains them. Two alerts join one incident when

- they share a *linking* entity (the source host, by name or address, or the acting account) within
  `[detection.incidents] window` of each other; or
- one alert's output is the next one's input (a `Feed` below) within `feed_window`: the account a
  spray guessed then acting, the account given replication rights then replicating, the computer
  renamed then asking a ticket under its new name.

Targets (the accounts a spray tried, the DC a service was installed on) and the DCs that logged the
events never link on their own: every alert has a DC, and a spray touches half the domain.
"""

from __future__ import annotations

from dataclasses import dataclass

# How an alert's `accounts` list reads, by type. "actor": every account acted (the Kerberoaster, the
# replicating account); "target": every account was acted on (the sprayed, the roasted, the enumerated);
# "actor-first": the first acted on the rest (group additions, ACL and attribute changes). A `details`
# `actor` always wins. Types not listed (Sigma rules, dcsentry's own) read as "actor".
ACCOUNT_ROLE: dict[str, str] = {
    **dict.fromkeys(("brute-force", "password-spray", "account-enumeration", "asrep-roasting",
                     "honeytoken-activity"), "target"),
    **dict.fromkeys(("sensitive-group-addition", "shadow-credentials", "rbcd-change", "spn-added-to-user",
                     "primary-group-change", "adminsdholder-change", "acl-change", "dcsync-rights",
                     "preauth-disabled", "sid-history", "dcshadow", "nopac"), "actor-first"),
}

# Types whose `hosts` name the machine acted on (a service installed there), not where the actor sat.
# For every other type a host is the source, unless `details` names the source apart (then the other
# hosts are targets) or it is a DC of the alert.
HOST_TARGET_TYPES = frozenset({"suspicious-service-creation", "remote-code-execution"})


@dataclass(frozen=True, slots=True)
class Feed:
    """`producer`'s output (`output`: a `details` key holding account names, or "targets") is the
    input of `consumers` (empty: any type) when it appears among their `as_role` accounts."""

    producer: str
    output: str
    consumers: tuple[str, ...]
    as_role: str  # "actor" | "target"
    why: str


FEEDS: tuple[Feed, ...] = (
    Feed("password-spray", "guessed_accounts", (), "actor", "the account the spray guessed then used"),
    Feed("brute-force", "guessed_accounts", (), "actor", "the account the brute force guessed then used"),
    Feed("kerberoasting", "services", (), "actor", "a roasted service account cracked then used"),
    Feed("asrep-roasting", "targets", (), "actor", "an AS-REP roasted account cracked then used"),
    Feed("dcsync-rights", "targets", ("dcsync",), "actor", "the account given replication rights then replicating"),
    Feed("sensitive-group-addition", "targets", (), "actor", "the member added to a privileged group then acting"),
    Feed("primary-group-change", "targets", (), "actor", "the account moved into a privileged group then acting"),
    Feed("sid-history", "targets", (), "actor", "the account given a privileged SID history then acting"),
    Feed("shadow-credentials", "targets", (), "actor", "the account taken over by a key credential then acting"),
    Feed("spn-added-to-user", "targets", ("kerberoasting",), "target", "the user given an SPN then roasted"),
    Feed("spn-added-to-user", "targets", (), "actor", "the user given an SPN, cracked, then acting"),
    Feed("preauth-disabled", "targets", ("asrep-roasting",), "target", "pre-authentication removed then roasted"),
    Feed("nopac", "targets", (), "actor", "the computer renamed to a DC then asking tickets as it"),
    Feed("dcshadow", "targets", (), "actor", "the computer registered as a DC then acting"),
    Feed("rbcd-change", "targets", (), "actor", "the delegation target then impersonated"),
)

# Reaching any of these means the domain's keys or its control are gone: the incident turns critical
# when it also holds another step (a chain), and says so in its title.
DOMINANCE = frozenset({"dcsync", "golden-ticket", "dcsync-rights", "adminsdholder-change", "dcshadow",
                       "sid-history", "dpapi-backup-key", "nopac", "primary-group-change"})

SEVERITY_ORDER = ("low", "medium", "high", "critical")

# Short names for titles ("Password spray from WS0019, then Kerberoasting and DCSync by jdoe").
STEP_NAMES: dict[str, str] = {
    "brute-force": "Brute force", "password-spray": "Password spray", "account-enumeration": "Account enumeration",
    "honeytoken-activity": "Honeytoken use", "sensitive-group-addition": "Sensitive group addition",
    "suspicious-service-creation": "Suspicious service", "remote-code-execution": "Remote code execution",
    "dcsync": "DCSync", "kerberoasting": "Kerberoasting", "asrep-roasting": "AS-REP roasting",
    "golden-ticket": "Golden ticket", "overpass-the-hash": "Overpass-the-hash", "pass-the-hash": "Pass-the-hash",
    "dpapi-backup-key": "DPAPI backup key theft", "remote-service-installation": "Remote service installation",
    "dcsync-rights": "DCSync rights granted", "shadow-credentials": "Shadow credentials",
    "rbcd-change": "RBCD change", "spn-added-to-user": "SPN added to a user", "primary-group-change":
    "Primary group change", "adminsdholder-change": "AdminSDHolder change", "acl-change": "ACL change",
    "gpo-change": "GPO change", "preauth-disabled": "Pre-authentication disabled", "nopac": "noPac rename",
    "sid-history": "SID-History injection", "dcshadow": "DCShadow", "dsrm-password-change": "DSRM password change",
    "log-cleared": "Log cleared", "audit-policy-disabled": "Audit policy weakened", "trust-created": "Trust created",
    "adcs-san-mismatch": "Certificate for another identity", "adcs-config-change": "AD CS configuration change",
    "wef-sender-mismatch": "Forwarded-event sender mismatch",
}
