"""From the facts of the exports (and, with --events, the DC's own logs) to a verdict per event:
will this DC produce it (yes / no / unknown), what to change, and which detections stay blind.

How a subcategory is decided (audit-policy.md section 5):
1. The machine's own auditpol output (`/get /r`, `/backup`) is the effective policy: it decides.
2. Otherwise Group Policy: advanced subcategory settings (audit.csv, gpreport/gpresult
   AuditSetting) and legacy category settings ([Event Audit], gpreport Audit) are weighed with
   "Audit: Force audit policy subcategory settings ..." (SCENoApplyLegacyAuditPolicy):
   - both kinds set: advanced wins unless that option is 0 (Disabled), then legacy wins;
     disagreeing values are reported as a conflict either way;
   - legacy only: applied, unless the inputs set the option to 1, which makes Windows skip the
     legacy category settings (the subcategory then decides, and no file says it: unknown);
   - advanced only: applied; with the option at 0, a conflict warns that any legacy category
     setting from another GPO would override it.
3. Several files of the same rank disagreeing (two GPOs): the weaker value is assumed and the
   conflict reported, since GPO precedence decides and the files do not say it.
A registry option (8004's AuditNTLMInDomain) is decided by the highest-ranked file that can carry
it; a file that carries registry options without this one says "not set" (Windows default 0).
Events seen in the DC's logs are proof: such an event is "yes" whatever the files say.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..catalogue import CATALOGUE
from .certutil import ALL_FILTER, filter_text, filter_verdict
from .coverage import CA_FILTER_FIX, DOMAIN_SACL, WRITE_SACLS
from .facts import MACHINE, Export, Setting
from .logs import LogEvidence
from .requirements import (
    ADVANCED_AUDIT,
    ALL_REQUIREMENTS,
    AUDIT_NTLM_IN_DOMAIN,
    BITS_TEXT,
    FAILURE,
    FORCE_SUBCATEGORIES,
    LEGACY_AUDIT,
    LEGACY_CATEGORIES,
    MDI_SUBCATEGORIES,
    NTLM_AUDIT_VALUES,
    REGISTRY_VALUES,
    SUBCATEGORIES,
    SUCCESS,
    RegistryValue,
    Requirement,
    guid_of,
    requirement_for,
)

# Subcategories checked beyond the events' own: Audit Policy Change (Sigma's and dcsentry's list of
# what an attacker turns off; 4719 itself is always logged).
EXTRA_SUBCATEGORIES = (guid_of("Audit Policy Change"),)
SACL_SETTING = "Directory object SACLs (domain root, AdminSDHolder, CN=Policies)"
CA_FILTER_SETTING = "CA AuditFilter (certutil -getreg CA\\AuditFilter)"


@dataclass
class EventVerdict:
    event_id: int
    requirement: Requirement
    status: str  # yes | no | unknown
    detail: str
    source: str = ""
    fix: list[str] = field(default_factory=list)
    blind: list[str] = field(default_factory=list)


@dataclass
class SettingCheck:
    setting: str
    where: str
    wanted: str
    current: str
    status: str  # yes | no | unknown
    source: str
    required: bool
    minimum: str = ""  # what the sensor cannot do without, when less than `wanted` (required settings)


@dataclass
class Verdict:
    events: dict[int, EventVerdict]
    settings: list[SettingCheck]
    conflicts: list[str]
    warnings: list[str]
    inputs: list[Export]
    logs: LogEvidence | None = None

    def missing_required(self) -> list[int]:
        return [e for e, v in self.events.items() if v.requirement.required and v.status == "no"]

    def unknown_required(self) -> list[int]:
        return [e for e, v in self.events.items() if v.requirement.required and v.status == "unknown"]


def bits_text(bits: int | None, raw: str = "") -> str:
    if bits is None:
        return f"{raw!r} (not understood)" if raw else "unknown"
    return BITS_TEXT[bits]


def _weakest(settings: list[Setting], needs: int) -> Setting:
    """The setting that satisfies least of `needs` (unknown values count as weakest)."""
    def score(s: Setting) -> tuple[int, int]:
        if s.value is None:
            return (-1, 0)
        return (bin(s.value & needs).count("1"), s.value)
    return min(settings, key=score)


def _top(settings: list[Setting]) -> list[Setting]:
    if not settings:
        return []
    best = max(s.rank for s in settings)
    return [s for s in settings if s.rank == best]


class _Resolver:
    def __init__(self, exports: list[Export]) -> None:
        self.exports = exports
        self.conflicts: list[str] = []
        self._noted: set[str] = set()

    def conflict(self, text: str) -> None:
        if text not in self._noted:
            self._noted.add(text)
            self.conflicts.append(text)

    # -- registry options ---------------------------------------------------------------------
    def registry(self, rv: RegistryValue) -> tuple[bool, int | None, str]:
        """(covered by some file, value or None when not set, source)."""
        cands: list[Setting] = []
        for exp in self.exports:
            got = exp.registry.get(rv.name.lower())
            if got:
                cands.append(got[-1])
            elif exp.covers(rv.key):
                cands.append(Setting(None, f"{exp.path} (not set there)", exp.rank))
        if not cands:
            return False, None, ""
        top = _top(cands)
        chosen = min(top, key=lambda s: (s.value == rv.wanted, s.value or 0))
        if len({s.value for s in top}) > 1:
            said = "; ".join(f"{rv.text(s.value)} in {s.source}" for s in top)
            self.conflict(f"{rv.option}: the files disagree ({said}); GPO precedence decides, assuming "
                          f"{rv.text(chosen.value)}")
        return True, chosen.value, chosen.source

    def ca_filters(self) -> dict[str, Setting]:
        """Each CA's AuditFilter (the last one a file gives for it); a value "not set" is None."""
        out: dict[str, Setting] = {}
        for exp in self.exports:
            for ca, settings in exp.ca_filters.items():
                out[ca] = settings[-1]
        return out

    def force_subcategories(self) -> tuple[int | None, str]:
        covered, value, source = self.registry(FORCE_SUBCATEGORIES)
        return (value, source) if covered else (None, "")

    # -- audit subcategories ------------------------------------------------------------------
    def subcategory(self, guid: str, needs: int) -> tuple[int | None, str, str, list[str]]:
        """(bits or None, source, how it was decided, extra fixes)."""
        sub = SUBCATEGORIES[guid]
        adv = [s for e in self.exports for s in e.subcategories.get(guid, [])]
        leg_key = sub.legacy.lower()
        leg = [s for e in self.exports for s in e.legacy.get(leg_key, [])]
        leg_name = LEGACY_CATEGORIES[leg_key][1]
        force, force_src = self.force_subcategories()
        fixes: list[str] = []
        machine = [s for s in adv if s.rank == MACHINE]
        if machine:
            chosen = self._pick(machine, needs, f"Audit {sub.name}")
            for s in adv + leg:
                if s.rank < MACHINE and s.value is not None and s.value != chosen.value:
                    self.conflict(f"Audit {sub.name}: {s.source} asks for {bits_text(s.value)} but the DC's auditpol "
                                  f"output ({chosen.source}) shows {bits_text(chosen.value, chosen.text)}: that policy "
                                  "is not applied to this DC, or another GPO wins")
            return chosen.value, chosen.source, "the DC's auditpol output", fixes
        adv_top, leg_top = _top(adv), _top(leg)
        a = self._pick(adv_top, needs, f"Audit {sub.name}") if adv_top else None
        lg = self._pick(leg_top, needs, leg_name) if leg_top else None
        if a and lg:
            if force == 0:
                self.conflict(f"Audit {sub.name}: the legacy category setting '{leg_name}' = {bits_text(lg.value)} "
                              f"({lg.source}) overrides the advanced setting {bits_text(a.value)} ({a.source}) because "
                              f"'{FORCE_SUBCATEGORIES.option}' is Disabled ({force_src})")
                fixes.append(FORCE_SUBCATEGORIES.fix())
                return lg.value, lg.source, f"legacy '{leg_name}' (advanced settings overridden)", fixes
            if lg.value != a.value:
                why = (f"SCENoApplyLegacyAuditPolicy = 1 ({force_src})" if force == 1 else
                       "SCENoApplyLegacyAuditPolicy is not set in these files (Windows default: Enabled)")
                self.conflict(f"Audit {sub.name}: legacy '{leg_name}' = {bits_text(lg.value)} ({lg.source}) disagrees "
                              f"with the advanced setting {bits_text(a.value)} ({a.source}); the advanced one applies: "
                              f"{why}. Were it set to 0, the legacy value would apply")
            return a.value, a.source, "advanced audit policy", fixes
        if a:
            if force == 0:
                self.conflict(f"'{FORCE_SUBCATEGORIES.option}' is Disabled ({force_src}) while advanced audit "
                              f"policy is used: a legacy category setting from any GPO would override Audit {sub.name}")
                fixes.append(FORCE_SUBCATEGORIES.fix())
            return a.value, a.source, "advanced audit policy", fixes
        if lg:
            if force == 1:
                self.conflict(f"Legacy '{leg_name}' = {bits_text(lg.value)} ({lg.source}) is not applied: "
                              f"SCENoApplyLegacyAuditPolicy = 1 ({force_src}) makes Windows skip legacy category "
                              "settings, so the advanced subcategory setting decides")
                return None, lg.source, (f"legacy '{leg_name}' is skipped (SCENoApplyLegacyAuditPolicy = 1) and no "
                                         f"file has the advanced 'Audit {sub.name}' setting"), fixes
            fixes.append(f"{LEGACY_AUDIT} > \"{leg_name}\" = Success and Failure (legacy), or better the advanced "
                         "setting above")
            return lg.value, lg.source, f"legacy '{leg_name}'", fixes
        return None, "", (f"no file sets 'Audit {sub.name}' (nor the legacy '{leg_name}'); "
                          "`auditpol /get /category:* /r` on the DC shows its effective value"), fixes

    def _pick(self, settings: list[Setting], needs: int, what: str) -> Setting:
        chosen = _weakest(settings, needs)
        if len({s.value for s in settings}) > 1:
            said = "; ".join(f"{bits_text(s.value, s.text)} in {s.source}" for s in settings)
            self.conflict(f"{what}: the files disagree ({said}); GPO precedence decides, assuming the weaker "
                          f"{bits_text(chosen.value, chosen.text)}")
        return chosen


def _need_text(needs: int) -> str:
    return BITS_TEXT[needs]


def _with_ca_filter(v: EventVerdict, r: _Resolver) -> EventVerdict:
    """A CA event needs both Certification Services auditing and the CA's AuditFilter."""
    status, detail, source = filter_verdict(v.requirement.ca_filter, r.ca_filters())
    order = {"no": 0, "unknown": 1, "yes": 2}
    v.detail = f"Audit Certification Services: {v.detail}; {detail} (both are needed, on each CA)"
    v.source = ", ".join(x for x in (v.source, source) if x)
    if order[status] < order[v.status]:
        v.status = status
    if v.status != "yes":
        v.fix = list(dict.fromkeys([*v.fix, v.requirement.fix(), CA_FILTER_FIX]))
        v.blind = list(v.requirement.blind)
    else:
        v.fix, v.blind = [], []
    return v


def _event(eid: int, req: Requirement, r: _Resolver) -> EventVerdict:
    v = _event_setting(eid, req, r)
    if req.ca_filter is not None:
        return _with_ca_filter(v, r)
    if req.extra and req.subcategory and v.status == "yes" and any(x in (DOMAIN_SACL, WRITE_SACLS) for x in req.extra):
        v.detail += "; " + "; ".join(req.extra)
    return v


def _event_setting(eid: int, req: Requirement, r: _Resolver) -> EventVerdict:
    if req.always:
        return EventVerdict(eid, req, "yes", req.always_note or "no audit setting controls it")
    if req.registry:
        rv = REGISTRY_VALUES[req.registry]
        covered, value, source = r.registry(rv)
        if not covered:
            return EventVerdict(eid, req, "unknown", "none of the files carries the NTLM Security Options (give a "
                                "secedit /export or GptTmpl.inf, a reg export of Netlogon\\Parameters, or gpresult /x)",
                                "", [req.fix()], list(req.blind))
        if value == rv.wanted:
            return EventVerdict(eid, req, "yes", f"{rv.name} = {rv.text(value)}", source)
        if value in (1, 3, 5):
            detail = (f"partial: {rv.name} = {rv.text(value)} audits only part of the NTLM authentications; "
                      f"8004 for all of them needs {rv.wanted} ({rv.wanted_text})")
        else:
            detail = f"{rv.name} = {rv.text(value)}"
        return EventVerdict(eid, req, "no", detail, source, [req.fix()], list(req.blind))
    assert req.subcategory is not None
    bits, source, how, fixes = r.subcategory(req.subcategory, req.needs)
    if bits is None:
        return EventVerdict(eid, req, "unknown", how, source, [req.fix(), *fixes], list(req.blind))
    if bits & req.needs == req.needs:
        return EventVerdict(eid, req, "yes", f"{bits_text(bits)} (from {how})", source)
    lacking = req.needs & ~bits
    why = f"{bits_text(bits)} where {_need_text(req.needs)} is needed (from {how})"
    if lacking & FAILURE and req.needs & FAILURE and eid in (4776, 4771, 4625):
        why += ": without Failure the wrong passwords are not logged"
    return EventVerdict(eid, req, "no", why, source, [req.fix(), *fixes], list(req.blind))


def _apply_logs(v: EventVerdict, logs: LogEvidence, conflicts: list[str]) -> None:
    """Events in the logs prove the setting behind them: any event of the same audit subcategory
    (4771 failures prove Failure auditing of Kerberos Authentication Service, hence 4768 failures)."""
    req = v.requirement
    ids = ({e for q in ALL_REQUIREMENTS if q.subcategory == req.subcategory for e in q.event_ids}
           if req.subcategory else set(req.event_ids))
    succ = sum(logs.outcomes(e)[0] for e in ids)
    fail = sum(logs.outcomes(e)[1] for e in ids)
    if succ + fail == 0 or v.status == "yes":
        return
    dcs = sorted({dc for e in ids for dc in logs.dcs_with(e)})
    what = "of these events" if len(ids) == 1 else f"events of the same setting ({', '.join(map(str, sorted(ids)))})"
    have = f"{succ + fail} {what} in the logs ({', '.join(dcs)})"
    for bit, n, word in ((FAILURE, fail, "failures"), (SUCCESS, succ, "successes")):
        if req.needs & bit and n == 0:
            if v.status == "unknown":
                v.detail += f"; the logs have {have} but no {word}: whether those are audited cannot be told"
            return
    if v.status == "no":
        conflicts.append(f"{v.event_id}: the exports say no ({v.detail}) but there are {have}: the exports are not of "
                         "this DC, or older than a change")
    v.status, v.detail, v.source, v.fix, v.blind = "yes", f"seen: {have}", "logs", [], []


def _setting_checks(r: _Resolver) -> list[SettingCheck]:
    out = []
    required = {q.subcategory for q in ALL_REQUIREMENTS if q.required and q.subcategory}
    guids = list(MDI_SUBCATEGORIES) + [q.subcategory for q in ALL_REQUIREMENTS
                                       if q.subcategory and q.subcategory not in MDI_SUBCATEGORIES] + \
        list(EXTRA_SUBCATEGORIES)
    for guid in dict.fromkeys(guids):
        sub = SUBCATEGORIES[guid]
        bits, source, how, _ = r.subcategory(guid, 3)
        status = "unknown" if bits is None else ("yes" if bits == 3 else "no")
        req = next((q for q in ALL_REQUIREMENTS if q.subcategory == guid), None)
        where = req.where if req else f"{ADVANCED_AUDIT} > {sub.category}"
        if req and req.scope == "ca":
            where += " (on each CA)"
        elif req and req.optional:
            where += " (optional: noisy)"
        minimum = BITS_TEXT[req.needs] if req and req.required else ""
        out.append(SettingCheck(f"Audit {sub.name}", where, "Success and Failure",
                                bits_text(bits) if bits is not None else "not decided by these files", status,
                                source, guid in required, minimum))
    for rv in (*NTLM_AUDIT_VALUES, FORCE_SUBCATEGORIES):
        covered, value, source = r.registry(rv)
        if not covered:
            status, current = "unknown", "not in these files"
        else:
            ok = value == rv.wanted or (rv is FORCE_SUBCATEGORIES and value is None)
            ok = ok or (rv.name == "RestrictSendingNTLMTraffic" and value == 2)
            status, current = ("yes" if ok else "no"), rv.text(value)
        needed = rv is AUDIT_NTLM_IN_DOMAIN
        out.append(SettingCheck(rv.option, "Security Options", rv.wanted_text, current, status, source,
                                needed, rv.wanted_text if needed else ""))
    out.append(SettingCheck(SACL_SETTING, "Active Directory object auditing (Advanced Security > Auditing)",
                            "Everyone, Success: Control Access + Write on the domain object; Write on "
                            "AdminSDHolder and CN=Policies; Defender for Identity's entries on descendant users, "
                            "groups, computers and service accounts",
                            "cannot be read from an audit export: run domain-sacl.ps1 -CheckOnly "
                            "(`dcsentry audit --fix-script`)", "unknown", "", False))
    filters = r.ca_filters()
    if filters:
        bad = [ca for ca, x in filters.items() if (x.value or 0) != ALL_FILTER]
        current = "; ".join(f"{ca}: {filter_text(x.value)}" for ca, x in sorted(filters.items()))
        status, source = ("no" if bad else "yes"), ", ".join(x.source for x in filters.values())
    else:
        status, current, source = "unknown", "not in these files (give each CA's certutil output)", ""
    out.append(SettingCheck(CA_FILTER_SETTING, "each CA's registry (certutil -setreg CA\\AuditFilter 127)",
                            f"{ALL_FILTER} (all)", current, status, source, False))
    return out


def _warnings(r: _Resolver, exports: list[Export]) -> list[str]:
    out = []
    checks = (("restrictntlmindomain", "NTLM authentication in this domain is being denied: denied attempts are "
               "logged as 4004-4006 ('Domain Controller Blocked'), which dcsentry does not read"),
              ("restrictsendingntlmtraffic", "outgoing NTLM from this DC is blocked (and logged as 4001), which is "
               "dangerous on a DC; 1 (Audit all) is what is asked"),
              ("restrictreceivingntlmtraffic", "incoming NTLM to this DC is denied"))
    for key, text in checks:
        rv = REGISTRY_VALUES[key]
        covered, value, source = r.registry(rv)
        if covered and value and (key != "restrictsendingntlmtraffic" or value == 2):
            out.append(f"{rv.option} = {rv.text(value)} ({source}): {text}")
    machines = {e.machine for e in exports if e.machine and e.kind in ("auditpol-get", "auditpol-backup", "gpresult")}
    if len(machines) > 1:
        out.append(f"the exports describe several machines ({', '.join(sorted(machines))}): the verdict mixes them; "
                   "run `dcsentry audit` once per DC")
    for e in exports:
        out.extend(e.notes)
    if exports and all(e.rank == 1 for e in exports):
        out.append("only Group Policy files were given: they say what those GPOs ask for, not what other GPOs or "
                   "local policy set on the DC; `auditpol /get /category:* /r` and `gpresult /x` on the DC give "
                   "its effective state")
    return out


def decide(exports: list[Export], logs: LogEvidence | None = None) -> Verdict:
    r = _Resolver(exports)
    events: dict[int, EventVerdict] = {}
    for eid in CATALOGUE:
        req = requirement_for(eid)
        if req is None:
            continue
        events[eid] = _event(eid, req, r)
        if logs is not None:
            _apply_logs(events[eid], logs, r.conflicts)
    settings = _setting_checks(r)
    return Verdict(events, settings, r.conflicts, _warnings(r, exports), exports, logs)
