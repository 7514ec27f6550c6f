"""Kerberos (and SPNEGO) authentication and WinRM message encryption for the WEF HTTP listener.

Windows forwarders on port 5985 authenticate once per TCP connection (`Authorization: Kerberos
<AP-REQ>`, or `Negotiate <SPNEGO>`), expect the mutual-authentication token back in
`WWW-Authenticate`, and from then on send every SOAP body encrypted with the GSS session
(MS-WSMV 2.2.9.1, framing in encryption.py). The crypto is MIT Kerberos through `pyspnego`
(`wrap_winrm`/`unwrap_winrm` = `gss_wrap_iov`/`gss_unwrap_iov` with HEADER+DATA(+PADDING), the
RFC 4121 tokens with RRC 28 that Windows' SSPI reads and writes); nothing is hand-rolled.

The acceptor credential comes from the configured keytab (the collector's `HTTP/<fqdn>` and
`HOST/<fqdn>` keys) through the GSSAPI credential-store extension, so the process environment
(KRB5_KTNAME) is never changed and several acceptors with different keytabs can coexist.
"""

from __future__ import annotations

import base64
import binascii
import logging
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from . import encryption

try:
    import gssapi
    import krb5
    import spnego
    from spnego import NegotiateOptions
    from spnego._context import GSSMech
except ImportError as exc:  # an optional extra: say how to get it rather than a bare traceback
    raise ImportError(f"WEF over HTTP (Kerberos) needs the kerberos extra: pip install 'dcsentry[kerberos]' "
                      f"(builds python-gssapi against libkrb5-dev; scripts/bootstrap.sh installs both): {exc}") from exc

log = logging.getLogger(__name__)

SCHEMES = {"kerberos": "Kerberos", "negotiate": "Negotiate"}
PROTOCOL_OF = {"Kerberos": encryption.KERBEROS, "Negotiate": encryption.SPNEGO}
MAX_TOKEN = 64 * 1024  # an AP-REQ with a large PAC is a few KiB; Windows' own limit is 48 KiB


class AuthError(Exception):
    """Authentication failed or a message failed its integrity check: answer 401/400 and count it.

    The message says why, for the log; it never carries key material."""


class KerberosAcceptor:
    """The collector's Kerberos identity, built once from the keytab in `[wef] keytab`.

    `services` optionally restricts which service principals of the keytab a client may have
    a ticket for (case-insensitive service part, e.g. ("HTTP", "HOST")); by default every key
    in the keytab is accepted, so the keytab itself is the restriction."""

    def __init__(self, keytab: str, services: Iterable[str] | None = None) -> None:
        name = keytab if ":" in keytab.split("/", 1)[0] else f"FILE:{Path(keytab).resolve()}"
        if name.startswith("FILE:") and not Path(name[5:]).is_file():
            raise ValueError(f"keytab {keytab}: no such file")
        self.keytab = name
        self.principals = _keytab_principals(name)
        if not self.principals:
            raise ValueError(f"keytab {keytab}: holds no keys")
        try:
            self._creds = gssapi.Credentials(usage="accept", store={"keytab": name})
        except gssapi.exceptions.GSSError as exc:
            raise ValueError(f"keytab {keytab}: {_short(exc)}") from None
        self.services = frozenset(s.upper() for s in services) if services else None
        self.counters: Counter[str] = Counter()
        log.info("Kerberos acceptor keys: %s", ", ".join(self.principals))

    def new_context(self) -> ConnectionSecurity:
        """A fresh security context: one per TCP connection, as WinRM binds its session to it."""
        return ConnectionSecurity(self)

    def _proxy(self, scheme: str) -> Any:
        """A pyspnego acceptor for `scheme` that uses this keytab's credential."""
        opts = NegotiateOptions.wrapping_winrm
        krb = spnego.server(protocol="kerberos", options=opts, _gssapi_credential=self._creds)
        if scheme == "Kerberos":
            return krb
        # pyspnego's own SPNEGO layer (it answers Windows' MS-KRB5 OID as Windows does), with
        # the Kerberos context above as its only mechanism: no NTLM fallback is ever offered.
        return spnego.server(protocol="negotiate", options=opts | NegotiateOptions.use_negotiate,
                             _negotiate_contexts={GSSMech.kerberos: krb})


class ConnectionSecurity:
    """Kerberos/SPNEGO state of one TCP connection: authentication, then wrap/unwrap of bodies.

    After a failed step or a message that fails its integrity check the connection is no longer
    authenticated (`complete` is False, `principal` None): the client must authenticate again."""

    def __init__(self, acceptor: KerberosAcceptor) -> None:
        self._acceptor = acceptor
        self._ctx: Any = None
        self._done = False
        self.scheme: str | None = None  # "Kerberos" or "Negotiate", as the client chose
        self.principal: str | None = None  # e.g. "DC01$@EXAMPLE.TEST" once authenticated
        self.original_type: str | None = None  # inner media type of the last unwrapped body

    def _fail(self, counter: str, message: str) -> AuthError:
        log.info("WEF Kerberos: %s", message)
        self._acceptor.counters[counter] += 1
        self._ctx, self._done, self.principal = None, False, None
        return AuthError(message)

    def step(self, auth_header: str) -> str | None:
        """Process an `Authorization` header value; returns the `WWW-Authenticate` value to send
        back (the mutual-authentication token, e.g. "Kerberos <b64>") or None.

        A new token on an authenticated connection starts over (re-authentication)."""
        scheme_text, _, b64 = auth_header.strip().partition(" ")
        scheme = SCHEMES.get(scheme_text.lower())
        if scheme is None:
            raise self._fail("auth_bad_scheme", f"unsupported authorization scheme {scheme_text[:20]!r}")
        b64 = b64.strip()
        if not b64 or len(b64) > MAX_TOKEN * 4 // 3 + 4:
            raise self._fail("auth_bad_token", f"{scheme} authorization without a usable token")
        try:
            token = base64.b64decode(b64, validate=True)
        except (binascii.Error, ValueError):
            raise self._fail("auth_bad_token", f"{scheme} token is not base64") from None
        try:
            if self._ctx is None or self._done or scheme != self.scheme:
                self._ctx, self._done, self.principal, self.scheme = self._acceptor._proxy(scheme), False, None, scheme
            out = self._ctx.step(token)
            done = bool(self._ctx.complete)
            principal = self._ctx.client_principal if done else None
        except Exception as exc:  # any parse or GSS failure of attacker-controlled bytes
            reason = _deferred_error(self._ctx) or exc
            raise self._fail("auth_failed", f"{scheme} authentication failed: {_short(reason)}") from None
        if done:
            if not principal:
                raise self._fail("auth_failed", f"{scheme} authentication gave no client name")
            target = _target_name(self._ctx)
            services = self._acceptor.services
            if services is not None and (target is None or target.split("/", 1)[0].upper() not in services):
                raise self._fail("auth_wrong_service", f"ticket for {target or 'an unknown service'} not accepted")
            self._done, self.principal = True, principal
            self._acceptor.counters["auth_ok"] += 1
        return f"{scheme} {base64.b64encode(out).decode('ascii')}" if out else None

    @property
    def complete(self) -> bool:
        """True once the client is authenticated and bodies can be unwrapped."""
        return self._done

    def unwrap(self, body: bytes, content_type: str) -> bytes:
        """Decrypt a `multipart/encrypted` body to the bytes the client encrypted (the SOAP
        envelope; still SLDC-compressed when the request says `Content-Encoding: SLDC`, since
        Windows compresses before it encrypts). Checks OriginalContent's Length.

        Raises AuthError when not authenticated or the message fails its integrity check,
        ValueError when the framing is malformed."""
        if not self._done:
            raise AuthError("encrypted body on a connection that is not authenticated")
        try:
            enc = encryption.split(body, content_type)
        except ValueError:
            self._acceptor.counters["malformed"] += 1
            raise
        try:
            plain = self._ctx.unwrap_winrm(enc.header, enc.data)
        except Exception as exc:
            raise self._fail("integrity_failed", f"message failed its integrity check: {_short(exc)}") from None
        if len(plain) != enc.length:
            self._acceptor.counters["malformed"] += 1
            raise ValueError(f"OriginalContent Length={enc.length} but {len(plain)} bytes were encrypted")
        self.original_type = enc.original_type
        self._acceptor.counters["unwrapped"] += 1
        return plain

    def wrap(self, soap: bytes) -> tuple[bytes, str]:
        """Encrypt a reply: (multipart/encrypted body, its Content-Type header value).

        The OriginalContent charset follows the body's BOM (UTF-16 when it starts FF FE)."""
        if not self._done or self.scheme is None:
            raise AuthError("cannot encrypt on a connection that is not authenticated")
        charset = "UTF-16" if soap[:2] in (b"\xff\xfe", b"\xfe\xff") else "UTF-8"
        try:
            res = self._ctx.wrap_winrm(soap)
        except Exception as exc:
            raise self._fail("wrap_failed", f"could not encrypt the reply: {_short(exc)}") from None
        self._acceptor.counters["wrapped"] += 1
        return encryption.join(PROTOCOL_OF[self.scheme], f"application/soap+xml;charset={charset}", len(soap),
                               res.header, res.data)


def _keytab_principals(name: str) -> list[str]:
    """The distinct principals in a keytab, in file order (for the log and `wef status`)."""
    try:
        ctx = krb5.init_context()
        kt = krb5.kt_resolve(ctx, name.encode())
        seen: dict[str, None] = {}
        for entry in kt:
            seen[str(entry.principal)] = None
        return list(seen)
    except krb5.Krb5Error as exc:
        raise ValueError(f"keytab {name}: {_short(exc)}") from None


def _gss_context(proxy: Any) -> gssapi.SecurityContext | None:
    """The gssapi context under a pyspnego proxy (SPNEGO proxy -> Kerberos proxy -> gssapi), for
    what pyspnego does not expose."""
    for _ in range(3):
        if isinstance(proxy, gssapi.SecurityContext):
            return proxy
        try:
            proxy = proxy._context  # NegotiateProxy's is a property that raises before a mech is chosen
        except Exception:
            return None
        if proxy is None:
            return None
    return None


def _target_name(proxy: Any) -> str | None:
    """The service principal the client's ticket was for."""
    ctx = _gss_context(proxy)
    try:
        return str(ctx.target_name).rstrip("\x00") if ctx is not None else None
    except gssapi.exceptions.GSSError:
        return None


def _deferred_error(proxy: Any) -> BaseException | None:
    """python-gssapi keeps a failed accept's real error (e.g. "kvno 1 not found in keytab") and
    returns the KRB-ERROR token instead; pyspnego then fails on something unrelated."""
    ctx = _gss_context(proxy)
    return getattr(ctx, "_last_err", None) if ctx is not None else None


def _short(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:300] or type(exc).__name__
