"""The console: server-rendered pages (Jinja2, autoescaped) over the same store reads as the API.

Everything ships in the package (templates, one CSS and one JS file): no CDN, no build step.
Pages need a session; the login form trades a token for one (HttpOnly, SameSite=Strict cookie).
"""

from __future__ import annotations

import hmac
import time
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import parse_qs, quote

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape

from .. import __version__
from ..store import tokens
from ..store.settings import readiness_results
from ..store.tokens import Principal
from . import queries
from .api import _health_report, inventory_view, settings_view
from .details import render_details
from .pictures import alerts_picture, entity_pictures, health_pictures, health_window
from .readiness import dc_health
from .security import COOKIE, page_reader, safe_next

HERE = Path(__file__).parent
router = APIRouter(include_in_schema=False)
Viewer = Annotated[Principal, Depends(page_reader)]


def _ts(value: Any) -> str:
    if value is None or value == "":
        return ""
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(float(value))) + "Z"


def _when(value: Any) -> str:
    """An ISO time from the store, shortened for tables (seconds, Z)."""
    s = str(value or "")
    return s[:19].replace("T", " ") + ("Z" if s else "")


env = Environment(loader=FileSystemLoader(str(HERE / "templates")), autoescape=select_autoescape(["html"]),
                  trim_blocks=True, lstrip_blocks=True)
env.filters["ts"] = _ts
env.filters["when"] = _when


def render(request: Request, name: str, p: Principal | None, status: int = 200, **ctx: Any) -> HTMLResponse:
    html = env.get_template(name).render(me=p, csrf=p.csrf if p else "", path=request.url.path,
                                         version=__version__, demo=request.app.state.options.demo, **ctx)
    return HTMLResponse(html, status_code=status, headers={"Cache-Control": "no-store"})


@router.get("/")
def home() -> RedirectResponse:
    return RedirectResponse("/alerts", status_code=303)


@router.get("/login")
def login_form(request: Request, next: str = "/") -> HTMLResponse:
    return render(request, "login.html", None, next=safe_next(next), error="")


def _same_origin(request: Request) -> bool:
    """The login and logout forms come from this server (a cross-site form cannot log a user in)."""
    origin = request.headers.get("origin")
    if not origin or origin == "null":
        return origin is None
    host = request.headers.get("host", "")
    return origin.split("://", 1)[-1] == host


async def _form(request: Request) -> dict[str, list[str]]:
    try:
        return parse_qs((await request.body()).decode("utf-8", "replace"), max_num_fields=10)
    except ValueError:  # more fields than a login or logout form has
        return {}


@router.post("/login")
async def login(request: Request) -> Response:
    form = await _form(request)
    token = (form.get("token") or [""])[0].strip()
    nxt = safe_next((form.get("next") or ["/"])[0])
    if not _same_origin(request):
        raise HTTPException(403, "cross-site login refused")
    store = request.app.state.store
    p = tokens.verify_token(store, token) if token else None
    if p is None:
        request.app.state.counters["login_failed"] += 1
        return render(request, "login.html", None, status=401, next=nxt, error="That token is not valid.")
    cookie, _ = tokens.create_session(store, p)
    resp = RedirectResponse(nxt, status_code=303)
    resp.set_cookie(COOKIE, cookie, max_age=int(tokens.SESSION_TTL), httponly=True, samesite="strict",
                    secure=request.app.state.options.https, path="/")
    return resp


@router.post("/logout")
async def logout(request: Request) -> Response:
    form = await _form(request)
    cookie = request.cookies.get(COOKIE, "")
    p = tokens.verify_session(request.app.state.store, cookie) if cookie else None
    sent = (form.get("csrf") or [""])[0]
    if p is not None:
        if not _same_origin(request) or not hmac.compare_digest(sent.encode(), p.csrf.encode()):
            raise HTTPException(403, "missing or wrong CSRF token")
        tokens.end_session(request.app.state.store, cookie)
    resp = RedirectResponse("/login", status_code=303)
    resp.delete_cookie(COOKIE, path="/")
    return resp


FILTERS = ("type", "severity", "status", "kind", "entity", "since", "until")


@router.get("/alerts")
def alerts_page(request: Request, p: Viewer) -> HTMLResponse:
    q = request.query_params
    f = queries.AlertFilter(**{k: (q.get(k) or None) for k in FILTERS})
    store = request.app.state.store
    try:
        page, nxt = queries.list_alerts(store, f, 50, q.get("cursor") or None)
    except ValueError:
        page, nxt = [], None
    keep = {k: q.get(k) for k in FILTERS if q.get(k)}
    return render(request, "alerts.html", p, alerts=page, next=nxt, filters=keep, types=queries.alert_types(store),
                  statuses=queries.STATUSES, picture=alerts_picture(store, f))


@router.get("/alerts/{alert_id}")
def alert_page(request: Request, p: Viewer, alert_id: str) -> HTMLResponse:
    d = queries.alert_detail(request.app.state.store, alert_id[:64])
    if d is None:
        return render(request, "notfound.html", p, status=404, what=f"alert {alert_id[:64]}")
    return render(request, "alert.html", p, statuses=queries.STATUSES,
                  shown_details=render_details(d["alert"].get("details")), **d)


@router.get("/entities/{kind}/{name:path}")
def entity_page(request: Request, p: Viewer, kind: str, name: str) -> HTMLResponse:
    if kind not in queries.ENTITY_KINDS:
        return render(request, "notfound.html", p, status=404, what=f"entity kind {kind[:20]}")
    h = queries.entity_history(request.app.state.store, kind, name[:256])
    return render(request, "entity.html", p, h=h, pics=entity_pictures(request.app.state.store, kind, name[:256]))


@router.get("/health")
def health_page(request: Request, p: Viewer, hours: int = 24) -> HTMLResponse:
    report = _health_report(request)
    return render(request, "health.html", p, report=report, window=health_window(hours),
                  rates=health_pictures(request.app.state.store, report["dcs"], health_window(hours)["hours"]))


@router.get("/health/{alert_id}")
def health_alert_link(p: Viewer, alert_id: str) -> RedirectResponse:
    """The CEF sink links health alerts here (as ATA's monitoring page): they are alerts like any other."""
    return RedirectResponse(f"/alerts/{quote(alert_id[:64], safe='')}", status_code=303)


@router.get("/readiness")
def readiness_page(request: Request, p: Viewer) -> HTMLResponse:
    store = request.app.state.store
    return render(request, "readiness.html", p, audits=readiness_results(store),
                  dcs=dc_health(store, request.app.state.options.missing_scale))


INVENTORY_KINDS = ("user", "computer", "dc", "sensitive", "disabled")


@router.get("/inventory")
def inventory_page(request: Request, p: Viewer, q: str = "", kind: str = "", offset: int = 0) -> HTMLResponse:
    kind = kind if kind in INVENTORY_KINDS else ""
    offset = max(0, min(offset, 10_000_000))
    q = q[:256].replace("\x00", "")
    return render(request, "inventory.html", p, view=inventory_view(request, q, kind, 200, offset), q=q, kind=kind,
                  kinds=INVENTORY_KINDS, offset=offset, limit=200)


@router.get("/settings")
def settings_page(request: Request, p: Viewer) -> HTMLResponse:
    return render(request, "settings.html", p, view=settings_view(request))
