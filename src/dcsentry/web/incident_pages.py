"""The console's incident pages: the list (newest first, refreshed live) and one incident (timeline of
its alerts with their tactic, the entity graph, merges, status and comments)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from ..store import incidents
from .incident_graph import incident_svg
from .pages import Viewer, render

router = APIRouter(include_in_schema=False)


@router.get("/incidents")
def incidents_page(request: Request, p: Viewer) -> HTMLResponse:
    status = request.query_params.get("status") or None
    status = status if status in (*incidents.STATUSES, "merged") else None
    rows = incidents.list_incidents(request.app.state.store, 100, status)
    return render(request, "incidents.html", p, incidents=rows, chosen=status, statuses=incidents.STATUSES)


@router.get("/incidents/{incident_id}")
def incident_page(request: Request, p: Viewer, incident_id: str) -> HTMLResponse:
    d = incidents.get_incident(request.app.state.store, incident_id[:64])
    if d is None:
        return render(request, "notfound.html", p, status=404, what=f"incident {incident_id[:64]}")
    return render(request, "incident.html", p, inc=d, graph=incident_svg(d), statuses=incidents.STATUSES)
