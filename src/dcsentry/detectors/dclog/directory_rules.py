"""Directory backdoors from 5136 as ONE table (reference/dc-log-alerts.md B8): a new rule is a row.

A row says which change it is about (attribute, object class, DN pattern, which objects), what
must have been written (`change`, a test named in directory_changes.CHANGE_TESTS), by whom
(`writer`), and the severity and words it gives. directory_changes.py matches every
`DirectoryChange` against the rows of its attribute; of the rows of one alert type that match,
the most severe speaks (PrivExchange is the DCSync-ACE row written by a machine account).
"""

from __future__ import annotations

from dataclasses import dataclass

SD = "ntsecuritydescriptor"
GPC = frozenset({"grouppolicycontainer"})
ACCOUNTS = frozenset({"user", "computer", "inetorgperson", "msds-groupmanagedserviceaccount",
                      "msds-managedserviceaccount", "msds-delegatedmanagedserviceaccount"})
USERS = frozenset({"user", "inetorgperson"})
ANY: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class Rule:
    name: str  # the row, as alerts name it (details.rules)
    type: str  # alert type (alerts.ALERT_TYPES)
    attributes: frozenset[str]  # AttributeLDAPDisplayName, lower case; empty: any attribute
    change: str  # what was written: a CHANGE_TESTS name (added, replication-ace, control-ace, owner ...)
    classes: frozenset[str] = ANY  # ObjectClass, lower case; empty: any
    dn: str = ""  # regular expression searched in the lower-case ObjectDN; "": any
    target: str = ""  # a TARGET_TESTS name (krbtgt, dc, sensitive, sensitive-account, default-gpo); "": any
    writer: str = "any"  # a WRITER_TESTS name: any, machine, self, other-unlisted, unplanned
    severity: str = "medium"
    why: str = ""  # what it means, for the alert's description


def _rows(*rows: Rule) -> tuple[Rule, ...]:
    return rows


RULES = _rows(
    # -- replication rights on the domain root (Sigma ...backdoor_dcsync_rights; XDR xdr_SuspiciousAdditionOfAcl)
    Rule("dcsync-ace", "dcsync-rights", frozenset({SD}), "replication-ace", frozenset({"domaindns"}), severity="high",
         why="whoever holds these rights can DCSync: read every password hash, krbtgt included, without touching a DC"),
    Rule("dcsync-ace-by-machine", "dcsync-rights", frozenset({SD}), "replication-ace", frozenset({"domaindns"}),
         writer="machine", severity="high",
         why="a machine account wrote the domain's permissions: the PrivExchange pattern (an Exchange server's "
             "relayed authentication granting DCSync rights)"),
    # -- shadow credentials (MDI 2431, XDR xdr_ShadowCredentialsAttack)
    Rule("key-credential-added", "shadow-credentials", frozenset({"msds-keycredentiallink"}), "added", ACCOUNTS,
         writer="other-unlisted", severity="high",
         why="a key written to msDS-KeyCredentialLink lets its holder get a TGT for the account by PKINIT, "
             "and its NT hash with it, without knowing the password"),
    Rule("key-credential-self", "shadow-credentials", frozenset({"msds-keycredentiallink"}), "added", ACCOUNTS,
         writer="self", severity="medium",
         why="a computer wrote a key on its own object: Windows Hello / device registration does, and so does a "
             "relay of the computer's own authentication (ntlmrelayx --shadow-credentials)"),
    # -- resource-based constrained delegation (XDR xdr_SuspiciousRbcdAttributeChange; MDI 2423, 2040)
    Rule("rbcd-set", "rbcd-change", frozenset({"msds-allowedtoactonbehalfofotheridentity"}), "new-delegate",
         severity="medium",
         why="the accounts in this descriptor can impersonate any user (Domain Admins included) to the services "
             "of the target by S4U2Proxy"),
    Rule("rbcd-by-machine", "rbcd-change", frozenset({"msds-allowedtoactonbehalfofotheridentity"}), "added",
         writer="machine", severity="high",
         why="written by a machine account: the relayed-computer-authentication takeover (MDI 2423)"),
    Rule("rbcd-on-dc", "rbcd-change", frozenset({"msds-allowedtoactonbehalfofotheridentity"}), "added",
         target="dc", severity="high", why="the target is a domain controller: impersonation to it is domain takeover"),
    Rule("rbcd-on-krbtgt", "rbcd-change", frozenset({"msds-allowedtoactonbehalfofotheridentity"}), "added",
         target="krbtgt", severity="high",
         why="delegation to krbtgt lets its holders forge service tickets for the KDC itself (MDI 2040)"),
    # -- SPN on a user (Sigma ...ad_user_backdoors; XDR xdr_SuspiciousAdditionOfSpnToUser)
    Rule("spn-on-user", "spn-added-to-user", frozenset({"serviceprincipalname"}), "added", USERS, severity="low",
         why="a user with an SPN can be Kerberoasted: anyone may request a ticket encrypted with its password"),
    Rule("spn-on-sensitive-user", "spn-added-to-user", frozenset({"serviceprincipalname"}), "added", USERS,
         target="sensitive-account", severity="high",
         why="the user is privileged (or a honeytoken): its password is now open to offline cracking"),
    # -- primaryGroupID (XDR xdr_SuspiciousChangeInUserPrimaryGroupId); the 4738 view joins the same alert
    Rule("primary-group-privileged", "primary-group-change", frozenset({"primarygroupid"}), "privileged-group", USERS,
         severity="high", why="a privileged primary group grants its rights without a member entry: membership "
                              "listings and 4728/4756 never show it"),
    Rule("primary-group-unusual", "primary-group-change", frozenset({"primarygroupid"}), "unusual-group", USERS,
         severity="medium", why="users keep Domain Users (513) as primary group; another one hides a membership"),
    # -- AdminSDHolder (MDI 2430): SDProp copies its permissions onto every protected account within the hour
    Rule("adminsdholder", "adminsdholder-change", frozenset({SD}), "sd-changed", dn=r"^cn=adminsdholder,cn=system,",
         severity="high", why="SDProp stamps these permissions on every privileged account and group every 60 "
                              "minutes: a persistent backdoor on Tier 0"),
    # -- other permission and owner changes on sensitive objects
    Rule("acl-sensitive", "acl-change", frozenset({SD}), "control-ace", target="sensitive", writer="unplanned",
         severity="medium", why="control rights on this object lead to its takeover (and of what it contains)"),
    Rule("acl-sensitive-by-machine", "acl-change", frozenset({SD}), "control-ace", target="sensitive",
         writer="machine", severity="high", why="a machine account changed them: relayed computer authentication"),
    Rule("owner-changed", "acl-change", frozenset({SD}), "owner", ACCOUNTS | frozenset({"group"}), writer="unplanned",
         severity="medium", why="the owner of an object can always rewrite its permissions (WriteOwner abuse)"),
    Rule("owner-changed-sensitive", "acl-change", frozenset({SD}), "owner", target="sensitive", writer="unplanned",
         severity="high", why="the owner of an object can always rewrite its permissions (WriteOwner abuse)"),
    # -- group policy (dcsentry "GPO tampering"; Sigma default-GPO edits)
    Rule("gpo-cse-risky", "gpo-change", frozenset({"gpcmachineextensionnames", "gpcuserextensionnames"}), "cse-risky",
         GPC, writer="unplanned", severity="medium",
         why="these client-side extensions run tasks, scripts, services or change local groups on every computer "
             "the policy applies to: how attackers push code through a GPO"),
    Rule("gpo-cse", "gpo-change", frozenset({"gpcmachineextensionnames", "gpcuserextensionnames"}), "cse-added",
         GPC, writer="unplanned", severity="low", why="a new kind of setting was added to the policy"),
    Rule("gpo-path", "gpo-change", frozenset({"gpcfilesyspath"}), "replaced", GPC, severity="high",
         why="the policy's files now come from another path: whoever controls it controls the settings"),
    Rule("gpo-acl", "gpo-change", frozenset({SD}), "control-ace", GPC, writer="unplanned", severity="medium",
         why="whoever may edit a GPO runs code on every computer it is linked to"),
    Rule("gpo-owner", "gpo-change", frozenset({SD}), "owner", GPC, writer="unplanned", severity="medium",
         why="whoever owns a GPO may edit it, and so run code where it applies"),
    Rule("gpo-default-edited", "gpo-change", ANY, "any", GPC, target="default-gpo", writer="unplanned",
         severity="medium", why="the Default Domain (Controllers) Policy applies to every computer (every DC)"),
    Rule("gpo-new-editor", "gpo-change", frozenset({"versionnumber", "displayname", "flags", "gpcwqlfilter"}),
         "new-editor", GPC, writer="unplanned", severity="low",
         why="first group policy edit by this account (version bumps by the usual GPO editors stay quiet)"),
    Rule("gpo-linked", "gpo-change", frozenset({"gplink"}), "gpo-linked", frozenset({"domaindns", "organizationalunit",
                                                                                     "site"}),
         writer="unplanned", severity="low", why="a policy now applies to the objects below this container"),
)

# Client-side extensions (gPC*ExtensionNames GUIDs): the ones that run code or change local privilege.
CSE_RISKY: dict[str, str] = {
    "aadced64-746c-4633-a97c-d61349046527": "Scheduled Tasks",
    "cab54552-deea-4691-817e-ed4a4d1afc72": "Scheduled Tasks (editor)",
    "827d319e-6eac-11d2-a4ea-00c04f79f83a": "Security Settings",
    "803e14a0-b4fb-11d0-a0d0-00a0c90f574b": "Computer Restricted Groups (editor)",
    "42b5faae-6536-11d2-ae5a-0000f87571e3": "Scripts (startup/shutdown, logon/logoff)",
    "40b6664f-4972-11d1-a7ca-0000f87571e3": "Scripts (editor)",
    "c6dc5466-785a-11d2-84d0-00c04fb169f7": "Software Installation",
    "91fbb303-0cd5-4055-bf42-e512a681b325": "Services",
    "17d89fec-5c44-4972-b12d-241caef74509": "Local Users and Groups",
    "79f92669-4224-476c-9c5c-6efb4d87df4a": "Local Users and Groups (editor)",
    "7150f9bf-48ad-4da4-a49c-29ef4a8369ba": "Files",
    "b087be9d-ed37-454f-af9c-04291e351182": "Registry",
    "bee07a6a-ec9f-4659-b8c9-0b1937907c83": "Registry (editor)",
}
CSE_NAMES: dict[str, str] = {
    **CSE_RISKY,
    "35378eac-683f-11d2-a89a-00c04fbbcfa2": "Administrative Templates (Registry)",
    "5794dafd-be60-433f-88a2-1a31939ac01f": "Drive Maps",
    "e437bc1c-aa7d-11d2-a382-00c04f991e27": "IP Security",
    "b1be8d72-6eac-11d2-a4ea-00c04f79f83a": "EFS Recovery",
}
DEFAULT_GPOS = {"31b2f340-016d-11d2-945f-00c04fb984f9": "Default Domain Policy",
                "6ac1786c-016f-11d2-945f-00c04fb984f9": "Default Domain Controllers Policy"}

# Trustees whose rights are part of the default security descriptors (MS-ADSC): never "new control".
DEFAULT_TRUSTEES = frozenset({"SY", "BA", "DA", "EA", "ED", "DD", "RO", "CO", "PS", "SA", "KA", "EK", "S-1-5-18",
                              "S-1-5-9", "S-1-5-10", "S-1-3-0", "S-1-5-32-544"})
DEFAULT_RIDS = frozenset({498, 512, 516, 518, 519, 521, 526, 527})
# Privileged groups a primaryGroupID may point at (same-domain global groups).
PRIVILEGED_PRIMARY = {512: "Domain Admins", 516: "Domain Controllers", 518: "Schema Admins", 519: "Enterprise Admins",
                      520: "Group Policy Creator Owners", 521: "Read-only Domain Controllers",
                      498: "Enterprise Read-only Domain Controllers", 526: "Key Admins", 527: "Enterprise Key Admins"}
PLAIN_PRIMARY = frozenset({513})  # Domain Users
