"""Certificate requested for another identity (AD CS 4886/4887/4888; reference/dc-log-alerts.md B15).

The CA logs who asked (`Requester`, the authenticated caller) and what the certificate claims
(requested `SAN:` attribute, issued SubjectAlternativeName). A certificate whose name is not the
requester's is a logon as that other identity (PKINIT, Schannel):
- requested SAN (ESC1 enrollee-supplied subject, ESC6 EDITF_ATTRIBUTESUBJECTALTNAME2) naming
  another user, or a host other than the requesting computer;
- issued name that is another account (ESC9/ESC10: the requester's UPN was changed to the
  victim's; obs. `Principal Name=administrator` with no suffix) or another computer (Certifried);
- `ApplicationPolicies:` in the request (ESC15: policies injected into a schema-v1 template);
- a domain-controller template requested by a user, by a computer that is not a DC, or by a DC
  account over NTLM (relayed: ESC8 over HTTP/DCOM, ESC11 over RPC without privacy).
A user's identity is its sAMAccountName, `sam@<any suffix>` or its imported UPN; a computer's is a
DNS name whose first label is its name. Enrollment agents and NDES/Intune connectors request for
others by design: allow-list them (`adcs_allowed`).
"""

from __future__ import annotations

from collections.abc import Iterable

from ...activities import Activity, Logon
from ...activities.context import DomainContext
from ...activities.dclog.certsvc import CertificateRequest
from ...activities.dclog.kerberos import TicketRequest
from ...alerts import Alert
from ...config import Detection
from ..base import Incidents, Lru, add_unique

TYPE = "adcs-san-mismatch"
RELAY_WINDOW = 60.0  # an NTLM network logon of the requesting computer on the CA this close before its request
USE_WINDOW = 86400.0  # a TGT by certificate (PKINIT) for a claimed identity within this is the certificate used

AUTH_POLICIES = {
    "1.3.6.1.5.5.7.3.2": "Client Authentication", "1.3.6.1.5.2.3.4": "PKINIT Client Authentication",
    "1.3.6.1.4.1.311.20.2.2": "Smart Card Logon", "2.5.29.37.0": "Any Purpose",
    "1.3.6.1.4.1.311.20.2.1": "Certificate Request Agent",
}


def _allow_list(entries: list[str]) -> set[tuple[str, str]]:
    """`DOMAIN\\user`, `user`, `user:Template`, `*:Template` -> (requester or *, template or *)."""
    out = set()
    for e in entries:
        who, _, template = e.strip().partition(":")
        out.add((who.strip().lower().split("\\")[-1] or "*", template.strip().lower() or "*"))
    return out


def sam_key(name: str) -> str:
    return name.split("\\")[-1].lower()


class AdcsSanDetector:
    accepts = (TicketRequest, Logon, CertificateRequest)  # the engine hands it nothing else

    def __init__(self, cfg: Detection, incidents: Incidents, ctx: DomainContext) -> None:
        t = cfg.tampering
        self.allowed = _allow_list(t.adcs_allowed)
        self.dc_templates = {x.lower() for x in t.adcs_dc_templates}
        self.incidents = incidents
        self.ctx = ctx
        # claimed account name (lower) -> its alert, until USE_WINDOW has passed
        self.claimed: Lru[str, Alert] = Lru(10_000)
        # (host, computer account) -> (time, source) of its latest NTLM network logon
        self.ntlm: Lru[tuple[str, str], tuple[float, str]] = Lru(10_000)

    def _allowed(self, act: CertificateRequest) -> bool:
        who, tpl = act.actor.lower(), act.template.lower()
        return bool(self.allowed & {(who, tpl), (who, "*"), ("*", tpl)})

    def on_activity(self, act: Activity) -> Iterable[Alert]:
        if isinstance(act, TicketRequest):
            return self._used(act) if self.claimed and act.tgt else ()
        if isinstance(act, Logon):
            if act.logon_type == 3 and "NTLM" in act.package.upper() and act.account.endswith("$"):
                self.ntlm.put((act.host, act.account.lower()), (act.time.timestamp(), act.source))
            return ()
        if not isinstance(act, CertificateRequest) or not act.actor or self._allowed(act):
            return ()
        findings = self._findings(act)
        if not findings:
            return ()
        a = self.incidents.raise_or_grow(TYPE, f"{act.host}|{act.requester.lower()}", act.time, act.evidence)
        d = a.details
        requests: list[str] = d.setdefault("requests", [])
        rid = act.request_id or f"{act.event_id}@{act.time.isoformat()}"
        if rid not in requests:
            requests.append(rid)
        a.count = max(1, len(requests))
        sev = "high" if any(f[2] == "high" for f in findings) else "medium"
        if a.revision == 0 or sev == "high":
            a.severity = sev
        add_unique(a.accounts, act.requester)
        add_unique(a.hosts, act.client or (act.actor[:-1].upper() if act.actor.endswith("$") else ""))
        add_unique(a.dcs, act.host)
        for esc, text, _ in findings:
            add_unique(d.setdefault("esc", []), esc)
            add_unique(d.setdefault("findings", []), text, cap=30)
        for item in act.requested_san:
            add_unique(d.setdefault("requested_san", []), item)
        for item in act.issued_san:
            add_unique(d.setdefault("issued_san", []), item)
        if "ESC15" in d["esc"]:
            d["xdr_id"] = "xdr_SuspectedCertificateEnrollmentESC15"
        if any(e in ("ESC8", "ESC11") for e in d["esc"]):
            d["mdi_id"] = 2432
        d.update(ca=act.host, requester=act.requester, template=act.template)
        if act.subject_dn:
            d["subject"] = act.subject_dn
        if act.serial:
            add_unique(d.setdefault("serials", []), act.serial)
        if act.auth_service:
            d["authentication"] = " / ".join(x for x in (act.auth_service, act.auth_level, act.transport) if x)
        outcomes: list[str] = d.setdefault("outcomes", [])
        add_unique(outcomes, act.outcome)
        a.outcome = "issued" if "issued" in outcomes else "denied" if outcomes == ["denied"] else "requested"
        for item in (*act.requested_san, *act.issued_san):
            kind, _, v = item.partition("=")
            if kind in ("upn", "dns") and any(v in f[1] for f in findings):
                name = v.lower().split("@")[0] if kind == "upn" else v.lower().split(".")[0] + "$"
                self.claimed.put(name, a)
        a.description = self._text(a)
        return (a,)

    def _used(self, act: TicketRequest) -> tuple[Alert, ...]:
        """A TGT obtained with a certificate (PKINIT: PreAuthType 16/17) for an identity a flagged request claimed."""
        if act.status or not (act.preauth.strip() in ("16", "17") or act.cert_issuer):
            return ()
        a = self.claimed.get(act.account.lower())
        if a is None or (act.time - a.end).total_seconds() > USE_WINDOW or act.time < a.start:
            return ()
        a.evidence.extend(act.evidence[: max(0, 2 * a.count - len(a.evidence))])
        a.revision += 1
        a.end = max(a.end, act.time)
        a.severity = "high"
        add_unique(a.details.setdefault("used", []), f"{act.time:%Y-%m-%d %H:%M:%S} TGT for {act.account} by "
                   f"certificate from {act.source_ip or 'unknown address'} on {act.host}", cap=20)
        if act.source_ip:
            add_unique(a.hosts, act.source_ip)
        a.description = self._text(a)
        return (a,)

    # -- what is wrong with a request -------------------------------------------------------------
    def _findings(self, act: CertificateRequest) -> list[tuple[str, str, str]]:
        out: list[tuple[str, str, str]] = []
        requested = set(act.requested_san)
        for item in act.requested_san:
            sev = self._foreign(act, item, requested=True)
            if sev:
                out.append(("ESC1/ESC6", f"requested SAN {item} is not {act.actor}", sev))
        for item in act.issued_san:
            if item in requested:
                continue
            sev = self._foreign(act, item, requested=False)
            if sev:
                out.append(("ESC9/ESC10", f"issued name {item} is not {act.actor}", sev))
        if act.app_policies:
            words = [f"{p} ({AUTH_POLICIES[p]})" if p in AUTH_POLICIES else p for p in act.app_policies]
            auth = any(p in AUTH_POLICIES for p in act.app_policies)
            out.append(("ESC15", f"application policies injected in the request: {', '.join(words)}",
                        "high" if auth else "medium"))
        if act.template.lower() in self.dc_templates:
            machine = act.actor.endswith("$")
            if not machine:
                out.append(("ESC8", f"domain controller template {act.template} requested by a user", "high"))
            elif act.auth_service.upper() == "NTLM":
                esc = "ESC11" if act.transport.upper() == "RPC" and act.auth_level.lower() != "privacy" else "ESC8"
                out.append((esc, f"domain controller template {act.template} requested by {act.actor} over NTLM "
                                 f"({act.transport or 'unknown transport'}, level {act.auth_level or '?'}): a relayed "
                                 "machine authentication", "high"))
            elif not act.auth_service and (seen := self.ntlm.get((act.host, sam_key(act.actor)))) is not None \
                    and 0 <= act.time.timestamp() - seen[0] <= RELAY_WINDOW:
                out.append(("ESC8", f"domain controller template {act.template} requested by {act.actor} right after "
                                    f"its NTLM logon on the CA from {seen[1] or 'an unknown address'}: a relayed "
                                    "machine authentication", "high"))
            elif self.ctx.inventory.dc_names and not self.ctx.inventory.is_dc(act.actor):
                out.append(("ESC8", f"domain controller template {act.template} requested by {act.actor}, "
                                    "which is not a known DC", "high"))
        return out

    def _foreign(self, act: CertificateRequest, item: str, *, requested: bool) -> str:
        """'' when the name is the requester's own, else the severity of claiming it."""
        kind, _, value = item.partition("=")
        v = value.strip().lower()
        sam = act.actor.lower()
        machine = sam.endswith("$")
        inv = self.ctx.inventory
        acc = inv.get(act.actor)
        if kind in ("upn", "email"):
            local, at, _ = v.partition("@")
            if local in (sam, sam.rstrip("$")) or (acc is not None and acc.upn and acc.upn.lower() == v):
                return ""
            if requested or not at:
                return "high"  # a name the requester chose, or a bare UPN (ESC9/10 rename)
            other = inv.get(local)
            if other is not None and other is not acc:
                return "high"  # the issued UPN is another existing account's
            return ""  # an issued UPN whose prefix is not the sAMAccountName: ordinary
        if kind == "dns":
            first = v.split(".", 1)[0]
            if machine and (first == sam.rstrip("$") or (acc is not None and acc.dns_host_name.lower() == v)):
                return ""
            if inv.is_dc(first) or inv.get(first + "$") is not None:
                return "high"  # another computer's (or a DC's) name
            return "medium" if requested or machine else ""
        if kind == "url" and ":sid:" in v:
            own_sid = acc.sid.lower() if acc is not None and acc.sid else ""
            if own_sid and v.rsplit(":sid:", 1)[1] != own_sid:
                return "high"
        return ""

    @staticmethod
    def _text(a: Alert) -> str:
        d = a.details
        esc = "/".join(d["esc"])
        n = len(d["requests"])
        req = f"request {d['requests'][0]}" if n == 1 else f"{n} requests ({', '.join(d['requests'][:5])})"
        outcome = {"issued": "The CA issued the certificate", "denied": "The CA denied it",
                   "requested": "The request was received"}[a.outcome or "requested"]
        serials = f" (serial {', '.join(d['serials'][:3])})" if d.get("serials") else ""
        text = (f"{d['requester']} asked CA {d['ca']} for a certificate ({req}, template {d['template'] or 'unknown'}) "
                f"that does not belong to it: {'; '.join(d['findings'][:6])}. {outcome}{serials}. Pattern: {esc}. "
                "Whoever holds such a certificate can log on as the identity it names (PKINIT, Schannel).")
        if d.get("authentication"):
            text += f" Authentication: {d['authentication']}."
        if d.get("used"):
            text += f" The certificate was used: {'; '.join(d['used'][:3])}."
        return text + (
            " Revoke the certificate (certutil -revoke <serial>), check who else used the template, and fix it: "
            "untick 'Supply in the request' or require manager approval, clear EDITF_ATTRIBUTESUBJECTALTNAME2, "
            "restrict enrollment rights, and for relays enforce EPA/HTTPS on web enrollment and "
            "IF_ENFORCEENCRYPTICERTREQUEST on the CA. If the requester is an enrollment agent or NDES/Intune "
            "connector, add it to adcs_allowed.")
