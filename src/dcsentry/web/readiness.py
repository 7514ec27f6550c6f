"""DC health and audit readiness for the console, from the code the service and `dcsentry audit`
already run: `audit/requirements.py` decides what each DC is missing from the events it has sent
(`dc_health`), and an uploaded auditpol/GPO export goes through the `audit` command's readers and
verdict unchanged."""

from __future__ import annotations

import io
import os
import re
import tempfile
import time
import zipfile
from typing import Any

from ..audit.exports import MAX_BYTES, read_exports
from ..audit.report import to_dict
from ..audit.silence import Seen, requirement_states
from ..audit.verdict import decide

MAX_MEMBERS = 500  # files in an uploaded zip (a GPO backup holds a few dozen)


def dc_health(store: Any, missing_scale: float = 1.0, now: float | None = None) -> list[dict]:
    """Per DC: when it was first and last heard, each event's count, and each requirement's state
    (seen / missing / too-early) with the setting to change and the detections left blind."""
    now = time.time() if now is None else now
    by_dc: dict[str, dict[int, dict]] = {}
    for row in store.dc_health():
        by_dc.setdefault(row["dc"], {})[row["event_id"]] = row
    out = []
    for dc in sorted(by_dc):
        seen = by_dc[dc]
        first = min(r["first_seen"] for r in seen.values())
        last = max(r["last_seen"] for r in seen.values())
        reqs = []
        states = requirement_states({e: Seen(r["count"], r["last_seen"]) for e, r in seen.items()}, first, last, now,
                                    missing_scale)
        for st in states:
            r, state = st.requirement, st.status
            reqs.append({"key": r.key, "what": r.what, "required": r.required, "state": state,
                         "count": st.count, "subcategory": r.subcategory_name, "alerts": r.health or "never",
                         "fix": r.fix() if state != "seen" else "",
                         "blind": list(r.blind) if state == "missing" else [],
                         "allowed_silence_hours": round(st.allowed / 3600, 3)})
        out.append({"dc": dc, "first_seen": first, "last_seen": last, "silent_for": max(0.0, now - last),
                    "events": [{"event_id": eid, "count": r["count"], "last_seen": r["last_seen"],
                                "last_event_utc": r["last_event_utc"]} for eid, r in sorted(seen.items())],
                    "requirements": reqs})
    return out


def _safe_name(name: str) -> str:
    base = os.path.basename(name.replace("\\", "/")) or "upload"
    return re.sub(r"[^A-Za-z0-9._-]", "_", base)[:120] or "upload"


def _unzip(data: bytes, into: str) -> None:
    """Members written by their sanitised base name only (no paths: nothing lands outside `into`)."""
    total = 0
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        members = [m for m in zf.infolist() if not m.is_dir()]
        if len(members) > MAX_MEMBERS:
            raise ValueError(f"more than {MAX_MEMBERS} files in the archive")
        for i, m in enumerate(members):
            total += m.file_size
            if total > MAX_BYTES:
                raise ValueError(f"archive expands beyond {MAX_BYTES >> 20} MB")
            with zf.open(m) as src, open(os.path.join(into, f"{i:03d}-{_safe_name(m.filename)}"), "wb") as dst:
                dst.write(src.read(MAX_BYTES + 1))


def audit_upload(filename: str, data: bytes) -> dict:
    """Run `dcsentry audit` on an uploaded export (or a zip of several, e.g. a GPO backup); the
    result is the `audit --json` document."""
    with tempfile.TemporaryDirectory(prefix="dcsentry-audit-") as tmp:
        if data[:4] == b"PK\x03\x04":
            try:
                _unzip(data, tmp)
            except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError) as exc:
                raise ValueError(f"not a readable zip archive: {exc}") from None
        else:
            with open(os.path.join(tmp, _safe_name(filename)), "wb") as fh:
                fh.write(data)
        read = read_exports([tmp])
        verdict = decide(read.exports)
        result = to_dict(verdict, read)
        return _strip(result, tmp + os.sep)  # name the uploaded files, not the temporary directory


def _strip(obj: Any, prefix: str) -> Any:
    if isinstance(obj, str):
        return obj.replace(prefix, "")
    if isinstance(obj, list):
        return [_strip(v, prefix) for v in obj]
    if isinstance(obj, dict):
        return {k: _strip(v, prefix) for k, v in obj.items()}
    return obj
