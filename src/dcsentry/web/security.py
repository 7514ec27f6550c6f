"""Who may ask what: bearer tokens or a console session, roles, CSRF, request size, headers.

- API clients send `Authorization: Bearer dcs_...`; the console sends its session cookie
  (HttpOnly, SameSite=Strict) and, on every request that changes something, the session's CSRF
  token in `X-CSRF-Token` (or a `csrf` form field): a cookie alone never writes.
- Without credentials: 401 (API) or a redirect to /login (pages); a read-only token writing: 403.
- Bodies over the cap are refused with 413 before the application reads them.
"""

from __future__ import annotations

import hmac
import time
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import quote

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.types import ASGIApp, Message

from ..store.tokens import Principal, verify_session, verify_token

COOKIE = "dcsentry_session"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
DEFAULT_BODY_LIMIT = 1 << 20  # JSON requests: settings lists, status changes, token names
UPLOAD_BODY_LIMIT = 16 << 20  # audit-policy exports (a gpresult /x is a few MB)
UPLOAD_PATHS = ("/api/v1/readiness/audits",)
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
       "form-action 'self'; frame-ancestors 'none'; base-uri 'none'")

bearer = HTTPBearer(auto_error=False, description="An API token: `dcs_<id>_<secret>`")
# Failed logins and bearer checks per client address: past AUTH_FAILURES within AUTH_WINDOW seconds
# the address gets 429 for AUTH_LOCKOUT seconds (tokens are 256-bit: this spares CPU and logs).
AUTH_FAILURES, AUTH_WINDOW, AUTH_LOCKOUT = 100, 60.0, 60.0
OPEN_PATHS = ("/healthz", "/readyz")


class LoginRequired(Exception):
    """A page asked for without a session: the handler redirects to the login form."""

    def __init__(self, next_url: str) -> None:
        self.next_url = next_url


def _unauthorized(detail: str = "a valid API token is required") -> HTTPException:
    return HTTPException(401, detail, headers={"WWW-Authenticate": "Bearer"})


def authenticate(request: Request, creds: HTTPAuthorizationCredentials | None) -> Principal | None:
    store = request.app.state.store
    if creds is not None:
        return verify_token(store, creds.credentials)
    header = request.headers.get("authorization")
    if header:  # present but not "Bearer <token>"
        return None
    cookie = request.cookies.get(COOKIE)
    if cookie:
        p = verify_session(store, cookie)
        if p is not None and request.method not in SAFE_METHODS:
            sent = request.headers.get("x-csrf-token", "")
            if not sent or not hmac.compare_digest(sent.encode(), p.csrf.encode()):
                raise HTTPException(403, "missing or wrong CSRF token (X-CSRF-Token)")
        return p
    return None


def still_valid(request: Request) -> bool:
    """Is the credential that opened a long-lived response (the SSE stream) still good? A revoked
    token or an ended session closes the stream."""
    store = request.app.state.store
    header = request.headers.get("authorization", "")
    if header[:7].lower() == "bearer ":
        return verify_token(store, header[7:].strip()) is not None
    cookie = request.cookies.get(COOKIE)
    return bool(cookie and verify_session(store, cookie) is not None)


def reader(request: Request, creds: HTTPAuthorizationCredentials | None = Depends(bearer)) -> Principal:
    """Any valid token (read-only or admin)."""
    p = authenticate(request, creds)
    if p is None:
        raise _unauthorized()
    return p


def admin(p: Principal = Depends(reader)) -> Principal:
    if not p.admin:
        raise HTTPException(403, "this token is read-only; changing things needs an admin token")
    return p


def page_reader(request: Request, creds: HTTPAuthorizationCredentials | None = Depends(bearer)) -> Principal:
    """Pages: a session (or a bearer token, for scripts); otherwise off to the login form."""
    p = authenticate(request, creds)
    if p is None:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise LoginRequired(quote(target, safe=""))
    return p


def safe_next(value: str | None) -> str:
    """Only a path on this server (no scheme, no //host): the login form cannot be an open redirect."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return "/"
    return value


# -- ASGI middleware ------------------------------------------------------------------------------



async def _send_json(send: Callable[[dict], Awaitable[None]], status: int, body: bytes) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


class Guard:
    """Caps request bodies (413, counted), throttles addresses that keep failing authentication
    (429, counted) and adds security headers to every response (no-store on all but static files:
    pages and API answers carry alerts, entities and, once, new tokens)."""

    def __init__(self, app: ASGIApp, counters: dict[str, int], https: bool = False) -> None:
        self.app = app
        self.counters = counters
        self.headers = [(b"x-content-type-options", b"nosniff"), (b"referrer-policy", b"same-origin"),
                        (b"x-frame-options", b"DENY"), (b"content-security-policy", CSP.encode())]
        if https:
            self.headers.append((b"strict-transport-security", b"max-age=31536000"))
        self._failures: dict[str, list[float]] = {}  # address -> failure times in the window
        self._locked: dict[str, float] = {}  # address -> locked until
        self.state: Any = None  # the wrapped app's state, set by create_app (the runner starts the live poller)
        self.fastapi: Any = None  # the wrapped FastAPI app, set by create_app

    def _throttled(self, addr: str, now: float) -> bool:
        until = self._locked.get(addr)
        if until is None:
            return False
        if now < until:
            return True
        del self._locked[addr]
        return False

    def _failed(self, addr: str, now: float) -> None:
        times = [t for t in self._failures.get(addr, ()) if t > now - AUTH_WINDOW]
        times.append(now)
        if len(times) >= AUTH_FAILURES:
            self._locked[addr] = now + AUTH_LOCKOUT
            self._failures.pop(addr, None)
        else:
            self._failures[addr] = times
        if len(self._failures) > 10_000:  # many addresses: forget the quiet ones
            self._failures = {a: ts for a, ts in self._failures.items() if ts[-1] > now - AUTH_WINDOW}

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        addr = (scope.get("client") or ("?", 0))[0]
        now = time.monotonic()
        if scope["path"] not in OPEN_PATHS and self._throttled(addr, now):
            self.counters["auth_throttled"] += 1
            await send({"type": "http.response.start", "status": 429,
                        "headers": [(b"content-type", b"application/json"), (b"retry-after", b"%d" % AUTH_LOCKOUT),
                                    (b"cache-control", b"no-store"), *self.headers]})
            await send({"type": "http.response.body", "body": b'{"detail":"too many failed authentications"}'})
            return
        limit = UPLOAD_BODY_LIMIT if scope["path"] in UPLOAD_PATHS else DEFAULT_BODY_LIMIT
        length = next((v for k, v in scope["headers"] if k == b"content-length"), None)
        if length is not None:
            if not length.isdigit():
                self.counters["bad_requests"] += 1
                await _send_json(send, 400, b'{"detail":"malformed Content-Length"}')
                return
            if int(length) > limit:
                self.counters["too_large"] += 1
                await _send_json(send, 413, b'{"detail":"request body too large (limit %d bytes)"}' % limit)
                return
        chunked = any(k == b"transfer-encoding" for k, _ in scope["headers"])
        if length is not None or chunked:  # read the whole body up to the cap before the app sees it
            chunks, size = [], 0
            while True:
                msg = await receive()
                if msg["type"] != "http.request":
                    return  # the client went away
                chunks.append(msg.get("body", b""))
                size += len(chunks[-1])
                if size > limit:
                    self.counters["too_large"] += 1
                    await _send_json(send, 413, b'{"detail":"request body too large (limit %d bytes)"}' % limit)
                    return
                if not msg.get("more_body"):
                    break
            receive = _replay(b"".join(chunks), receive)

        static = scope["path"].startswith("/static/")

        async def send_with_headers(msg: Message) -> None:
            if msg["type"] == "http.response.start":
                headers = [*msg.get("headers", []), *self.headers]
                if not static and not any(k.lower() == b"cache-control" for k, _ in headers):
                    headers.append((b"cache-control", b"no-store"))
                msg = {**msg, "headers": headers}
                if msg["status"] in (401, 403):
                    self.counters[f"refused_{msg['status']}"] += 1
                if msg["status"] == 401:
                    self._failed(addr, time.monotonic())
            await send(msg)

        await self.app(scope, receive, send_with_headers)


def _replay(body: bytes, receive: Any) -> Any:
    """The body once, then the real channel (so a disconnect is still seen)."""
    done = False

    async def replay() -> dict:
        nonlocal done
        if not done:
            done = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay
