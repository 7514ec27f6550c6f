"""Suspicious modifications to AD CS (reference/dc-log-alerts.md A8, B15; MDI 2433/2434/2435).

From the CA's Security log: 4882 CA permissions (ManageCA / Manage Certificates: ESC7), 4885 audit
filter lowered below 127 (also a health alert of the CA, closed when it is back), 4890 certificate
manager restrictions, 4896 rows deleted from the CA database, 4899/4900 a template's content or
security updated. From the DCs: 5136 writes to the PKI objects under `CN=Public Key Services`
(templates, OIDs, enrollment services, NTAuthCertificates). Medium; high when the new template
lets the enrollee supply the subject AND allows client authentication (ESC1), when an OID is
linked to a group (ESC13), or when a CA certificate is added to NTAuthCertificates.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from ...activities import Activity, DcActivity
from ...activities.context import DomainContext
from ...activities.dclog.certsvc import CaChange
from ...activities.dclog.directory import DirectoryChange
from ...alerts import Alert
from ...config import Detection
from ..base import Incidents, add_unique
from .adcs_san import AUTH_POLICIES
from .blind import BlindSpots, link
from .log_cleared import actor_of

TYPE = "adcs-config-change"
CHECK = "ca-audit-filter"
PKI = "cn=public key services,cn=services,cn=configuration,"

FILTER_BITS = {1: "start and stop of AD CS", 2: "backup and restore of the CA database",
               4: "certificate requests (issue, deny, manage)", 8: "revocations and CRLs",
               16: "CA security settings", 32: "archived keys", 64: "CA configuration"}
_NAME_FLAG = re.compile(r"msPKI-Certificate-Name-Flag\s*=\s*(0x[0-9a-f]+|\d+)", re.IGNORECASE)
_MANAGE = ("manage ca", "manageca", "manage certificates", "issue and manage", "ca administrator",
           "certificate manager", "officer")


def supplies_subject(content: str) -> bool:
    if "ENROLLEE_SUPPLIES_SUBJECT" in content.upper():
        return True
    m = _NAME_FLAG.search(content)
    if m is None:
        return False
    raw = m.group(1).lower()
    return bool((int(raw, 16) if raw.startswith("0x") else int(raw)) & 1)


def auth_usages(content: str) -> list[str]:
    return [f"{oid} ({name})" for oid, name in AUTH_POLICIES.items() if oid in content]


def _rdn(dn: str) -> str:
    return dn.split(",", 1)[0].partition("=")[2] or dn


class AdcsConfigDetector:
    accepts = (CaChange, DirectoryChange)  # the engine hands it nothing else

    def __init__(self, cfg: Detection, incidents: Incidents, ctx: DomainContext) -> None:
        self.wanted = cfg.tampering.adcs_audit_filter
        self.incidents = incidents
        self.ctx = ctx
        self.blind = BlindSpots(cfg.max_evidence)

    def on_activity(self, act: Activity) -> Iterable[Alert]:
        if isinstance(act, CaChange):
            return self._ca(act)
        if isinstance(act, DirectoryChange) and PKI in act.object_dn.lower():
            return self._directory(act)
        return ()

    # -- the CA's own log ---------------------------------------------------------------------------
    def _ca(self, act: CaChange) -> list[Alert]:
        eid = act.event_id
        sev = "medium"
        if eid == 4885:
            f = act.audit_filter
            if f is None:
                return []
            if f >= self.wanted:
                h = self.blind.close(CHECK, act.host, act.time, act.evidence)
                if h is None:
                    return []
                h.count += 1
                h.description = (f"The audit filter of CA {act.host} is back to {f} (set by "
                                 f"{actor_of(act.actor, act.actor_domain) or 'an unknown account'} at "
                                 f"{act.time:%Y-%m-%d %H:%M:%S} UTC). Requests made meanwhile were not audited.")
                return [h]
            off = [w for b, w in FILTER_BITS.items() if self.wanted & b and not f & b]
            line = f"audit filter set to {f}: no longer audits {', '.join(off) or 'some categories'}"
        elif eid == 4882:
            manage = [m for m in _MANAGE if m in act.settings.lower()]
            line = "CA permissions changed" + (f" (grants {', '.join(manage)}: ESC7 if a non-admin holds it)"
                                               if manage else "")
            line += f": {' '.join(act.settings.split())[:300]}" if act.settings else ""
        elif eid == 4890:
            line = f"certificate manager restrictions changed: {act.settings or 'no details'}"
        elif eid == 4896:
            line = (f"{act.rows_deleted if act.rows_deleted is not None else 'some'} rows deleted from the CA database"
                    + (f" (table {act.table}, filter {act.filter})" if act.table or act.filter else ""))
        elif eid in (4899, 4900):
            what = "content" if eid == 4899 else "security"
            line = f"template {act.template or act.template_oid or '?'} {what} updated"
            if supplies_subject(act.new_content) and (eku := auth_usages(act.new_content)):
                sev = "high"
                line += f": the enrollee supplies the subject and it allows {', '.join(eku)} (ESC1)"
            if eid == 4900 and act.new_security:
                line += f"; new security: {' '.join(act.new_security.split())[:300]}"
        else:
            return []  # 4898: a template loaded, routine
        a = self._grow(act, f"{act.host}|{act.actor.lower()}", line, sev)
        a.details["ca"] = act.host
        out = [a]
        if eid == 4885:
            a.details["audit_filter"] = act.audit_filter
            a.details["mdi_id"] = 2434
            h = self.blind.raise_or_grow(CHECK, act.host, act.time, act.evidence, technique="T1562.002",
                                         title=f"dcsentry is going blind on CA {act.host}: audit filter lowered")
            link(a, h)
            h.description = (f"CA {act.host} audit filter is {act.audit_filter} (needs {self.wanted}): {line}. "
                             f"Certificate abuse on this CA can go unseen. Fix on {act.host}: certutil -setreg "
                             f"CA\\AuditFilter {self.wanted}, then restart certsvc. Security alert {a.id}.")
            out.append(h)
        elif eid == 4896:
            a.details["mdi_id"] = 2433
        a.description = self._text(a)
        return out

    # -- PKI objects in the directory -----------------------------------------------------------------
    def _directory(self, act: DirectoryChange) -> list[Alert]:
        dn = act.object_dn.lower()
        name = _rdn(act.object_dn)
        attr = act.attr
        added = " ".join(act.added)
        sev = "medium"
        where = ("template" if "cn=certificate templates," in dn else "OID" if "cn=oid," in dn
                 else "CA object" if "cn=enrollment services," in dn
                 else "NTAuth store" if dn.startswith("cn=ntauthcertificates,") else "PKI object")
        if act.operation != "modify":
            line = f"{where} {name} {act.operation}d"
        else:
            line = f"{where} {name}: {act.attribute} changed"
        if attr == "mspki-certificate-name-flag" and any((v.strip().lstrip("-").isdigit() and int(v) & 1)
                                                          for v in act.added):
            sev = "high"
            line += " (the enrollee now supplies the subject: ESC1 if the template allows client authentication)"
        elif attr in ("pkiextendedkeyusage", "mspki-certificate-application-policy") and auth_usages(added):
            sev = "high" if where == "template" else sev
            line += f" (adds {', '.join(auth_usages(added))})"
        elif attr == "msds-oidtogrouplink" and act.added:
            sev = "high"
            line += f" (issuance policy linked to group {act.added[0]}: ESC13)"
        elif attr == "cacertificate" and where == "NTAuth store" and act.added:
            sev = "high"
            line += " (a CA certificate added to NTAuthCertificates: its certificates can now log on)"
        elif attr == "ntsecuritydescriptor":
            line += " (permissions: ESC4 if a non-admin can now write or enroll)"
        elif attr == "certificatetemplates" and act.added:
            line += f" (published: {', '.join(act.added[:5])})"
        a = self._grow(act, f"directory|{act.actor.lower()}", line, sev)
        add_unique(a.details.setdefault("objects", []), act.object_dn, cap=50)
        a.description = self._text(a)
        return [a]

    # -- shared ---------------------------------------------------------------------------------------
    def _grow(self, act: DcActivity, key: str, line: str, sev: str) -> Alert:
        a = self.incidents.raise_or_grow(TYPE, key, act.time, act.evidence)
        if a.revision == 0 or sev == "high":
            a.severity = sev
        a.count += 1
        actor = actor_of(act.actor, act.actor_domain)
        add_unique(a.accounts, actor)
        add_unique(a.hosts, act.source if act.session is not None and act.session.remote else act.host)
        add_unique(a.dcs, act.host)
        add_unique(a.details.setdefault("changes", []), f"{act.time:%Y-%m-%d %H:%M:%S} {line}", cap=50)
        return a

    @staticmethod
    def _text(a: Alert) -> str:
        changes = a.details["changes"]
        who = ", ".join(a.accounts) or "an account the CA does not name (4899/4900: see the DCs' 5136 for who)"
        where = a.details.get("ca")
        head = (f"{who} changed AD CS on {'CA ' + where if where else 'the directory PKI objects'} "
                f"({len(changes)} change{'s' if len(changes) != 1 else ''}):\n")
        return head + "\n".join(changes[-10:]) + (
            "\nConfirm each change with its owner and the PKI change records. If unplanned: restore the previous "
            "setting (template flags and EKUs, CA permissions, AuditFilter 127), revoke certificates issued since "
            "from the affected templates, and review who holds ManageCA / Manage Certificates.")
