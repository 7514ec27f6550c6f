"""API tokens and console sessions. Only hashes are stored: a stolen database gives no way in.

A token reads `dcs_<id>_<secret>`: the id (12 hex digits) finds the row, the secret (32 random
bytes, URL-safe base64) is checked against its SHA-256 with a constant-time comparison. A console
session is the same shape (`<id>.<secret>` in an HttpOnly cookie) and carries its own CSRF token.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from typing import Any

ROLES = ("read-only", "admin")
PREFIX = "dcs_"
SESSION_TTL = 12 * 3600.0
_TOUCH_EVERY = 60.0  # last_used is written at most this often per token (reads stay reads)
_DUMMY = hashlib.sha256(b"dcsentry: no such token").hexdigest()


@dataclass(frozen=True)
class Principal:
    """Who is asking: the token (or the token behind a console session) and its role."""

    token_id: str
    name: str
    role: str
    via: str = "bearer"  # or "session"
    csrf: str = ""  # the session's CSRF token (sessions only)

    @property
    def admin(self) -> bool:
        return self.role == "admin"

    @property
    def actor(self) -> str:
        """How the audit trail names the one who changed something."""
        return f"{self.name} ({self.token_id})"


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def create_token(store: Any, name: str, role: str, created_by: str) -> tuple[str, dict]:
    """A new token; returns (the token, shown once, and its public record)."""
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}")
    tid, secret = secrets.token_hex(6), secrets.token_urlsafe(32)
    now = time.time()
    store.execute("INSERT INTO api_tokens (id, name, role, secret_hash, created_at, created_by) "
                  "VALUES (?, ?, ?, ?, ?, ?)", (tid, name, role, _hash(secret), now, created_by))
    return f"{PREFIX}{tid}_{secret}", {"id": tid, "name": name, "role": role, "created_at": now,
                                       "created_by": created_by, "last_used": None, "revoked_at": None}


def _split(token: str, sep: str, prefix: str = "") -> tuple[str, str] | None:
    if not token.startswith(prefix) or len(token) > 200:
        return None
    rest = token[len(prefix):]
    tid, s, secret = rest[:12], rest[12:13], rest[13:]
    if s != sep or not secret or any(c not in "0123456789abcdef" for c in tid) or len(tid) != 12:
        return None
    return tid, secret


def verify_token(store: Any, token: str) -> Principal | None:
    parts = _split(token.strip(), "_", PREFIX)
    tid, secret = parts if parts else ("", token)
    rows = store.query("SELECT name, role, secret_hash, revoked_at, last_used FROM api_tokens WHERE id = ?",
                       (tid,)) if parts else []
    stored = rows[0][2] if rows else _DUMMY
    ok = hmac.compare_digest(stored, _hash(secret))  # the same work whether or not the id exists
    if not rows or not ok or rows[0][3] is not None:
        return None
    name, role, _, _, last_used = rows[0]
    now = time.time()
    if last_used is None or now - last_used > _TOUCH_EVERY:
        store.execute("UPDATE api_tokens SET last_used = ? WHERE id = ?", (now, tid))
    return Principal(tid, name, role)


def list_tokens(store: Any) -> list[dict]:
    rows = store.query("SELECT id, name, role, created_at, created_by, last_used, revoked_at FROM api_tokens "
                       "ORDER BY created_at")
    keys = ("id", "name", "role", "created_at", "created_by", "last_used", "revoked_at")
    return [dict(zip(keys, r, strict=True)) for r in rows]


def revoke_token(store: Any, tid: str) -> bool:
    """Revoked tokens stay listed (the audit trail names them); their sessions end."""
    with store.transaction() as tx:
        n = tx.execute("UPDATE api_tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL", (time.time(), tid))
        tx.execute("DELETE FROM web_sessions WHERE token_id = ?", (tid,))
    return n == 1


def token_count(store: Any) -> int:
    return int(store.query("SELECT COUNT(*) FROM api_tokens")[0][0])


def first_start_token(store: Any) -> str | None:
    """The admin token of a fresh store (None when any token exists: it was shown at first start)."""
    if token_count(store):
        return None
    return create_token(store, "admin", "admin", "first start")[0]


def demo_token(store: Any) -> str:
    """`serve --demo` prints a ready-to-click login: a fresh admin token each start, the last one revoked."""
    for (tid,) in store.query("SELECT id FROM api_tokens WHERE name = 'demo' AND revoked_at IS NULL"):
        revoke_token(store, tid)
    return create_token(store, "demo", "admin", "serve --demo")[0]


# -- console sessions ---------------------------------------------------------------------------

def create_session(store: Any, p: Principal, ttl: float = SESSION_TTL) -> tuple[str, str]:
    """Returns (cookie value, CSRF token)."""
    sid, secret, csrf = secrets.token_hex(6), secrets.token_urlsafe(32), secrets.token_urlsafe(24)
    now = time.time()
    with store.transaction() as tx:
        tx.execute("DELETE FROM web_sessions WHERE expires_at < ?", (now,))
        tx.execute("INSERT INTO web_sessions (id, secret_hash, token_id, csrf, created_at, expires_at) "
                   "VALUES (?, ?, ?, ?, ?, ?)", (sid, _hash(secret), p.token_id, csrf, now, now + ttl))
    return f"{sid}.{secret}", csrf


def verify_session(store: Any, cookie: str) -> Principal | None:
    parts = _split(cookie, ".")
    if parts is None:
        return None
    sid, secret = parts
    rows = store.query("SELECT s.secret_hash, s.csrf, s.expires_at, t.id, t.name, t.role, t.revoked_at "
                       "FROM web_sessions s JOIN api_tokens t ON t.id = s.token_id WHERE s.id = ?", (sid,))
    if not rows or not hmac.compare_digest(rows[0][0], _hash(secret)):
        return None
    _, csrf, expires, tid, name, role, revoked = rows[0]
    if revoked is not None or expires < time.time():
        return None
    return Principal(tid, name, role, via="session", csrf=csrf)


def end_session(store: Any, cookie: str) -> None:
    parts = _split(cookie, ".")
    if parts is not None:
        store.execute("DELETE FROM web_sessions WHERE id = ?", (parts[0],))
