"""AD CS, from the Security log of the CA (reference/dc-log-alerts.md A8): certificate requests
(4886 received, 4887 issued, 4888 denied) and CA configuration changes (4882 permissions, 4885
audit filter, 4890 manager settings, 4896 rows deleted, 4898 template loaded, 4899 template
updated, 4900 template security updated).

`Requester` is the authenticated caller (`DOMAIN\\sam`); the subject and SAN of a request are
claims. `Attributes` holds one `name:value` per line (some exports flatten them to spaces):
`CertificateTemplate:<name>`, `SAN:upn=a@b&dns=c`, `ApplicationPolicies:<OID>[, <OID>]`,
`ccm:<client FQDN>`. 4887's `SubjectAlternativeName` holds what was issued: `Other Name:
Principal Name=<upn>`, `DNS Name=<host>`, `RFC822 Name=<mail>`, `URL=<uri>`.
"""

from __future__ import annotations

import re

from ...model import WindowsEvent
from .. import Activity, DcActivity, evidence_of
from ..readers import Stateless
from .fields import number, short, sid

REQUEST_IDS = frozenset({4886, 4887, 4888})
CHANGE_IDS = frozenset({4882, 4885, 4890, 4896, 4898, 4899, 4900})

# A new item starts at a line break/tab, or at a space followed by `name:` (flattened exports).
_ATTR_SPLIT = re.compile(r"[\r\n\t]+|\s+(?=[A-Za-z][A-Za-z0-9_-]*:)")
_SAN_TYPES = {"upn": "upn", "dns": "dns", "email": "email", "rfc822": "email", "ipaddress": "ip", "ip": "ip",
              "url": "url", "uri": "url", "guid": "guid"}
_ISSUED = re.compile(r"(Principal Name|DNS Name|RFC822 Name|URL|IP Address)\s*=\s*([^\s,]+)", re.IGNORECASE)
_ISSUED_TYPES = {"principal name": "upn", "dns name": "dns", "rfc822 name": "email", "url": "url",
                 "ip address": "ip"}


class CertificateRequest(DcActivity, kw_only=True):
    """One certificate request as the CA logged it: received (4886), issued (4887), denied (4888).
    `actor` is the requester's sAMAccountName, `actor_domain` its domain."""

    event_id: int = 4886
    request_id: str = ""
    requester: str = ""  # as logged: DOMAIN\\sam
    template: str = ""  # CertificateTemplate: field, else the Attributes line
    subject_dn: str = ""  # requested (4886) / issued (4887) subject
    requested_san: list[str] = []  # "upn=a@b", "dns=x" from the Attributes SAN: line(s)
    issued_san: list[str] = []  # "upn=a@b", "dns=x" from 4887 SubjectAlternativeName
    app_policies: list[str] = []  # OIDs of an ApplicationPolicies: attribute (ESC15)
    client: str = ""  # ccm: attribute (the requesting client's FQDN)
    serial: str = ""
    disposition: str = ""
    auth_service: str = ""  # NTLM / Kerberos
    auth_level: str = ""  # Privacy / Connect / ...
    transport: str = ""  # DCOMorRPC: DCOM / RPC

    kind = "certificate-request"

    @property
    def subject(self) -> str:
        return self.template

    @property
    def outcome(self) -> str:
        return {4886: "requested", 4887: "issued", 4888: "denied"}.get(self.event_id, "")


class CaChange(DcActivity, kw_only=True):
    """A change of the CA's configuration or of a template it uses (4882-4900)."""

    event_id: int = 4885
    audit_filter: int | None = None  # 4885
    settings: str = ""  # 4882 SecuritySettings; 4890 RestrictedPermissions (+ Enable...)
    template: str = ""  # 4898-4900 TemplateInternalName
    template_dn: str = ""  # TemplateDSObjectFQDN
    template_oid: str = ""
    new_content: str = ""  # 4899/4900 NewTemplateContent; 4898 TemplateContent
    old_content: str = ""
    new_security: str = ""  # 4900 NewSecurityDescriptor; 4898 SecurityDescriptor
    old_security: str = ""
    rows_deleted: int | None = None  # 4896
    table: str = ""  # 4896 TableId
    filter: str = ""  # 4896 Filter

    kind = "ca-change"

    @property
    def subject(self) -> str:
        return self.template or self.host


def attribute_items(value: str) -> list[str]:
    return [x.strip() for x in _ATTR_SPLIT.split(value or "") if x and x.strip() and x.strip() != "-"]


def parse_attributes(value: str) -> tuple[str, list[str], list[str], str]:
    """Attributes -> (template, requested SAN items `type=value`, application policy OIDs, ccm)."""
    template, sans, policies, client = "", [], [], ""
    for item in attribute_items(value):
        name, sep, rest = item.partition(":")
        if not sep:
            continue
        key = name.strip().lower()
        rest = rest.strip()
        if key == "certificatetemplate":
            template = rest
        elif key == "san":
            for part in rest.split("&"):
                kind, eq, v = part.partition("=")
                t = _SAN_TYPES.get(kind.strip().lower())
                if eq and t and v.strip():
                    sans.append(f"{t}={v.strip()}")
        elif key == "applicationpolicies":
            policies += [p for p in re.split(r"[\s,;]+", rest) if p]
        elif key == "ccm":
            client = rest
    return template, sans, policies, client


def issued_names(value: str) -> list[str]:
    """4887 SubjectAlternativeName -> `type=value` items (DS Object Guid lines are skipped)."""
    out: list[str] = []
    for kind, v in _ISSUED.findall(value or ""):
        item = f"{_ISSUED_TYPES[kind.lower()]}={v}"
        if item not in out:
            out.append(item)
    return out


def _text(d: dict[str, str], key: str) -> str:
    v = (d.get(key) or "").strip()
    return "" if v == "-" else v


class CertificateReader(Stateless):
    ids = REQUEST_IDS | CHANGE_IDS

    def feed(self, ev: WindowsEvent) -> list[Activity]:
        if ev.channel != "Security":
            return []
        d = ev.data
        host = short(ev.computer)
        if ev.event_id in REQUEST_IDS:
            return [self._request(ev, d, host)]
        logon_id = d.get("SubjectLogonId", "")
        ch = CaChange(time=ev.time, host=host, actor=d.get("SubjectUserName", ""),
                      actor_sid=sid(d.get("SubjectUserSid")), actor_domain=d.get("SubjectDomainName", ""),
                      logon_id=logon_id, session=self.ctx.sessions.get(host, logon_id, ev.time.timestamp()),
                      evidence=[evidence_of(ev)], event_id=ev.event_id)
        eid = ev.event_id
        if eid == 4885:
            ch.audit_filter = number(d.get("AuditFilter"))
        elif eid == 4882:
            ch.settings = _text(d, "SecuritySettings")
        elif eid == 4890:
            ch.settings = "; ".join(f"{k}={v}" for k in ("EnableRestrictedPermissions", "RestrictedPermissions")
                                    if (v := _text(d, k)))
        elif eid == 4896:
            ch.rows_deleted = number(d.get("RowsDeleted"))
            ch.table, ch.filter = _text(d, "TableId"), _text(d, "Filter")
        else:
            ch.template = _text(d, "TemplateInternalName")
            ch.template_dn = _text(d, "TemplateDSObjectFQDN")
            ch.template_oid = _text(d, "TemplateOID")
            ch.new_content = _text(d, "NewTemplateContent") or _text(d, "TemplateContent")
            ch.old_content = _text(d, "OldTemplateContent")
            ch.new_security = _text(d, "NewSecurityDescriptor") or _text(d, "SecurityDescriptor")
            ch.old_security = _text(d, "OldSecurityDescriptor")
        return [ch]

    def _request(self, ev: WindowsEvent, d: dict[str, str], host: str) -> CertificateRequest:
        requester = _text(d, "Requester")
        domain, _, sam = requester.rpartition("\\")
        template, sans, policies, client = parse_attributes(d.get("Attributes", ""))
        field_template = _text(d, "CertificateTemplate")
        return CertificateRequest(
            time=ev.time, host=host, actor=sam, actor_domain=domain, evidence=[evidence_of(ev)],
            event_id=ev.event_id, request_id=_text(d, "RequestId"), requester=requester,
            template=template or field_template, subject_dn=_text(d, "Subject"), requested_san=sans,
            issued_san=issued_names(d.get("SubjectAlternativeName", "")) if ev.event_id == 4887 else [],
            app_policies=policies, client=client, serial=_text(d, "SerialNumber"),
            disposition=_text(d, "Disposition"), auth_service=_text(d, "AuthenticationService"),
            auth_level=_text(d, "AuthenticationLevel"), transport=_text(d, "DCOMorRPC"))
