"""Settings, with the defaults documented in docs/detections.md. TOML file < env < flags.

Thresholds are dcsentry's own: Defender for Identity publishes none (reference/alerts.md).
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any

DAY = 86400.0


@dataclass
class BruteForce:
    threshold: int = 15  # wrong passwords for one account from one source ...
    window: float = 600.0  # ... within this many seconds
    learning_period: float = 7 * DAY
    # or this many wrong passwords from one source over 2+ accounts within `window`, with more tries per
    # account on average than password_spray.max_per_account (fewer per account is a spray)
    source_threshold: int = 20


@dataclass
class PasswordSpray:
    accounts: int = 5  # distinct accounts with a wrong password from one source ...
    window: float = 3600.0  # ... within this many seconds (a fast spray)
    slow_accounts: int = 15  # or this many ...
    slow_window: float = DAY  # ... within a day (a slow spray under lockout thresholds)
    max_per_account: float = 3.0  # average tries per account above this is brute force, not spray
    typo_window: float = 300.0  # a failure followed by a success within this is a typo, not a sprayed account
    learning_period: float = 7 * DAY


@dataclass
class AccountEnumeration:
    names: int = 8  # distinct unknown account names from one source ...
    window: float = 900.0  # ... within this many seconds


@dataclass
class SensitiveGroup:
    learning_period: float = 28 * DAY  # per DC, from its first event (Defender for Identity: four weeks)


@dataclass
class ServiceCreation:
    score: int = 3  # indicator score at which a service is suspicious


@dataclass
class AccountChanges:
    """Account-management alerts (preauth-disabled, nopac, sid-history, dcshadow, dsrm-password-change)."""

    nopac_window: float = 600.0  # seconds a computer creation / SPN clear / rename keeps feeding one noPac chain
    promotion_grace: float = 3600.0  # a DCShadow candidate that becomes a DC (SERVER_TRUST) within this is a promotion
    sid_history_allowed: list[str] = field(default_factory=list)  # migration accounts (name/SID) adding SIDHistory
    dsrm_allowed: list[str] = field(default_factory=list)  # accounts (name/SID) whose DSRM password rotation is planned


@dataclass
class DcSync:
    """DCSync (4662 replication rights on the domain root) and DPAPI backup-key reads (4662 on the secret)."""

    # Accounts that replicate legitimately (Entra Connect `MSOL_<id>`, backup products): exact name or SID,
    # optionally pinned to source addresses: "MSOL_0123abcd=10.0.0.5" (several: "name=10.0.0.5,10.0.0.6").
    allowed: list[str] = field(default_factory=list)
    learning_period: float = 15 * DAY  # replicating accounts seen in this period are learned (alerts say learning)
    dpapi_allowed: list[str] = field(default_factory=list)  # accounts (name/SID) allowed to read the DPAPI backup key


@dataclass
class PassTheHash:
    """pass-the-hash: injected credentials (4624 type 9 seclogo), keyless NTLM network logons, and the DC's
    profile of accounts that normally use Kerberos."""

    learning_period: float = 14 * DAY  # per DC, before an unusual NTLM source alerts outside learning
    min_kerberos: int = 20  # Kerberos authentications an account needs before NTLM from it is unusual ...
    max_ntlm_share: float = 0.05  # ... with NTLM at most this share of its authentications
    allowed_sources: list[str] = field(default_factory=list)  # hosts/addresses with keyless NTLM (scanners, NAS)


@dataclass
class RemoteService:
    """remote-service-installation: a service installed through another host's network logon (4697+4624, 7045+5145)."""

    window: float = 30.0  # seconds from a 5145 write to svcctl to the 7045 it explains
    learning_period: float = 7 * DAY  # (installer, source, service) seen in this period are learned (SCCM, PDQ)
    allowed_sources: list[str] = field(default_factory=list)  # Tier-0 admin hosts / deployment servers (name/address)


@dataclass
class Kerberos:
    """Kerberos ticket detections (docs/detections.md, reference/dc-log-alerts.md B2-B4)."""

    roast_services: int = 3  # distinct user services with RC4 tickets from one source ...
    roast_window: float = 600.0  # ... within this many seconds: Kerberoasting (High)
    spn_learning: float = 7 * DAY  # (source, service) RC4 pairs and RC4-using services learned this long
    asrep_accounts: int = 2  # accounts answered without pre-authentication for one source ...
    asrep_window: float = 600.0  # ... within this many seconds: AS-REP roasting (High)
    asrep_learning: float = 7 * DAY  # (account, source) pairs seen this long without alert are legacy clients
    downgrade_learning: float = 5 * DAY  # AES ticket profiles learned before an RC4 ticket is a downgrade
    downgrade_min_aes: int = 3  # AES service tickets an account needs before its profile counts as AES
    tgt_window: float = 10 * 3600.0  # a service ticket without a TGT for it from that address within this
    opth_learning: float = 30 * DAY  # TGT encryption profile per account (Defender for Identity: one month)
    allowed_sources: list[str] = field(default_factory=list)  # scanners / legacy hosts (address or name)


@dataclass
class Tampering:
    """Cover-ups, trusts and AD CS (log-cleared, audit-policy-disabled, trust-created, adcs-san-mismatch,
    adcs-config-change)."""

    # Logs whose clearing on a DC is also a health alert (dcsentry reads them); a 104 that names no log counts too.
    health_channels: list[str] = field(default_factory=lambda: ["Security", "System",
                                                                "Microsoft-Windows-NTLM/Operational"])
    audit_subcategories: list[str] = field(default_factory=list)  # extra 4719 subcategory GUIDs to watch
    planned_trusts: list[str] = field(default_factory=list)  # trusts being set up (DNS/NetBIOS names): medium at most
    # Certificate requests for other identities that are expected: "DOMAIN\\requester", "requester:Template"
    # or "*:Template" (enrollment agents, NDES/SCEP and Intune connectors).
    adcs_allowed: list[str] = field(default_factory=list)
    adcs_dc_templates: list[str] = field(default_factory=lambda: [
        "DomainController", "DomainControllerAuthentication", "KerberosAuthentication", "DirectoryEmailReplication"])
    adcs_audit_filter: int = 127  # the CA's AuditFilter dcsentry needs (all seven categories)


@dataclass
class DirectoryChanges:
    """Directory backdoors from 5136 (dcsync-rights, shadow-credentials, rbcd-change, spn-added-to-user,
    primary-group-change, adminsdholder-change, acl-change, gpo-change; detectors/dclog/directory_rules.py)."""

    # Provisioning accounts that write msDS-KeyCredentialLink (fnmatch patterns, case-insensitive, or SIDs):
    # Entra Connect's AD DS connector `MSOL_<id>`, Entra Cloud Sync's gMSA, AD FS service accounts.
    key_writers: list[str] = field(default_factory=lambda: ["MSOL_*", "provAgentgMSA$", "pGMSA_*", "*adfs*"])
    pkinit_window: float = 86400.0  # a PKINIT TGT (4768 PreAuthType 16) this soon after shadow credentials: "used"
    replication_trustees: list[str] = field(default_factory=list)  # names/SIDs allowed to receive replication rights
    sensitive_dns: list[str] = field(default_factory=list)  # extra DNs (`*,OU=Tier0,...`) whose ACL/owner changes alert
    allowed_writers: list[str] = field(default_factory=list)  # accounts whose ACL/GPO edits are planned
    gpo_learning: float = 7 * DAY  # (GPO, editor) pairs seen this long are the usual editors (version bumps stay quiet)
    rbcd_learning: float = 7 * DAY  # (target, delegate) RBCD pairs seen this long are known service delegations


@dataclass
class Incidents:
    """Linking alerts into incidents (docs/incidents.md; the rules are data in incidents/rules.py)."""

    window: float = 4 * 3600.0  # alerts sharing a source host or an acting account this close in time: one incident
    feed_window: float = 24 * 3600.0  # one alert's output (a guessed account...) used by the next this soon: linked


@dataclass
class Detection:
    brute_force: BruteForce = field(default_factory=BruteForce)
    password_spray: PasswordSpray = field(default_factory=PasswordSpray)
    account_enumeration: AccountEnumeration = field(default_factory=AccountEnumeration)
    sensitive_group: SensitiveGroup = field(default_factory=SensitiveGroup)
    service_creation: ServiceCreation = field(default_factory=ServiceCreation)
    account_changes: AccountChanges = field(default_factory=AccountChanges)
    dcsync: DcSync = field(default_factory=DcSync)
    pass_the_hash: PassTheHash = field(default_factory=PassTheHash)
    remote_service: RemoteService = field(default_factory=RemoteService)
    kerberos: Kerberos = field(default_factory=Kerberos)
    directory_changes: DirectoryChanges = field(default_factory=DirectoryChanges)
    tampering: Tampering = field(default_factory=Tampering)
    honeytokens: list[str] = field(default_factory=list)  # account names (sAMAccountName) or SIDs
    sensitive_groups: list[str] = field(default_factory=list)  # extra group names or SIDs
    exclude_sources: list[str] = field(default_factory=list)  # hosts/addresses never alerted as sources
    # accounts that replicate legitimately (Entra Connect `MSOL_<id>`, backup products), written as
    # [detection.dcsync] allowed ("name or SID", optionally "=addr[,addr]"): the DCSync detector reads both
    # lists. This one is also the console's run-time list (store/settings.py), beside honeytokens.
    replication_allowed: list[str] = field(default_factory=list)
    # run-time lists of the directory-change detector (console settings too), added to
    # [detection.directory_changes] allowed_writers/key_writers and sensitive_dns
    directory_writers_allowed: list[str] = field(default_factory=list)
    sensitive_objects: list[str] = field(default_factory=list)
    # Defender for Identity-style exclusions, "<alert type> account|source|destination=<pattern>": the alert
    # is stored as suppressed and not forwarded (detectors/exclusions.py); also a run-time list
    alert_exclusions: list[str] = field(default_factory=list)
    sigma: list[str] = field(default_factory=list)  # Sigma rule files/folders run beside the detectors (docs/sigma.md)
    incidents: Incidents = field(default_factory=Incidents)
    incident_gap: float = 3600.0  # an alert grows while its activity goes on with gaps below this
    max_evidence: int = 50  # evidence items kept per alert (counts go on)


@dataclass
class Health:
    check_interval: float = 60.0  # seconds between health evaluations
    missing_scale: float = 1.0  # multiplies each requirement's "missing after" (tests shrink it)
    unparseable_ratio: float = 0.5  # a peer whose messages fail this often ...
    unparseable_min: int = 100  # ... over at least this many messages
    spool_near_full: float = 0.8  # fraction of the spool bound


@dataclass
class Serve:
    data_dir: str = ""  # default: $XDG_DATA_HOME/dcsentry or ~/.local/share/dcsentry
    store: str = "sqlite:dcsentry.db"  # sqlite:PATH (relative to the data dir) or postgresql://user@host/db
    syslog_udp: list[str] = field(default_factory=lambda: ["127.0.0.1:5514"])
    syslog_tcp: list[str] = field(default_factory=lambda: ["127.0.0.1:5514"])
    syslog_tls: list[str] = field(default_factory=list)
    syslog_relp: list[str] = field(default_factory=list)  # RELP (acknowledged syslog: rsyslog omrelp)
    syslog_relp_tls: list[str] = field(default_factory=list)  # RELP over TLS (tls_cert/tls_key/tls_client_ca)
    senders: list[str] = field(default_factory=list)  # "10.0.0.5 = DC01", "cn:wec01 = *": who may speak for whom
    tls_cert: str = ""
    tls_key: str = ""
    tls_client_ca: str = ""  # require client certificates signed by this CA
    web: str = "127.0.0.1:8080"
    web_cert: str = ""  # certificate (PEM) for the web port: HTTPS when set
    web_key: str = ""  # its private key (PEM); empty when the certificate file holds it
    forward: list[str] = field(default_factory=list)  # cef+udp://, cef+tls://, jsonl:///, ocsf:///, webhook+https://...
    webhook_secret: str = ""  # signs webhook+https:// deliveries (HMAC-SHA256); env DCSENTRY_WEBHOOK_SECRET
    spool_max_rows: int = 2_000_000
    retention_days: float = 30.0
    raw_events: str = "all"  # none | detector | all: which raw events the store keeps (store/rows.py RawEvents)
    role: str = "all"  # all | ingest | detect | web (docs/scaling.md); all without `bus` = one process
    bus: str = ""  # nats://host:4222[,nats://...]: the JetStream bus between ingest and detect nodes


@dataclass
class Bus:
    """The JetStream pipeline's shape; every node of a deployment must agree on it."""

    name: str = "dcsentry"  # prefix of the stream, subjects, consumers and buckets (deployments can share a NATS)
    partitions: int = 16  # fixed when the stream is created; a new count needs a new name
    lease_seconds: float = 10.0  # a dead worker's partitions move after at most this long
    replay_seconds: float = 3600.0  # stream kept behind each checkpoint to rebuild state on takeover
    retention_hours: float = 24.0  # the stream keeps messages this long (processed or not)
    max_bytes: int = -1  # stream bound; when full, publishes are refused and ingest pushes back (-1: none)
    duplicate_window: float = 120.0  # seconds in which JetStream drops a re-published message id
    batch: int = 2000  # messages per fetch and per store transaction


_SECURITY_IDS = (4776, 4728, 4729, 4732, 4733, 4756, 4757, 4624, 4625, 4768, 4769, 4771,
                 # the DC-log detections' events (reference/dc-log-alerts.md), 1102 = Security log cleared
                 4697, 4720, 4722, 4724, 4725, 4726, 4738, 4741, 4742, 4743, 4765, 4766, 4781, 4794,
                 4662, 5136, 5137, 5141, 4719, 4706, 4865, 1102,
                 # a CA's own events (a DC never writes them: the same subscription serves CAs)
                 4882, 4885, 4886, 4887, 4888, 4890, 4896, 4898, 4899, 4900)
# Windows refuses an event query whose XPath holds more than about 20 EventID clauses, so the ids
# are split over several <Select> elements of the same channel.
_MAX_IDS_PER_SELECT = 20
# 5145 (Detailed File Share) only where it tells of the service control manager's pipe: the rest
# of that subcategory is every file-share access check.
_SVCCTL_5145 = "*[System[(EventID=5145)] and EventData[Data[@Name='RelativeTargetName']='svcctl']]"


def _ids_xpath(ids: tuple[int, ...]) -> str:
    return "*[System[(" + " or ".join(f"EventID={i}" for i in ids) + ")]]"


def _ids_xpaths(ids: tuple[int, ...]) -> list[str]:
    return [_ids_xpath(ids[i:i + _MAX_IDS_PER_SELECT]) for i in range(0, len(ids), _MAX_IDS_PER_SELECT)]


def default_select() -> dict[str, str | list[str]]:
    """The default subscription's queries: the events dcsentry reads, nothing else (issue #6). A
    channel's value is one XPath or a list of them (one <Select> each)."""
    return {"Security": [*_ids_xpaths(_SECURITY_IDS), _SVCCTL_5145],
            "System": ["*[System[Provider[@Name='Service Control Manager'] and (EventID=7045)]]",
                       "*[System[Provider[@Name='Microsoft-Windows-Eventlog'] and (EventID=104)]]"],
            "Microsoft-Windows-NTLM/Operational": _ids_xpath((8004,))}


@dataclass
class WefSubscription:
    name: str = "dcsentry"
    select: dict[str, str | list[str]] = field(default_factory=default_select)  # channel -> XPath filter(s)
    content_format: str = "Raw"  # Raw (EventData only) or RenderedText (adds the rendered message)
    read_existing: bool = False  # without a bookmark, replay what the logs hold instead of new events only


@dataclass
class Wef:
    """Windows Event Forwarding: dcsentry as the Windows Event Collector (docs/wef.md)."""

    https: list[str] = field(default_factory=list)  # HOST:PORT listeners, TLS with client certificates
    http: list[str] = field(default_factory=list)  # HOST:PORT listeners, Kerberos message encryption
    cert: str = ""  # server certificate (PEM) for https; CN/SAN = the name in the GPO string
    key: str = ""
    client_ca: list[str] = field(default_factory=list)  # CAs issuing the DCs' client certificates
    keytab: str = ""  # keytab with HTTP/ and HOST/ principals of this collector, for http
    refresh: int = 60  # seconds between a client's enumerations (the GPO string's Refresh)
    heartbeat_interval: float = 900.0  # a client with nothing to send says so this often
    max_time: float = 30.0  # seconds a client may hold events to batch them
    max_envelope_size: int = 512000  # bytes a client puts in one delivery
    max_request_bytes: int = 4 << 20  # larger requests are refused (413) before they are read
    compression: bool = False  # ask clients for SLDC-compressed deliveries
    silent_after: float = 0.0  # a client silent this long "stopped forwarding"; 0 = 2 heartbeats + max_time
    intermediate_collectors: list[str] = field(default_factory=list)  # senders allowed to relay others' events
    subscriptions: list[WefSubscription] = field(default_factory=lambda: [WefSubscription()])


@dataclass
class Config:
    detection: Detection = field(default_factory=Detection)
    health: Health = field(default_factory=Health)
    serve: Serve = field(default_factory=Serve)
    wef: Wef = field(default_factory=Wef)
    bus: Bus = field(default_factory=Bus)


def _xpaths_ok(v: Any) -> bool:
    if isinstance(v, str):
        return bool(v.strip())
    return isinstance(v, list) and bool(v) and all(isinstance(x, str) and x.strip() for x in v)


def _subscriptions(value: Any, where: str) -> list[WefSubscription]:
    """`[[wef.subscriptions]]` tables; `select` maps channel names to XPath filters."""
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise ValueError(f"{where}: expected [[wef.subscriptions]] tables")
    out = []
    for i, table in enumerate(value):
        sub = WefSubscription()
        select = table.get("select")
        _apply(sub, {k: v for k, v in table.items() if k != "select"}, f"{where}[{i}]")
        if select is not None:
            if not isinstance(select, dict) or not select or not all(
                    isinstance(k, str) and _xpaths_ok(v) for k, v in select.items()):
                raise ValueError(f"{where}[{i}].select: expected a table of channel = \"XPath\" (or a list of "
                                 "XPath strings, one <Select> each)")
            sub.select = dict(select)
        if sub.content_format not in ("Raw", "RenderedText"):
            raise ValueError(f"{where}[{i}].content_format: Raw or RenderedText")
        out.append(sub)
    names = [s.name for s in out]
    if len(set(names)) != len(names):
        raise ValueError(f"{where}: subscription names must be unique")
    return out


def _apply(obj: Any, values: dict[str, Any], where: str) -> None:
    known = {f.name: f for f in fields(obj)}
    for key, value in values.items():
        name = key.replace("-", "_")
        if name not in known:
            raise ValueError(f"{where}: unknown setting {key!r} (known: {', '.join(sorted(known))})")
        current = getattr(obj, name)
        if name == "subscriptions" and isinstance(obj, Wef):
            obj.subscriptions = _subscriptions(value, f"{where}.{key}")
        elif is_dataclass(current):
            if not isinstance(value, dict):
                raise ValueError(f"{where}.{key}: expected a table")
            _apply(current, value, f"{where}.{key}")
        elif isinstance(current, list):
            if value == "off" and name in LISTENER_KEYS and isinstance(obj, (Serve, Wef)):
                value = []  # as the flags say it: `syslog_udp = "off"`
            if not isinstance(value, list):
                raise ValueError(f"{where}.{key}: expected a list")
            setattr(obj, name, [str(v) for v in value])
        elif isinstance(current, bool):
            if not isinstance(value, bool):
                raise ValueError(f"{where}.{key}: expected true or false")
            setattr(obj, name, value)
        elif isinstance(current, (int, float)):
            if not isinstance(value, (int, float)) or isinstance(value, bool):
                raise ValueError(f"{where}.{key}: expected a number")
            setattr(obj, name, type(current)(value))
        else:
            if isinstance(obj, Serve) and name == "raw_events" and value not in ("none", "detector", "all"):
                raise ValueError(f"{where}.{key}: expected \"none\", \"detector\" or \"all\"")
            setattr(obj, name, value)


LISTENER_KEYS = frozenset({"syslog_udp", "syslog_tcp", "syslog_tls", "syslog_relp", "syslog_relp_tls", "https", "http"})


def host_port(text: str, default_host: str = "127.0.0.1") -> tuple[str, int]:
    """The one HOST:PORT parser: HOST:PORT, [IPv6]:PORT or :PORT (bare IPv6 refused: `::1:514` is a guess)."""
    host, sep, port = text.strip().rpartition(":")
    v6 = host[1:-1] if host[:1] == "[" and host[-1:] == "]" else None
    if v6 is not None and (not v6 or any(c not in "0123456789abcdefABCDEF:." for c in v6)) or (
            v6 is None and any(c in ":[]/@" or c.isspace() for c in host)):
        raise ValueError(f"expected HOST:PORT or [IPv6]:PORT (e.g. [::1]:514), got {text!r}")
    if not sep or not (port.isascii() and port.isdigit()) or int(port) > 65535:
        raise ValueError(f"expected HOST:PORT (port 0-65535), got {text!r}")
    return (host if v6 is None else v6) or default_host, int(port)


def data_dir(configured: str) -> Path:
    """[serve] data_dir, else the XDG data home's dcsentry folder: the store and spool live there."""
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return Path(configured).expanduser() if configured else Path(base) / "dcsentry"


def load_config(path: str | Path | None = None) -> Config:
    """Defaults, overlaid with a TOML file when given. Unknown keys are errors, not ignored."""
    cfg = Config()
    if path is not None:
        p = Path(path)
        try:
            data = tomllib.loads(p.read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ValueError(f"{p}: {exc}") from None
        _apply(cfg, data, str(p))
    return cfg
