"""Settings operators change at run time (honeytokens, extra sensitive groups, excluded sources, the
replication allow-list), the audit trail of every change made through the console or the API, and
stored readiness results.

Run-time lists add to what the configuration file sets (the file stays the baseline a redeploy
restores). Every detecting or routing process polls `settings_version` and applies a change within
seconds (runtime/settings.py).
"""

from __future__ import annotations

import copy
import secrets
import time
from typing import Any

import msgspec

from ..config import Detection

SETTINGS = {
    "honeytokens": "Decoy accounts (sAMAccountName or SID): any use of them raises an alert",
    "sensitive_groups": "Extra sensitive groups (name or SID), on top of the built-in list",
    "exclude_sources": "Hosts or addresses never alerted on as the source of brute force, spray or enumeration",
    "replication_allowed": ("Accounts that replicate the directory legitimately (Entra Connect MSOL_..., backup "
                            "products): name or SID, optionally pinned to addresses as name=10.0.0.5,10.0.0.6; "
                            "DCSync does not alert on them"),
    "directory_writers_allowed": ("Accounts whose directory edits are planned (name or SID): ACL, GPO and "
                                  "key-credential (shadow credentials) changes by them do not alert"),
    "sensitive_objects": ("Extra sensitive directory objects (DNs, or patterns such as *,OU=Tier0,DC=corp,DC=local) "
                          "whose permission or owner changes alert"),
    "alert_exclusions": ("Alerts kept but not raised, as Defender for Identity's exclusions: one rule per line, "
                         "'<alert type> account|source|destination=<name or pattern>' (e.g. 'brute-force "
                         "source=SCANNER01', '* account=CONTOSO\\svc_backup'); the alert is stored as suppressed "
                         "and not forwarded"),
}
MAX_ITEMS = 10_000
_enc = msgspec.json.Encoder()
_dec = msgspec.json.Decoder()


class SettingValueError(ValueError):
    """Entry `index` (of the cleaned list) is not valid for its setting."""

    def __init__(self, index: int, message: str) -> None:
        super().__init__(message)
        self.index = index


def clean_values(values: list[str]) -> list[str]:
    """Trimmed, de-duplicated (case-insensitively, first spelling kept), in the order given."""
    seen: set[str] = set()
    out = []
    for v in values:
        v = v.strip()
        if v and v.lower() not in seen:
            seen.add(v.lower())
            out.append(v)
    return out


def runtime_settings(store: Any) -> dict[str, dict]:
    """name -> {"values", "updated_at", "updated_by"} for every known setting (empty when never set)."""
    out: dict[str, dict[str, Any]] = {name: {"values": [], "updated_at": None, "updated_by": None} for name in SETTINGS}
    for name, value, at, by in store.query("SELECT name, value, updated_at, updated_by FROM runtime_settings"):
        if name in out:
            out[name] = {"values": list(_dec.decode(value)), "updated_at": at, "updated_by": by}
    return out


def settings_version(store: Any) -> float:
    rows = store.query("SELECT MAX(updated_at) FROM runtime_settings")
    return float(rows[0][0] or 0.0) if rows else 0.0


def effective_detection(base: Detection, runtime: dict[str, dict]) -> Detection:
    """The file's detection settings with the run-time lists added."""
    out = copy.deepcopy(base)
    for name in SETTINGS:
        setattr(out, name, clean_values([*getattr(base, name), *runtime.get(name, {}).get("values", [])]))
    return out


def put_setting(store: Any, name: str, values: list[str], actor: str, comment: str = "") -> dict:
    """Replace one list; returns what was added and removed. The change and its audit row commit together."""
    if name not in SETTINGS:
        raise KeyError(name)
    values = clean_values(values)
    if len(values) > MAX_ITEMS:
        raise ValueError(f"at most {MAX_ITEMS} entries")
    if name == "alert_exclusions":  # a rule that does not parse would silently suppress nothing
        from ..detectors.exclusions import parse

        for i, v in enumerate(values):
            try:
                parse(v)
            except ValueError as exc:
                raise SettingValueError(i, str(exc)) from None
    now = time.time()
    with store.transaction() as tx:
        rows = tx.query("SELECT value FROM runtime_settings WHERE name = ?", (name,))
        old = list(_dec.decode(rows[0][0])) if rows else []
        tx.execute("INSERT INTO runtime_settings (name, value, updated_at, updated_by) VALUES (?, ?, ?, ?) "
                   "ON CONFLICT (name) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at, "
                   "updated_by = excluded.updated_by", (name, _enc.encode(values).decode(), now, actor))
        before = {v.lower() for v in old}
        after = {v.lower() for v in values}
        change = {"added": [v for v in values if v.lower() not in before],
                  "removed": [v for v in old if v.lower() not in after], "comment": comment}
        audit(tx, actor, "settings.update", f"settings:{name}", change, now)
    return change


# -- audit trail ---------------------------------------------------------------------------------

def audit(store: Any, actor: str, action: str, target: str, detail: dict, at: float | None = None) -> None:
    """One row of who changed what, when (call inside the change's transaction)."""
    store.execute("INSERT INTO audit_log (id, at, actor, action, target, detail) VALUES (?, ?, ?, ?, ?, ?)",
                  (secrets.token_hex(8), time.time() if at is None else at, actor, action, target,
                   _enc.encode(detail).decode()))


def audit_log(store: Any, target: str | None = None, prefix: bool = False, limit: int = 100) -> list[dict]:
    sql = "SELECT at, actor, action, target, detail FROM audit_log"
    args: list[object] = []
    if target is not None:
        if prefix:
            sql += " WHERE target LIKE ? ESCAPE '!'"
            args.append(target.replace("!", "!!").replace("%", "!%").replace("_", "!_") + "%")
        else:
            sql += " WHERE target = ?"
            args.append(target)
    sql += " ORDER BY at DESC LIMIT ?"
    args.append(limit)
    return [{"at": at, "actor": actor, "action": action, "target": tgt, "detail": _dec.decode(detail)}
            for at, actor, action, tgt, detail in store.query(sql, args)]


# -- readiness results ---------------------------------------------------------------------------

def save_readiness(store: Any, actor: str, filename: str, result: dict) -> str:
    rid = secrets.token_hex(8)
    now = time.time()
    with store.transaction() as tx:
        tx.execute("INSERT INTO readiness_audits (id, at, actor, filename, result) VALUES (?, ?, ?, ?, ?)",
                   (rid, now, actor, filename, _enc.encode(result).decode()))
        audit(tx, actor, "readiness.upload", f"readiness:{rid}",
              {"filename": filename, "exit_status": result.get("exit_status")}, now)
    return rid


def readiness_results(store: Any, limit: int = 20) -> list[dict]:
    """Newest first; the first one carries its whole result, the rest a summary."""
    rows = store.query("SELECT id, at, actor, filename, result FROM readiness_audits ORDER BY at DESC LIMIT ?",
                       (limit,))
    out = []
    for i, (rid, at, actor, filename, result) in enumerate(rows):
        d = _dec.decode(result)
        item = {"id": rid, "at": at, "actor": actor, "filename": filename, "exit_status": d.get("exit_status"),
                "missing_required": d.get("missing_required", [])}
        if i == 0:
            item["result"] = d
        out.append(item)
    return out
