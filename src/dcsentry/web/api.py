"""The REST API (`/api/v1`): alerts, entities, DC health, readiness, run-time settings, tokens.

Reads need any token; changes need an admin token and are written to the audit trail with the
token's name. Handlers are plain functions (FastAPI runs them in its thread pool) over the store's
generic query API.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

import msgspec
from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request
from fastapi.responses import Response, StreamingResponse

from ..model import iso_utc
from ..store import incidents, settings, tokens
from ..store.tokens import Principal
from . import models as m
from . import queries
from .readiness import audit_upload, dc_health
from .security import admin, reader, still_valid

router = APIRouter(prefix="/api/v1")
_enc = msgspec.json.Encoder()
Reader = Annotated[Principal, Depends(reader)]
Admin = Annotated[Principal, Depends(admin)]
_Responses = dict[int | str, dict[str, Any]]  # FastAPI's `responses=` type (dict keys are invariant)
_UNAUTH: _Responses = {401: {"description": "No or wrong token"},
           429: {"description": "Too many failed authentications from this address: retry in a minute"}}
_WRITE: _Responses = {**_UNAUTH, 400: {"description": "A body that is not JSON (or not UTF-8)"},
          403: {"description": "A read-only token (or a console request without its CSRF token)"},
          413: {"description": "A body over the size cap"}}


def _store(request: Request):  # noqa: ANN202 - whichever store backend the service runs
    return request.app.state.store


def _iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    return iso_utc(value if value.tzinfo else value.replace(tzinfo=UTC))


@router.get("/me", response_model=m.Me, responses=_UNAUTH, tags=["auth"])
def me(p: Reader) -> dict:
    """The token (or console session) making the request, and its role."""
    return {"token_id": p.token_id, "name": p.name, "role": p.role, "via": p.via}


@router.get("/alerts", response_model=m.AlertPage, responses=_UNAUTH, tags=["alerts"])
def list_alerts(request: Request, p: Reader,
                type: Annotated[str | None, Query(max_length=100, description="Alert type, e.g. brute-force")] = None,
                severity: Annotated[str | None, Query(max_length=20)] = None,
                status: Annotated[m.Status | None, Query()] = None,
                kind: Annotated[str | None, Query(max_length=20, description="security or health")] = None,
                entity: Annotated[str | None,
                                  Query(max_length=256, description="Account, host or DC named in the alert")] = None,
                since: Annotated[datetime | None, Query(description="Alerts active at or after this time")] = None,
                until: Annotated[datetime | None, Query(description="Alerts started at or before this time")] = None,
                limit: Annotated[int, Query(ge=1, le=500)] = 50,
                cursor: Annotated[str | None, Query(max_length=100, pattern=queries.CURSOR_PATTERN,
                                                    description="`next` of the previous page")] = None,
                ) -> Response:
    """Alerts, newest first, filtered and paged by cursor."""
    f = queries.AlertFilter(type=type, severity=severity, status=status, kind=kind, entity=entity,
                            since=_iso(since), until=_iso(until))
    page, nxt = queries.list_alerts(_store(request), f, limit, cursor)
    # Encoded straight from the store's rows (msgspec): the hot path skips re-validating what the
    # store wrote; the spec above still documents it, and the schemathesis test holds it to it.
    return Response(_enc.encode({"alerts": page, "next": nxt}), media_type="application/json")


@router.get("/alerts/stream", responses={**_UNAUTH, 200: {"content": {"text/event-stream": {}},
                                                         "description": "`event: alert` per new or changed alert"}},
            response_class=StreamingResponse, tags=["alerts"])
async def alert_stream(request: Request, p: Reader) -> StreamingResponse:
    """Server-sent events: each new or changed alert as its list row, as it happens."""
    return StreamingResponse(request.app.state.live.stream(lambda: still_valid(request)),
                             media_type="text/event-stream",
                             headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})


@router.get("/alerts/{alert_id}", response_model=m.AlertDetail,
            responses={**_UNAUTH, 404: {"description": "No such alert"}}, tags=["alerts"])
def get_alert(request: Request, p: Reader, alert_id: Annotated[str, Path(max_length=64)]) -> dict:
    """One alert with its evidence events, timeline and status history."""
    d = queries.alert_detail(_store(request), alert_id)
    if d is None:
        raise HTTPException(404, "no such alert")
    return d


@router.post("/alerts/{alert_id}/status", response_model=m.StatusResult,
             responses={**_WRITE, 404: {"description": "No such alert"}}, tags=["alerts"])
def set_status(request: Request, p: Admin, alert_id: Annotated[str, Path(max_length=64)], body: m.StatusChange) -> dict:
    """Open, close or suppress an alert, with a comment; recorded in the audit trail."""
    change = queries.set_status(_store(request), alert_id, body.status, body.comment, p.actor)
    if change is None:
        raise HTTPException(404, "no such alert")
    return {"id": alert_id, "status": body.status, "previous": change["from"], "comment": body.comment}


@router.get("/incidents", response_model=m.IncidentPage, responses=_UNAUTH, tags=["incidents"])
def list_incidents(request: Request, p: Reader, status: Annotated[m.Status | None, Query()] = None,
                   limit: Annotated[int, Query(ge=1, le=500)] = 50) -> dict:
    """Incidents (alerts linked into one attack story, docs/incidents.md), newest first; merged ones left out."""
    return {"incidents": incidents.list_incidents(_store(request), limit, status)}


@router.get("/incidents/{incident_id}", response_model=m.IncidentDetail,
            responses={**_UNAUTH, 404: {"description": "No such incident"}}, tags=["incidents"])
def get_incident(request: Request, p: Reader, incident_id: Annotated[str, Path(max_length=64)]) -> dict:
    """One incident: its alerts in order with their tactic, entities and their links, merges, comments."""
    d = incidents.get_incident(_store(request), incident_id)
    if d is None:
        raise HTTPException(404, "no such incident")
    return d


@router.post("/incidents/{incident_id}/status", response_model=m.StatusResult,
             responses={**_WRITE, 404: {"description": "No such incident"}}, tags=["incidents"])
def set_incident_status(request: Request, p: Admin, incident_id: Annotated[str, Path(max_length=64)],
                        body: m.StatusChange) -> dict:
    """Open, close or suppress an incident; the comment is kept on it and in the audit trail."""
    change = incidents.set_status(_store(request), incident_id, body.status, body.comment, p.actor)
    if change is None:
        raise HTTPException(404, "no such incident")
    return {"id": incident_id, "status": body.status, "previous": change["from"], "comment": body.comment}


@router.post("/incidents/{incident_id}/comments", response_model=m.IncidentComment,
             responses={**_WRITE, 404: {"description": "No such incident"}}, tags=["incidents"])
def add_incident_comment(request: Request, p: Admin, incident_id: Annotated[str, Path(max_length=64)],
                         body: m.CommentAdd) -> dict:
    """A comment on an incident, by the token's name."""
    c = incidents.add_comment(_store(request), incident_id, body.text, p.actor)
    if c is None:
        raise HTTPException(404, "no such incident")
    return c


@router.get("/entities/{kind}/{name:path}", response_model=m.EntityHistory, responses=_UNAUTH, tags=["entities"])
def entity(request: Request, p: Reader, kind: m.EntityKind, name: Annotated[str, Path(max_length=256)],
           limit: Annotated[int, Query(ge=1, le=1000)] = 200) -> dict:
    """An account's or host's history (authentications with the server accessed, group changes,
    services) or a group's membership changes, newest first, with the alerts naming it."""
    return queries.entity_history(_store(request), kind, name, limit)


def _health_report(request: Request) -> dict:
    store = _store(request)
    f = queries.AlertFilter(kind="health", status="open")
    open_alerts, _ = queries.list_alerts(store, f, limit=100)
    counters = store.counters()
    intake = {"ingest": counters.get("ingest", {}), "processor": {k: v for k, v in counters.get("processor", {}).items()
                                                                 if k not in ("samples",)},
              "forward": counters.get("forward", {})}
    return {"dcs": dc_health(store, request.app.state.options.missing_scale), "open_health_alerts": open_alerts,
            "intake": intake}


@router.get("/health", response_model=m.HealthReport, responses=_UNAUTH, tags=["health"])
def health(request: Request, p: Reader) -> dict:
    """Each DC's events and what it is missing, open health alerts, intake counters."""
    return _health_report(request)


@router.get("/readiness", response_model=m.Readiness, responses=_UNAUTH, tags=["readiness"])
def readiness(request: Request, p: Reader) -> dict:
    """The uploaded audit-policy verdicts (newest first) and what each DC has actually sent."""
    store = _store(request)
    return {"audits": settings.readiness_results(store),
            "dcs": dc_health(store, request.app.state.options.missing_scale)}


@router.post("/readiness/audits", response_model=m.ReadinessResult, status_code=201,
             responses={**_WRITE, 413: {"description": "Over 16 MB"}, 422: {"description": "Not an export"}},
             openapi_extra={"requestBody": {"required": True, "content": {"application/octet-stream": {
                 "schema": {"type": "string", "format": "binary"}}}}}, tags=["readiness"])
async def upload_audit(request: Request, p: Admin,
                       filename: Annotated[str, Query(min_length=1, max_length=200)] = "export") -> dict:
    """Run `dcsentry audit` on an auditpol /backup CSV, GPO audit.csv, GptTmpl.inf, .reg export or
    gpresult /x XML (or a zip of several, e.g. a GPO backup); the verdict is stored."""
    import asyncio

    data = await request.body()
    if not data:
        raise HTTPException(422, "empty body: send the export file as the request body")
    try:
        result = await asyncio.to_thread(audit_upload, filename, data)
    except ValueError as exc:
        raise HTTPException(422, str(exc)) from None
    if not result.get("inputs"):
        raise HTTPException(422, "; ".join(result.get("errors") or []) or "no audit-policy export found in the upload")
    store = _store(request)
    rid = await asyncio.to_thread(settings.save_readiness, store, p.actor, filename, result)
    return {"id": rid, "at": settings.readiness_results(store, 1)[0]["at"], "actor": p.actor, "filename": filename,
            "exit_status": result.get("exit_status"), "missing_required": result.get("missing_required", []),
            "result": result}


def settings_view(request: Request) -> dict:
    store = _store(request)
    base = request.app.state.options.detection
    rt = settings.runtime_settings(store)
    eff = settings.effective_detection(base, rt)
    out = {name: {"description": desc, "configured": list(getattr(base, name)), "values": rt[name]["values"],
                  "effective": list(getattr(eff, name)), "updated_at": rt[name]["updated_at"],
                  "updated_by": rt[name]["updated_by"]} for name, desc in settings.SETTINGS.items()}
    return {"settings": out, "audit": settings.audit_log(store, "settings:", prefix=True, limit=100)}


@router.get("/settings", response_model=m.SettingsView, responses=_UNAUTH, tags=["settings"])
def get_settings(request: Request, p: Reader) -> dict:
    """Honeytokens, extra sensitive groups and excluded sources: from the file and added at run time,
    with who changed what, when."""
    return settings_view(request)


@router.put("/settings/{name}", response_model=m.SettingChange, responses=_WRITE, tags=["settings"])
def put_setting(request: Request, p: Admin, name: m.SettingName, body: m.SettingUpdate) -> dict:
    """Replace a run-time list; the processor applies it within seconds."""
    try:
        change = settings.put_setting(_store(request), name, body.values, p.actor, body.comment)
    except settings.SettingValueError as exc:  # an alert exclusion that does not parse: FastAPI's 422 shape
        raise HTTPException(422, [{"loc": ["body", "values", exc.index], "msg": str(exc), "type": "value_error"}]) \
            from None
    return {"name": name, **change}


@router.get("/inventory", response_model=m.InventoryView, responses=_UNAUTH, tags=["inventory"])
def get_inventory(request: Request, p: Reader,
                  q: Annotated[str, Query(max_length=256, description="Name, SID or DN containing this")] = "",
                  kind: Annotated[m.InventoryKind | None, Query()] = None,
                  limit: Annotated[int, Query(ge=1, le=1000)] = 200,
                  offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0) -> dict:
    """The account inventory imported with `dcsentry inventory import` (LDIF or Export-Csv): which
    accounts exist, which are DCs, which are sensitive."""
    return inventory_view(request, q, kind or "", limit, offset)


def inventory_view(request: Request, q: str = "", kind: str = "", limit: int = 200, offset: int = 0) -> dict:
    from ..store.inventory import inventory_summary, list_inventory

    store = _store(request)
    return {"summary": inventory_summary(store),
            "accounts": list_inventory(store, q.replace("\x00", ""), kind, limit, offset)}


@router.get("/audit-log", response_model=list[m.AuditEntry], responses=_UNAUTH, tags=["settings"])
def get_audit_log(request: Request, p: Reader, limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> list[dict]:
    """Every change made through the console or the API, newest first."""
    return settings.audit_log(_store(request), limit=limit)


@router.get("/tokens", response_model=list[m.TokenInfo], responses=_WRITE, tags=["auth"])
def list_tokens(request: Request, p: Admin) -> list[dict]:
    return tokens.list_tokens(_store(request))


@router.post("/tokens", response_model=m.TokenCreated, status_code=201, responses=_WRITE, tags=["auth"])
def create_token(request: Request, p: Admin, body: m.TokenCreate) -> dict:
    """A new token; the response is the only time it is shown."""
    store = _store(request)
    token, info = tokens.create_token(store, body.name, body.role, p.actor)
    settings.audit(store, p.actor, "token.create", f"token:{info['id']}", {"name": body.name, "role": body.role})
    return {"token": token, "info": info}


@router.delete("/tokens/{token_id}", status_code=204, responses={**_WRITE, 404: {"description": "No such token"}},
               tags=["auth"])
def revoke_token(request: Request, p: Admin, token_id: Annotated[str, Path(max_length=64)]) -> None:
    store = _store(request)
    if not tokens.revoke_token(store, token_id):
        raise HTTPException(404, "no such active token")
    settings.audit(store, p.actor, "token.revoke", f"token:{token_id}", {})
