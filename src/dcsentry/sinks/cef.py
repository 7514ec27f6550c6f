"""Alerts as CEF, the layout Defender for Identity / ATA send to a SIEM (shared/reference/cef-alert-output.md).

Header: ``CEF:0|dcsentry|dcsentry|<dcsentry.__version__>|<SignatureID>|<Name>|<3|5|10>|<extension>``.

Decisions (where the reference leaves room):

* Vendor and product are ``dcsentry``, not ``Microsoft``/``Azure ATP``: we are not Microsoft and a SIEM must
  be able to tell the two apart. What SIEM content keys on is kept compatible instead: the Signature ID is
  MDI's class name and ``externalId`` is MDI's permanent numeric alert id. Automation should key on
  ``externalId`` (names change, ids do not), exactly as Microsoft advises for MDI.
* Extension order follows the MDI samples: ``start end app shost suser outcome msg cnt externalId
  cs1Label cs1 cs2Label cs2 cs3Label cs3``. ``end`` is ours (MDI only sends ``start``); it is the time the
  alert last grew. Empty fields are left out (many parsers mis-read ``key=`` with nothing after it).
* ``shost`` is the first host of the alert (the source; detectors put it first). When it is a DNS name
  with dots, ``shost`` is its first label and ``cs3`` (label ``shostfqdn``) the full name, as MDI does;
  IP addresses are sent whole in ``shost`` with no ``cs3``.
* ``suser`` is sent only when the alert names exactly one account: with many (a password spray) no single
  account is "the" account and the description lists them, as MDI's brute-force samples do.
* ``cs1`` links to the alert in the console: ``<console_url>/alerts/<alert.id>`` (health alerts:
  ``<console_url>/health/<alert.id>``, the ATA ``/monitoring`` page's counterpart). ``:`` is not escaped
  (MDI writes ``https\\://``; the CEF spec does not require it and every parser accepts both).
* ``cs2`` (label ``trigger``) is ``new`` when ``alert.revision == 0``, else ``update``.
* ``cs6`` (label ``incidentId``) is the incident the alert belongs to (docs/incidents.md), once linked.
* Health alerts (``alert.kind == "health"``): Signature ID and Name are both the health class name
  (``alert.details["class"]`` if set, else ``alert.type``), severity from ``alert.severity``, and the
  extension is ``externalId cs1Label cs1 msg`` with no ``start`` (ATA's health template). The numeric
  id comes from ``alert.details["external_id"]`` and is left out when there is none.
* A security alert whose type is not in ALERT_TYPES still goes out (signature = ``alert.type``, no
  ``externalId``) rather than being lost.
* Escaping per the CEF spec: header ``\\`` and ``|``; extension values ``\\``, ``=`` and line breaks
  (``\\r\\n`` and ``\\n`` -> ``\\n``, lone ``\\r`` -> ``\\r``). Line breaks in the header (not allowed there) become
  spaces, so one alert is always one line. Text is UTF-8; no BOM is written.
"""

from __future__ import annotations

import ipaddress
import re
from datetime import UTC, datetime

from .. import __version__
from ..alerts import ALERT_TYPES, CEF_SEVERITY, Alert
from .safe import visible

VENDOR = "dcsentry"
PRODUCT = "dcsentry"
DEFAULT_CONSOLE_URL = "http://127.0.0.1:8080"

_HEADER_ESCAPE = re.compile(r"[\\|]")
_NEWLINES = re.compile(r"\r\n|\r|\n")
_VALUE_ESCAPE = re.compile(r"\r\n|[\\=\r\n]")
_VALUE_REPL = {"\\": "\\\\", "=": "\\=", "\r\n": "\\n", "\n": "\\n", "\r": "\\r"}
_OUTCOMES = {"success": "Success", "failure": "Failure", "failed": "Failure"}


def escape_header(value: str) -> str:
    """Escape one header field: backslash and pipe; line breaks become spaces (a header is one line);
    other controls (NUL, ESC, C1, U+2028/9) become visible escapes (safe.py)."""
    return visible(_NEWLINES.sub(" ", _HEADER_ESCAPE.sub(lambda m: "\\" + m.group(0), value)), one_line=True)


def escape_value(value: str) -> str:
    """Escape one extension value: backslash, equals sign, and line breaks as the two characters
    ``\\n``/``\\r``; other controls become visible escapes."""
    return visible(_VALUE_ESCAPE.sub(lambda m: _VALUE_REPL[m.group(0)], value), one_line=True)


def cef_time(t: datetime) -> str:
    """ISO 8601 UTC with 7 fractional digits and ``Z`` (MDI's ``2018-02-21T14:19:02.6045416Z``).

    Python has microseconds, so the seventh digit is always 0. Naive datetimes are taken as UTC.
    """
    if t.tzinfo is None:
        t = t.replace(tzinfo=UTC)
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f") + "0Z"


def split_host(host: str) -> tuple[str, str | None]:
    """(shost, fqdn): ``client1.contoso.com`` -> (``client1``, ``client1.contoso.com``); IPs and short names whole."""
    host = host.strip().rstrip(".")
    try:
        ipaddress.ip_address(host)
        return host, None
    except ValueError:
        pass
    if "." in host:
        return host.split(".", 1)[0], host
    return host, None


def signature_of(alert: Alert) -> str:
    """The CEF Signature ID (also what the syslog MSGID is cut from)."""
    if alert.kind == "health":
        return str(alert.details.get("class") or alert.type)
    at = ALERT_TYPES.get(alert.type)
    return at.signature if at else alert.type


class CefFormatter:
    """Turns an Alert into one CEF line (str, no trailing newline). Stateless apart from its settings."""

    def __init__(self, console_url: str = DEFAULT_CONSOLE_URL, vendor: str = VENDOR, product: str = PRODUCT,
                 version: str = __version__) -> None:
        self.console_url = console_url.rstrip("/")
        self.vendor = vendor
        self.product = product
        self.version = version

    def alert_url(self, alert: Alert) -> str:
        """The link in cs1: where the console shows this alert."""
        section = "health" if alert.kind == "health" else "alerts"
        return f"{self.console_url}/{section}/{alert.id}"

    def header(self, signature: str, name: str, severity: int) -> str:
        fields = (self.vendor, self.product, self.version, signature, name, str(severity))
        return "CEF:0|" + "|".join(escape_header(f) for f in fields) + "|"

    def extension_fields(self, alert: Alert) -> list[tuple[str, str]]:
        """The (key, unescaped value) pairs in output order; what `format` writes and tests check."""
        if alert.kind == "health":
            return self._health_fields(alert)
        at = ALERT_TYPES.get(alert.type)
        out: list[tuple[str, str]] = [("start", cef_time(alert.start)), ("end", cef_time(alert.end))]
        app = alert.protocol or (at.app if at else None)
        if app:
            out.append(("app", app))
        fqdn: str | None = None
        if alert.hosts and alert.hosts[0].strip():
            shost, fqdn = split_host(alert.hosts[0])
            out.append(("shost", shost))
        if len(alert.accounts) == 1 and alert.accounts[0]:
            out.append(("suser", alert.accounts[0]))
        if alert.outcome:
            out.append(("outcome", _OUTCOMES.get(alert.outcome.lower(), alert.outcome)))
        if alert.description:
            out.append(("msg", alert.description))
        out.append(("cnt", str(alert.count)))
        if at is not None and at.external_id:
            out.append(("externalId", str(at.external_id)))
        out += [("cs1Label", "url"), ("cs1", self.alert_url(alert)),
                ("cs2Label", "trigger"), ("cs2", "new" if alert.revision == 0 else "update")]
        if fqdn:
            out += [("cs3Label", "shostfqdn"), ("cs3", fqdn)]
        if at is not None and at.xdr_id:  # dcsentry's addition: Defender XDR's detector id
            out += [("cs4Label", "xdrDetectorId"), ("cs4", at.xdr_id)]
        if alert.technique:
            out += [("cs5Label", "mitreTechnique"), ("cs5", alert.technique)]
        if alert.incident:  # dcsentry's addition: the incident it belongs to (docs/incidents.md)
            out += [("cs6Label", "incidentId"), ("cs6", alert.incident)]
        return out

    def _health_fields(self, alert: Alert) -> list[tuple[str, str]]:
        out: list[tuple[str, str]] = []
        ext = alert.details.get("external_id")
        if ext is not None:
            out.append(("externalId", str(ext)))
        out += [("cs1Label", "url"), ("cs1", self.alert_url(alert))]
        if alert.description:
            out.append(("msg", alert.description))
        return out

    def format(self, alert: Alert) -> str:
        """The full CEF line for an alert (security or health)."""
        sig = signature_of(alert)
        name = sig if alert.kind == "health" else (alert.title or sig)
        severity = CEF_SEVERITY.get(alert.severity, 5)
        ext = " ".join(f"{k}={escape_value(v)}" for k, v in self.extension_fields(alert))
        return self.header(sig, name, severity) + ext


def format_cef(alert: Alert, console_url: str = DEFAULT_CONSOLE_URL) -> str:
    """One-off convenience: ``CefFormatter(console_url).format(alert)``."""
    return CefFormatter(console_url).format(alert)
