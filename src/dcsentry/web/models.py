"""Request and response shapes of the REST API: they are the OpenAPI spec, and schemathesis holds
the server to them. Nested records that come straight from the store (alert bodies, events,
activities, audit verdicts) are open objects: their own contracts are documented where they are
made (alerts.py, model.py, audit/report.py)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Status = Literal["open", "closed", "suppressed"]
Role = Literal["read-only", "admin"]
SettingName = Literal["honeytokens", "sensitive_groups", "exclude_sources", "replication_allowed", "alert_exclusions"]
InventoryKind = Literal["user", "computer", "dc", "sensitive", "disabled"]
EntityKind = Literal["account", "host", "group"]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Me(BaseModel):
    token_id: str
    name: str
    role: Role
    via: Literal["bearer", "session"]


class Entities(BaseModel):
    accounts: list[str] = []
    hosts: list[str] = []
    dcs: list[str] = []


class AlertSummary(BaseModel):
    id: str
    type: str
    kind: str
    severity: str
    status: str
    start: str
    end: str
    count: int
    revision: int
    title: str
    updated_at: float
    summary: str
    entities: Entities


class AlertPage(BaseModel):
    alerts: list[AlertSummary]
    next: str | None = Field(None, description="Cursor of the next (older) page; null on the last page")


class EvidenceItem(BaseModel):
    event_id: int
    computer: str
    record_id: int | None
    time: str
    origin: str | None = None
    event: dict[str, Any] | None = Field(None, description="The stored event, when the store has it")
    fields: dict[str, Any] = Field(default_factory=dict, description="Its key fields (who, from where, answer)")


class AuditEntry(BaseModel):
    at: float
    actor: str
    action: str
    target: str
    detail: dict[str, Any]


class TimelineItem(BaseModel):
    time: str
    what: str
    kind: Literal["alert", "event", "status"]


class AlertDetail(BaseModel):
    alert: dict[str, Any] = Field(description="The alert as `hunt --jsonl` writes it, with its current status")
    evidence: list[EvidenceItem]
    history: list[AuditEntry]
    timeline: list[TimelineItem]


class StatusChange(Strict):
    status: Status
    comment: str = Field("", max_length=4000)


class StatusResult(BaseModel):
    id: str
    status: Status
    previous: str
    comment: str


class EntityHistory(BaseModel):
    kind: EntityKind
    name: str
    auth: list[dict[str, Any]] = Field(description="Authentications (NTLM with the server accessed, Kerberos)")
    accessed: list[dict[str, Any]] = Field(description="A host's: authentications that reached it as the server "
                                                       "(NTLM 4776 joined with its 8004, failed logons it logged)")
    groups: list[dict[str, Any]] = Field(description="Group membership changes")
    services: list[dict[str, Any]] = Field(description="Services installed")
    alerts: list[AlertSummary]


class Requirement(BaseModel):
    key: str
    what: str
    required: bool
    state: Literal["seen", "missing", "too-early", "not-seen"]
    count: int
    subcategory: str = Field("", description="The audit setting these events need (\"Audit Directory Service "
                                             "Access\"), or what stands in for one")
    alerts: str = Field("", description="absent: a health alert when a DC never sent them; stopped: when it sent "
                                        "them, then stopped; never: shown only")
    fix: str
    blind: list[str]
    allowed_silence_hours: float


class DcEvent(BaseModel):
    event_id: int
    count: int
    last_seen: float
    last_event_utc: str | None


class DcHealth(BaseModel):
    dc: str
    first_seen: float
    last_seen: float
    silent_for: float
    events: list[DcEvent]
    requirements: list[Requirement]


class HealthReport(BaseModel):
    dcs: list[DcHealth]
    open_health_alerts: list[AlertSummary]
    intake: dict[str, Any] = Field(description="Receiving and processing counters")


class ReadinessResult(BaseModel):
    id: str
    at: float
    actor: str
    filename: str
    exit_status: int | None
    missing_required: list[str]
    result: dict[str, Any] | None = Field(None, description="`dcsentry audit --json` output (latest upload only)")


class Readiness(BaseModel):
    audits: list[ReadinessResult] = Field(description="Uploaded audit-policy exports, newest first")
    dcs: list[DcHealth] = Field(description="What each DC has actually sent")


class SettingValue(BaseModel):
    description: str
    configured: list[str] = Field(description="From the configuration file (read-only here)")
    values: list[str] = Field(description="Added at run time through the console or API")
    effective: list[str]
    updated_at: float | None
    updated_by: str | None


class SettingsView(BaseModel):
    settings: dict[str, SettingValue]
    audit: list[AuditEntry]


class SettingUpdate(Strict):
    values: list[Annotated[str, Field(max_length=256)]] = Field(max_length=10_000)
    comment: str = Field("", max_length=4000)


class SettingChange(BaseModel):
    name: SettingName
    added: list[str]
    removed: list[str]
    comment: str


class TokenInfo(BaseModel):
    id: str
    name: str
    role: Role
    created_at: float
    created_by: str
    last_used: float | None
    revoked_at: float | None


class TokenCreate(Strict):
    name: str = Field(min_length=1, max_length=100)
    role: Role = "read-only"


class TokenCreated(BaseModel):
    token: str = Field(description="Shown once; only its hash is stored")
    info: TokenInfo


class InventoryAccount(BaseModel):
    name: str = Field(description="sAMAccountName")
    sid: str
    kind: Literal["user", "computer"]
    dn: str
    upn: str
    dns_host_name: str
    sensitive: bool = Field(description="adminCount=1 in the export")
    dc: bool = Field(description="A domain controller (SERVER_TRUST / read-only DC / primary group 516, 521)")
    source: str
    enc_types: int | None = Field(description="msDS-SupportedEncryptionTypes")
    spns: list[str]
    disabled: bool
    uac: int | None = Field(description="LDAP userAccountControl")


class InventorySummary(BaseModel):
    accounts: int
    users: int
    computers: int
    dcs: int
    sensitive: int
    disabled: int
    imported_at: float | None
    imported_by: str | None
    filename: str | None


class InventoryView(BaseModel):
    summary: InventorySummary
    accounts: list[InventoryAccount]


class IncidentSummary(BaseModel):
    id: str
    title: str
    severity: str
    status: str
    start: str
    end: str
    merged_into: str | None = None
    updated_at: float
    alerts: list[dict[str, Any]] = Field(description="Its alerts in time order: id, type, tactic, severity, start, end")
    entities: list[dict[str, Any]] = Field(
        description="Accounts and hosts with their roles (actor, target, source, dc)")


class IncidentPage(BaseModel):
    incidents: list[IncidentSummary]


class IncidentComment(BaseModel):
    id: str
    at: float
    author: str
    text: str


class IncidentDetail(IncidentSummary):
    dominance: bool = False
    edges: list[dict[str, Any]] = Field(default_factory=list, description="Who touched what: from, to, alert type")
    links: list[dict[str, Any]] = Field(default_factory=list, description="Why each alert joined")
    merged: list[dict[str, Any]] = Field(default_factory=list, description="Incidents folded into this one")
    comments: list[IncidentComment] = []


class CommentAdd(Strict):
    text: str = Field(min_length=1, max_length=4000)
