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


@dataclass
class Config:
    detection: Detection = field(default_factory=Detection)
    health: Health = field(default_factory=Health)
    serve: Serve = field(default_factory=Serve)
    bus: Bus = field(default_factory=Bus)


def _apply(obj: Any, values: dict[str, Any], where: str) -> None:
    known = {f.name: f for f in fields(obj)}
    for key, value in values.items():
        name = key.replace("-", "_")
        if name not in known:
            raise ValueError(f"{where}: unknown setting {key!r} (known: {', '.join(sorted(known))})")
        current = getattr(obj, name)
        if is_dataclass(current):
            if not isinstance(value, dict):
                raise ValueError(f"{where}.{key}: expected a table")
            _apply(current, value, f"{where}.{key}")
        elif isinstance(current, list):
            if not isinstance(value, list):
                raise ValueError(f"{where}.{key}: expected a list")
            setattr(obj, name, [str(v) for v in value])
        elif isinstance(current, (int, float)) and not isinstance(current, bool):
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
