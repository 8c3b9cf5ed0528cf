"""Errors as RFC 9457 problem details (``application/problem+json``).

Every error the API answers is one :class:`Problem`: ``type`` (a URN naming the kind of
problem), ``title`` (the same for every problem of that type), ``status``, ``detail`` (what is
wrong here, in the domain's words: the entity, its id and the field), ``instance`` (the request
path) and, for rejected input, ``errors`` (one entry per field at fault).

How domain errors map (see docs/api.md):

* unknown id (:class:`~sync.ccb.errors.NotFound`) -> 404;
* a transition the SA lifecycle does not allow, a concurrent update, a refused write, CCB data
  that cannot be synchronized -> 409 (the request was fine; the state is in the way);
* a command whose input is wrong for the entity it names
  (:class:`~sync.ccb.errors.InvalidCommand`, a batch asked for what it cannot do) -> 422;
* request validation -> 422 naming each field; a body that is not JSON at all -> 400; a value
  the database cannot store (text the API's own checks let through) -> 422;
* anything unexpected -> 500 without internals (the traceback goes to the server log).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy.exc import DataError
from starlette.exceptions import HTTPException as StarletteHTTPException

from sync.batches import BatchBusyError, BatchLockLostError, BatchUsageError
from sync.ccb.errors import (
    CcbError,
    ConcurrentUpdateError,
    InvalidCommand,
    InvalidTransition,
    NotFound,
)
from sync.mapping.snapshots import SnapshotError
from sync.storage.ccb import CcbStoreError

PROBLEM_JSON = "application/problem+json"
_URN = "urn:c2m-sync:problem:"
log = logging.getLogger("sync.api")


class FieldProblem(BaseModel):
    """One field at fault: where it is (``body.stop_date``, ``query.limit``) and why."""

    field: str
    message: str


class Problem(BaseModel):
    type: str = Field(description="URN of the kind of problem, e.g. "
                                  "urn:c2m-sync:problem:not-found")
    title: str
    status: int
    detail: str | None = None
    instance: str | None = None
    errors: list[FieldProblem] | None = Field(
        default=None, description="the fields at fault (validation problems only)")


class ProblemError(Exception):
    """Raised by route code to answer with a problem of ``kind`` (a key of :data:`KINDS`)."""

    def __init__(self, kind: str, detail: str, headers: dict[str, str] | None = None,
                 errors: Sequence[FieldProblem] | None = None) -> None:
        super().__init__(detail)
        self.kind = kind
        self.detail = detail
        self.headers = headers
        self.errors = list(errors) if errors is not None else None


# kind -> (status, title)
KINDS: dict[str, tuple[int, str]] = {
    "bad-request": (400, "Malformed request"),
    "unauthorized": (401, "Authentication required"),
    "not-found": (404, "Not found"),
    "method-not-allowed": (405, "Method not allowed"),
    "invalid-transition": (409, "Not allowed in the current status"),
    "concurrent-update": (409, "Changed concurrently"),
    "refused": (409, "Refused by the store"),
    "not-synchronizable": (409, "Cannot be synchronized"),
    "conflict": (409, "Conflict"),
    "invalid-command": (422, "Invalid command"),
    "invalid-value": (422, "Value refused by the database"),
    "validation": (422, "Invalid request"),
    "unavailable": (503, "Service unavailable"),
    "server-error": (500, "Internal server error"),
}

_HTTP_KINDS = {400: "bad-request", 401: "unauthorized", 404: "not-found",
               405: "method-not-allowed", 409: "conflict", 422: "validation",
               503: "unavailable"}


def problem_response(request: Request, kind: str, detail: str | None,
                     headers: Mapping[str, str] | None = None,
                     errors: Sequence[FieldProblem] | None = None,
                     status: int | None = None) -> JSONResponse:
    code, title = KINDS.get(kind, (status or 500, HTTPStatus(status or 500).phrase))
    problem = Problem(type=_URN + kind, title=title, status=status or code, detail=detail,
                      instance=request.url.path,
                      errors=list(errors) if errors is not None else None)
    return JSONResponse(problem.model_dump(mode="json", exclude_none=True),
                        status_code=problem.status, headers=headers, media_type=PROBLEM_JSON)


def _field(location: Sequence[Any]) -> str:
    return ".".join(str(part) for part in location)


def validation_problems(errors: Sequence[Any]) -> list[FieldProblem]:
    return [FieldProblem(field=_field(error.get("loc", ())), message=str(error.get("msg", "")))
            for error in errors]


def domain_kind(error: Exception) -> str:
    """The problem kind of a domain or store error."""
    if isinstance(error, NotFound):
        return "not-found"
    if isinstance(error, InvalidTransition):
        return "invalid-transition"
    if isinstance(error, ConcurrentUpdateError):
        return "concurrent-update"
    if isinstance(error, BatchBusyError | BatchLockLostError):
        return "conflict"
    if isinstance(error, InvalidCommand | BatchUsageError):
        return "invalid-command"
    if isinstance(error, CcbStoreError):
        return "refused"
    if isinstance(error, SnapshotError):
        return "not-synchronizable"
    if isinstance(error, DataError):
        return "invalid-value"
    # Any other CCB refusal is about the state the command met.
    return "conflict"


def install(app: FastAPI) -> None:
    """Answer every error of ``app`` as a problem."""

    async def on_problem(request: Request, error: Exception) -> JSONResponse:
        assert isinstance(error, ProblemError)
        return problem_response(request, error.kind, error.detail, error.headers, error.errors)

    async def on_http(request: Request, error: Exception) -> JSONResponse:
        assert isinstance(error, StarletteHTTPException)
        kind = _HTTP_KINDS.get(error.status_code, "")
        detail = error.detail if isinstance(error.detail, str) else HTTPStatus(
            error.status_code).phrase
        if error.status_code == 404 and detail == "Not Found":
            detail = f"no resource at {request.url.path}"
        return problem_response(request, kind, detail, error.headers,
                                status=error.status_code)

    async def on_validation(request: Request, error: Exception) -> JSONResponse:
        assert isinstance(error, RequestValidationError)
        problems = validation_problems(error.errors())
        if any(item.get("type") == "json_invalid" for item in error.errors()):
            return problem_response(request, "bad-request", "the request body is not valid "
                                    "JSON: " + "; ".join(p.message for p in problems),
                                    errors=problems)
        detail = "; ".join(f"{p.field}: {p.message}" for p in problems)
        return problem_response(request, "validation", detail, errors=problems)

    async def on_domain(request: Request, error: Exception) -> JSONResponse:
        # A driver error's text carries the statement and its parameters: only its first line.
        detail = (str(error.orig).strip().splitlines() or ["refused"])[0] \
            if isinstance(error, DataError) else str(error)
        return problem_response(request, domain_kind(error), detail)

    async def on_unexpected(request: Request, error: Exception) -> JSONResponse:
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return problem_response(request, "server-error",
                                "the server met an unexpected error; it is logged")

    app.add_exception_handler(ProblemError, on_problem)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(RequestValidationError, on_validation)
    for domain_error in (CcbError, CcbStoreError, BatchUsageError, BatchBusyError,
                         BatchLockLostError, SnapshotError, DataError):
        app.add_exception_handler(domain_error, on_domain)
    app.add_exception_handler(Exception, on_unexpected)


def responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for the problem statuses an operation may answer."""
    return {status: {"model": Problem, "description": HTTPStatus(status).phrase,
                     "content": {PROBLEM_JSON: {"schema": {"$ref":
                                                           "#/components/schemas/Problem"}}}}
            for status in statuses}
