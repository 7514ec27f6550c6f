"""The one place every command gets its settings: TOML file < DCSENTRY_* environment < flags.

No click here, so the rules are tested (and reused) without running a command; the commands turn
the ValueError into a usage error (cli/common.py `settings`).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..config import Config, host_port, load_config

# environment variables that set [serve] keys (between the config file and the flags); docs/configuration.md
ENV = {
    "DCSENTRY_DATA_DIR": "data_dir", "DCSENTRY_STORE": "store", "DCSENTRY_WEB": "web",
    "DCSENTRY_SYSLOG_UDP": "syslog_udp", "DCSENTRY_SYSLOG_TCP": "syslog_tcp", "DCSENTRY_SYSLOG_TLS": "syslog_tls",
    "DCSENTRY_SYSLOG_RELP": "syslog_relp", "DCSENTRY_SYSLOG_RELP_TLS": "syslog_relp_tls",
    "DCSENTRY_TLS_CERT": "tls_cert", "DCSENTRY_TLS_KEY": "tls_key", "DCSENTRY_TLS_CLIENT_CA": "tls_client_ca",
    "DCSENTRY_FORWARD": "forward", "DCSENTRY_WEB_CERT": "web_cert", "DCSENTRY_WEB_KEY": "web_key",
    "DCSENTRY_ROLE": "role", "DCSENTRY_BUS": "bus", "DCSENTRY_WEBHOOK_SECRET": "webhook_secret",
    "DCSENTRY_RAW_EVENTS": "raw_events",
}
FLAG_OF = {"wef.https": "--wef-https", "wef.http": "--wef-http"}  # the rest are --<serve key with dashes>


def addresses(values: tuple[str, ...] | list[str]) -> list[str]:
    """Repeated flags or comma lists; `off` disables the listener."""
    out = [v.strip() for value in values for v in value.split(",") if v.strip()]
    return [] if out == ["off"] else out


def _set(section: Any, key: str, value: Any, where: str) -> None:
    if not hasattr(section, key):
        raise ValueError(f"{where}: no setting {key!r}")
    current = getattr(section, key)
    if isinstance(current, list):
        value = addresses((value,) if isinstance(value, str) else tuple(value))
    elif isinstance(value, (tuple, list)):
        raise ValueError(f"{where}: expected one value, got {len(value)}")
    setattr(section, key, value)


def _where(section: str, key: str) -> str:
    """Every place a listener address can come from, for the error message."""
    flag = FLAG_OF.get(f"{section}.{key}", "--" + key.replace("_", "-"))
    env = next((f", {var}" for var, k in ENV.items() if section == "serve" and k == key), "")
    return f"[{section}] {key} ({flag}{env})"


def check_addresses(cfg: Config) -> None:
    """Every listener and the web port parse as HOST:PORT now, not when the service binds them."""
    s = cfg.serve
    checks: list[tuple[str, str, list[str]]] = [
        ("serve", k, getattr(s, k)) for k in ("syslog_udp", "syslog_tcp", "syslog_tls", "syslog_relp",
                                              "syslog_relp_tls")]
    checks += [("serve", "web", [s.web] if s.web else []), ("wef", "https", cfg.wef.https),
               ("wef", "http", cfg.wef.http)]
    for section, key, values in checks:
        for value in values:
            try:
                host_port(value)
            except ValueError as exc:
                raise ValueError(f"{_where(section, key)}: {exc}") from None


def resolve_config(path: str | Path | None, environ: Mapping[str, str],
                   flags: Mapping[str, Any] | None = None) -> Config:
    """The effective settings of any command: defaults < the TOML file at `path` < the DCSENTRY_*
    variables of `environ` < `flags`, a map of "section.key" (e.g. "serve.store", "wef.https") to the
    parsed flag value; None or an empty tuple means the flag was not given. List settings take
    repeated or comma-separated values, and "off" for none. Raises ValueError saying what is wrong."""
    cfg = load_config(path)
    for var, key in ENV.items():
        if environ.get(var):
            _set(cfg.serve, key, environ[var], var)
    for name, value in (flags or {}).items():
        if value is None or (isinstance(value, (str, tuple, list)) and not value):
            continue
        section, _, key = name.partition(".")
        if section not in ("serve", "wef"):  # the flags set text and lists; detection's are files (--sigma adds)
            raise ValueError(f"{name}: not a setting a flag can set")
        _set(getattr(cfg, section), key, value, name)
    if cfg.serve.web == "off":
        cfg.serve.web = ""
    check_addresses(cfg)
    return cfg
