"""The ASGI app (FastAPI: Starlette underneath, an OpenAPI spec for free, pydantic models later for
the REST API). Without a token only the health probes answer; /metrics is for Prometheus."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import FastAPI, Response

from .. import __version__
from ..store.store import Store
from .metrics import ServiceCollector, exposition

PROMETHEUS_TEXT = "text/plain; version=0.0.4; charset=utf-8"


def create_app(store: Store, ingest: Callable[[], dict], ready: Callable[[], bool]) -> FastAPI:
    app = FastAPI(title="dcsentry", version=__version__)
    collector = ServiceCollector(ingest, store)

    @app.get("/healthz", include_in_schema=True)
    def healthz() -> dict:
        """Liveness: the process answers."""
        return {"status": "ok", "version": __version__}

    @app.get("/readyz")
    def readyz(response: Response) -> dict:
        """Readiness: listeners bound and the processor running."""
        ok = ready()
        response.status_code = 200 if ok else 503
        return {"ready": ok}

    @app.get("/metrics")
    def metrics() -> Response:
        return Response(exposition(collector), media_type=PROMETHEUS_TEXT)

    return app
