"""``GET /health`` (are the stores reachable) and ``GET /metrics`` (Prometheus text format:
requests answered by method, route and status; sync requests by state).

Requests are counted by the route's *template* (``/api/sas/{sa_id}``), never by the path
itself, so a scan of made-up ids cannot grow the metrics without bound; a path no route
matched counts as ``unmatched``.
"""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any, Literal

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse
from pydantic import BaseModel
from sqlalchemy.exc import SQLAlchemyError
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sync.api.deps import RuntimeDep
from sync.api.problems import responses
from sync.api.runtime import Runtime
from sync.api.security import Read
from sync.storage.outbox import SETTLED_COUNTS_MAX_AGE_S

PROMETHEUS_TEXT = "text/plain; version=0.0.4; charset=utf-8"
UNMATCHED = "unmatched"

router = APIRouter(tags=["monitoring"])


class RequestCounts:
    """Requests answered, by (method, route template, status); safe across threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: Counter[tuple[str, str, int]] = Counter()

    def add(self, method: str, route: str, status: int) -> None:
        with self._lock:
            self._counts[(method, route, status)] += 1

    def snapshot(self) -> dict[tuple[str, str, int], int]:
        with self._lock:
            return dict(self._counts)


class CountRequests:
    """ASGI middleware feeding :class:`RequestCounts`; an exception counts as a 500."""

    def __init__(self, app: ASGIApp, counts: RequestCounts) -> None:
        self.app = app
        self.counts = counts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500

        async def recording_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, recording_send)
        finally:
            # The router records the matched route in the scope it was handed (this one).
            route = getattr(scope.get("route"), "path", None) or UNMATCHED
            self.counts.add(scope.get("method", "?"), route, status)


def install(app: FastAPI) -> None:
    counts = RequestCounts()
    app.state.request_counts = counts
    app.add_middleware(CountRequests, counts=counts)


# --- health -----------------------------------------------------------------------------------


class StoreHealth(BaseModel):
    reachable: bool
    detail: str | None = None


class Health(BaseModel):
    status: Literal["ok", "unavailable"]
    ccb: StoreHealth
    mdm: StoreHealth


def _probe(check: Any) -> StoreHealth:
    try:
        check()
    except (SQLAlchemyError, OSError) as error:
        # The driver's first line says what failed (host, file) without the statement.
        text = str(getattr(error, "orig", None) or error).strip().splitlines()
        return StoreHealth(reachable=False, detail=text[0] if text else type(error).__name__)
    return StoreHealth(reachable=True)


def health_of(runtime: Runtime) -> Health:
    ccb = _probe(lambda: runtime.ccb.read(lambda view: view.connection.exec_driver_sql(
        "SELECT 1")))
    mdm = _probe(lambda: runtime.mdm.ping())
    ok = ccb.reachable and mdm.reachable
    return Health(status="ok" if ok else "unavailable", ccb=ccb, mdm=mdm)


@router.get("/health", summary="Whether the CCB and MDM stores are reachable (200 / 503)",
            responses={503: {"model": Health, "description": "a store is unreachable"}})
def health(runtime: RuntimeDep) -> JSONResponse:
    found = health_of(runtime)
    return JSONResponse(found.model_dump(mode="json"),
                        status_code=200 if found.status == "ok" else 503)


# --- metrics ----------------------------------------------------------------------------------


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def prometheus_text(requests: dict[tuple[str, str, int], int],
                    sync_requests: dict[str, int]) -> str:
    lines = ["# HELP c2m_sync_http_requests_total HTTP requests answered, by method, route "
             "template and status.",
             "# TYPE c2m_sync_http_requests_total counter"]
    for (method, route, status), count in sorted(requests.items()):
        lines.append(f'c2m_sync_http_requests_total{{method="{_label(method)}",'
                     f'route="{_label(route)}",status="{status}"}} {count}')
    lines += ["# HELP c2m_sync_sync_requests Sync requests in the CCB outbox, by state.",
              "# TYPE c2m_sync_sync_requests gauge"]
    for state, count in sorted(sync_requests.items()):
        lines.append(f'c2m_sync_sync_requests{{state="{_label(state)}"}} {count}')
    return "\n".join(lines) + "\n"


@router.get("/metrics", dependencies=[Read], response_class=PlainTextResponse,
            responses={200: {"content": {PROMETHEUS_TEXT: {"schema": {"type": "string"}}},
                             "description": "Prometheus text exposition format"},
                       **responses(401)},
            summary="Prometheus metrics: requests by route and status, sync requests by state")
def metrics(request: Request, runtime: RuntimeDep) -> PlainTextResponse:
    counts: RequestCounts = request.app.state.request_counts
    text = prometheus_text(counts.snapshot(), runtime.outbox.counts(
        settled_max_age_s=SETTLED_COUNTS_MAX_AGE_S))
    return PlainTextResponse(text, media_type=PROMETHEUS_TEXT)
