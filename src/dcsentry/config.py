"""Settings, with the defaults documented in docs/detections.md. TOML file < env < flags.

Thresholds are dcsentry's own: Defender for Identity publishes none (reference/alerts.md).
"""

from __future__ import annotations

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
class Detection:
    brute_force: BruteForce = field(default_factory=BruteForce)
    password_spray: PasswordSpray = field(default_factory=PasswordSpray)
    account_enumeration: AccountEnumeration = field(default_factory=AccountEnumeration)
    sensitive_group: SensitiveGroup = field(default_factory=SensitiveGroup)
    service_creation: ServiceCreation = field(default_factory=ServiceCreation)
    honeytokens: list[str] = field(default_factory=list)  # account names (sAMAccountName) or SIDs
    sensitive_groups: list[str] = field(default_factory=list)  # extra group names or SIDs
    exclude_sources: list[str] = field(default_factory=list)  # hosts/addresses never alerted as sources
    sigma: list[str] = field(default_factory=list)  # Sigma rule files/folders run beside the detectors (docs/sigma.md)
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
    tls_cert: str = ""
    tls_key: str = ""
    tls_client_ca: str = ""  # require client certificates signed by this CA
    web: str = "127.0.0.1:8080"
    web_cert: str = ""  # certificate (PEM) for the web port: HTTPS when set
    web_key: str = ""  # its private key (PEM); empty when the certificate file holds it
    forward: list[str] = field(default_factory=list)  # cef+udp://, cef+tcp://, cef+tls://, jsonl:///
    spool_max_rows: int = 2_000_000
    retention_days: float = 30.0
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


_SECURITY_IDS = (4776, 4728, 4729, 4732, 4733, 4756, 4757, 4624, 4625, 4768, 4769, 4771)


def _ids_xpath(ids: tuple[int, ...]) -> str:
    return "*[System[(" + " or ".join(f"EventID={i}" for i in ids) + ")]]"


def default_select() -> dict[str, str]:
    """The default subscription's queries: the events dcsentry reads, nothing else (issue #6)."""
    return {"Security": _ids_xpath(_SECURITY_IDS),
            "System": "*[System[Provider[@Name='Service Control Manager'] and (EventID=7045)]]",
            "Microsoft-Windows-NTLM/Operational": _ids_xpath((8004,))}


@dataclass
class WefSubscription:
    name: str = "dcsentry"
    select: dict[str, str] = field(default_factory=default_select)  # channel -> XPath filter
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
                    isinstance(k, str) and isinstance(v, str) and v.strip() for k, v in select.items()):
                raise ValueError(f"{where}[{i}].select: expected a table of channel = \"XPath\"")
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
            setattr(obj, name, value)


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
