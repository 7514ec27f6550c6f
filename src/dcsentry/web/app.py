"""The ASGI app: REST API (`/api/v1`, OpenAPI spec at `/openapi.json`), the console pages, live
alerts over SSE, `/metrics`, and the two probes.

FastAPI (Starlette underneath): typed request/response models that are also the OpenAPI spec,
dependency-injected auth, async streaming for SSE, all in the service's own event loop (uvicorn).
Only `/healthz` and `/readyz` answer without a token; the login form and its CSS/JS are public
(they hold nothing). The interactive docs pages are off: they load from a CDN.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastapi import Depends, FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles

from .. import __version__
from ..config import Detection
from ..store.store import Store
from .live import Live
from .metrics import ServiceCollector, exposition
from .security import Guard, LoginRequired, reader

PROMETHEUS_TEXT = "text/plain; version=0.0.4; charset=utf-8"
DESCRIPTION = """dcsentry's REST API. Authenticate with `Authorization: Bearer <token>`: the first start of
`dcsentry serve` prints an admin token once; `dcsentry token create --role read-only` makes more.
Read-only tokens read; changes (alert status, settings, readiness uploads, tokens) need an admin token."""


@dataclass
class WebOptions:
    detection: Detection = field(default_factory=Detection)  # the configuration file's (run-time lists add to it)
    missing_scale: float = 1.0  # [health] missing_scale, so the console agrees with the health alerts
    https: bool = False
    demo: bool = False


def create_app(store: Store, ingest: Callable[[], dict], ready: Callable[[], bool],
               options: WebOptions | None = None) -> Any:
    """The app wrapped in the request guard (body cap, security headers): hand the result to uvicorn."""
    options = options or WebOptions()
    app = FastAPI(title="dcsentry", version=__version__, description=DESCRIPTION, docs_url=None, redoc_url=None,
                  openapi_url=None)
    app.state.store = store
    app.state.options = options
    app.state.counters = Counter()
    app.state.live = Live(store)
    collector = ServiceCollector(ingest, store, app.state.counters)

    from . import api, incident_pages, pages

    app.include_router(api.router)
    app.include_router(pages.router)
    app.include_router(incident_pages.router)
    app.mount("/static", StaticFiles(directory=str(Path(__file__).parent / "static")), name="static")

    @app.exception_handler(LoginRequired)
    async def to_login(request: Request, exc: LoginRequired) -> RedirectResponse:
        return RedirectResponse(f"/login?next={exc.next_url}", status_code=303)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        app.state.counters["invalid_requests"] += 1
        errors = [{k: v for k, v in e.items() if k in ("type", "loc", "msg")} for e in exc.errors()]
        return JSONResponse({"detail": errors}, status_code=422)

    @app.get("/healthz", tags=["probes"])
    def healthz() -> dict:
        """Liveness: the process answers (no token needed)."""
        return {"status": "ok", "version": __version__}

    @app.get("/readyz", tags=["probes"], responses={503: {"description": "Not ready"}})
    def readyz(response: Response) -> dict:
        """Readiness: listeners bound and the processor running (no token needed)."""
        ok = ready()
        response.status_code = 200 if ok else 503
        return {"ready": ok}

    @app.get("/metrics", tags=["probes"], response_class=Response,
             responses={200: {"content": {PROMETHEUS_TEXT: {}}}, 401: {"description": "No or wrong token"},
                        429: {"description": "Too many failed authentications from this address: retry in a minute"}})
    def metrics(p: Any = Depends(reader)) -> Response:
        """Prometheus exposition; Prometheus sends a (read-only) token as its bearer credentials."""
        return Response(exposition(collector), media_type=PROMETHEUS_TEXT)

    @app.get("/openapi.json", include_in_schema=False)
    def openapi(p: Any = Depends(reader)) -> JSONResponse:
        return JSONResponse(app.openapi())

    guarded = Guard(app, app.state.counters, https=options.https)
    guarded.state = app.state  # the runner starts and stops the live poller
    guarded.fastapi = app
    return guarded
