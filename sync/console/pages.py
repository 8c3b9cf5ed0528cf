"""Console pages (HTML, server-rendered): Control Central search, the account view with its
premise trees, a property's premise tree, the pending start/stop list, the To Do list, the sync
monitor and the reconciliation report. Writes are in :mod:`sync.console.actions`.

Every page reads the stores of the server's :class:`~sync.api.runtime.Runtime` directly, in one
read transaction, through the same domain functions the CLI uses.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from sync.api.runs import RunState
from sync.api.synchronization import resend_runs_of
from sync.ccb import todo
from sync.ccb.errors import CcbError, NotFound
from sync.ccb.model import ToDoEntry, ToDoStatus
from sync.ccb.search import SearchBy, search
from sync.ccb.sync_requests import SyncRequest, SyncRequestState
from sync.console import actions, reconciliation
from sync.console.render import HERE, RUN_REFRESH_S, refusal, render, runtime_of
from sync.console.render import reader as page_reader
from sync.console.session import SessionStore, current_session, local_path
from sync.console.views import account_view, pending_starts_and_stops, premise_tree_view
from sync.mdm.model import UsageSubscription
from sync.storage.ccb import CcbStoreError
from sync.storage.ccb_view import SqlCcbView
from sync.storage.outbox import SETTLED_COUNTS_MAX_AGE_S

router = APIRouter(include_in_schema=False)
SYNC_PAGE_SIZE = 100
# The newest requests of each state that needs attention on the sync monitor: after a wave of
# rejections or during a large batch there are hundreds of thousands, and the page must stay
# usable then (the counts say how many there are; the filter below lists them).
ATTENTION_PER_STATE = 50
ACTIVE_TODOS = "active"  # the To Do list's default: open and being worked
# The most urgent entries shown: after a wave of errors there are tens of thousands, and the
# page must stay usable then (the filters narrow it; the count says how many match).
TODO_PAGE_SIZE = 500
# Resends shown on the sync monitor (the newest, the one going among them).
RESENDS_SHOWN = 3
# The earliest pending starts and stops shown (a large move-in day, or a batch that created
# them by the hundred thousand, would otherwise be one page of every one).
PENDING_PAGE_SIZE = 500


def install(app: FastAPI) -> None:
    """Add the console's routes and static files to ``app``."""
    app.state.console_sessions = SessionStore()
    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="console-static")
    app.include_router(router)
    app.include_router(actions.router)
    app.include_router(reconciliation.router)


class FilterError(ValueError):
    """A query parameter the page cannot use; the message names it."""


def page(handler: Callable[..., Response]) -> Callable[..., Response]:
    """A read page: the access policy first; a refused read (unknown entity, bad filter) is a
    page naming what is wrong."""

    @functools.wraps(handler)
    def run(request: Request, *args: Any, **kwargs: Any) -> Response:
        who = page_reader(request)
        if isinstance(who, Response):
            return who
        try:
            return handler(request, *args, **kwargs)
        except NotFound as error:
            return refusal(request, "Not found", str(error), 404)
        except (CcbError, CcbStoreError, FilterError) as error:
            return refusal(request, "Refused", str(error), 400)

    return run


@router.get("/")
def home() -> Response:
    return RedirectResponse("/search", status_code=303)


@router.get("/signin")
def sign_in_page(request: Request, next: str = "/search") -> Response:
    return render(request, "signin.html", {"next": local_path(next, "/search"),
                                           "signed_in": current_session(request)})


@router.get("/search")
@page
def search_page(request: Request, by: str = "name", q: str = "") -> Response:
    runtime = runtime_of(request)
    try:
        criterion = SearchBy(by)
    except ValueError:
        raise FilterError(f"by: {by!r} is not a search criterion (one of "
                        f"{', '.join(item.value for item in SearchBy)})") from None
    result = None
    if q.strip():
        today = runtime.clock.business_date()
        result = runtime.ccb.read(lambda view: search(view, runtime.admin, criterion, q, today))
    return render(request, "search.html", {"by": criterion.value, "q": q, "result": result,
                                           "criteria": [item.value for item in SearchBy]})


@router.get("/accounts/{account_id}")
@page
def account_page(request: Request, account_id: str) -> Response:
    runtime = runtime_of(request)
    today = runtime.clock.business_date()
    found = runtime.ccb.read(lambda view: account_view(view, runtime.admin, account_id, today))
    return render(request, "account.html", {"view": found, "stop_date": today.isoformat()})


@router.get("/premises/{premise_id}")
@page
def premise_page(request: Request, premise_id: str) -> Response:
    runtime = runtime_of(request)
    today = runtime.clock.business_date()
    tree = runtime.ccb.read(lambda view: premise_tree_view(view, runtime.admin, premise_id,
                                                           today))
    return render(request, "premise.html", {"tree": tree})


@router.get("/pending")
@page
def pending_page(request: Request) -> Response:
    runtime = runtime_of(request)
    today = runtime.clock.business_date()
    rows, pending = runtime.ccb.read(lambda view: pending_starts_and_stops(
        view, runtime.admin, today, PENDING_PAGE_SIZE))
    return render(request, "pending.html", {"rows": rows, "pending": pending})


@router.get("/todos")
@page
def todo_page(request: Request, status: str = ACTIVE_TODOS, role: str = "",
              todo_type: str = "") -> Response:
    runtime = runtime_of(request)
    admin = runtime.admin
    wanted: ToDoStatus | None = None
    if status not in (ACTIVE_TODOS, "all"):
        try:
            wanted = ToDoStatus(status)
        except ValueError:
            raise FilterError(f"status: {status!r} is not a To Do status") from None
    if role and role not in admin.todo_roles:
        raise FilterError(f"role: {role!r} is not a To Do role (todo_roles)")
    if todo_type and todo_type not in admin.todo_types:
        raise FilterError(f"todo_type: {todo_type!r} is not a To Do type (todo_types)")

    def read(view: SqlCcbView) -> list[ToDoEntry]:
        return view.todos(role=role or None, todo_type=todo_type or None, status=wanted,
                          unfinished=status == ACTIVE_TODOS)

    entries = todo.list_todos(runtime.ccb.read(read), admin)
    return render(request, "todos.html", {
        "entries": entries[:TODO_PAGE_SIZE], "matching": len(entries),
        "status": status, "role": role, "todo_type": todo_type,
        "statuses": [ACTIVE_TODOS, "all", *(item.value for item in ToDoStatus)],
        "roles": sorted(admin.todo_roles), "todo_types": admin.todo_types})


@router.get("/sync")
@page
def sync_page(request: Request, state: str = "", entity: str = "") -> Response:
    runtime = runtime_of(request)
    outbox = runtime.outbox
    wanted: SyncRequestState | None = None
    if state:
        try:
            wanted = SyncRequestState(state)
        except ValueError:
            raise FilterError(f"state: {state!r} is not a sync request state (one of "
                            f"{', '.join(item.value for item in SyncRequestState)})") from None
    attention = [request for waiting in (SyncRequestState.ERROR, SyncRequestState.SENT,
                                         SyncRequestState.PENDING)
                 for request in outbox.find(state=waiting, newest_first=True,
                                            limit=ATTENTION_PER_STATE)]
    resends = resend_runs_of(request).newest_first()[:RESENDS_SHOWN]
    resending = any(run.state is RunState.RUNNING for run in resends)
    recent = outbox.find(state=wanted, entity_id=entity.strip() or None,
                         limit=SYNC_PAGE_SIZE, newest_first=True)
    return render(request, "sync.html", {
        "counts": outbox.counts(settled_max_age_s=SETTLED_COUNTS_MAX_AGE_S),
        "attention": attention, "recent": recent,
        "attention_per_state": ATTENTION_PER_STATE,
        "state": state, "entity": entity, "states": [item.value for item in SyncRequestState],
        "mdm": _mdm_state(request, [*attention, *recent]), "resends": resends,
        # While a resend goes the page follows it (every few seconds, like a monitor) and
        # offers no second one.
        "resending": resending, "refresh_s": RUN_REFRESH_S if resending else None})


def _mdm_state(request: Request, requests: list[SyncRequest]) -> dict[str, UsageSubscription]:
    """The usage subscription MDM holds for each SA among ``requests``."""
    mdm = runtime_of(request).mdm
    held = {}
    for entity_id in {r.entity_id for r in requests if r.entity_type == "SA"}:
        us = mdm.get_us(entity_id)
        if us is not None:
            held[entity_id] = us
    return held


@router.get("/sync/{request_id}")
@page
def sync_request_page(request: Request, request_id: str) -> Response:
    found = runtime_of(request).outbox.get(request_id)
    if found is None:
        raise NotFound("sync request", request_id, "request_id")
    return render(request, "sync_request.html", {
        "request_": found, "snapshot": _pretty(found.payload),
        "mdm": _mdm_state(request, [found])})


def _pretty(payload: bytes) -> str:
    text = payload.decode("utf-8", errors="replace")
    try:
        return json.dumps(json.loads(text), indent=2)
    except ValueError:
        return text  # shown as it is: the page is for looking, not for decoding
