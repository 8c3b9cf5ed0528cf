"""Console writes: sign-in and sign-out, request stop and cancel stop, To Do take / log /
complete (steps 6.1–6.4), resending a sync request in error, and every one in error (a run the
sync monitor follows).

Every write is an HTML form POST answered by a redirect (POST-redirect-GET). It needs a signed-in
operator and the session's CSRF token; the outcome, success or the refusal naming what is wrong,
is a flash message on the page the form came from. A refused write changes nothing: the domain
command runs as one unit of work that is rolled back when it raises.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData

from sync.api.problems import ProblemError
from sync.api.runs import RunConflictError, Runs
from sync.api.runtime import Runtime
from sync.api.synchronization import RESEND_ERRORS, resend_runs_of, resend_work
from sync.ccb import commands as cmd
from sync.ccb import todo
from sync.ccb.changes import Changes
from sync.ccb.dispatch import unit_of_work
from sync.ccb.errors import CcbError
from sync.ccb.model import Address
from sync.ccb.ports import CcbView, IdSource
from sync.console.render import render, runtime_of
from sync.console.session import (
    COOKIE,
    LIFETIME_S,
    SignInRefused,
    current_session,
    local_path,
    sessions_of,
)
from sync.mapping.snapshots import SnapshotError
from sync.storage.ccb import CcbStoreError

router = APIRouter(include_in_schema=False)

Write = Callable[[Runtime, str, FormData], str]
"""A write: the runtime, the signed-in user and the form; returns what to tell the user."""


class FormError(ValueError):
    """A form field the console cannot use; the message names the field."""


def _text(form: FormData, name: str) -> str:
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


def redirect(target: str) -> Response:
    return RedirectResponse(target, status_code=303)


async def perform(request: Request, back_default: str, write: Write) -> Response:
    form = await request.form()
    back = local_path(_text(form, "back"), back_default)
    session = current_session(request)
    if session is None:
        return redirect(f"/signin?next={quote(back, safe='')}&why=write")
    if not session.csrf_matches(_text(form, "csrf") or None):
        session.flash("error", "this form did not come from your console session (CSRF token"
                               " missing or stale): nothing was changed; please try again")
        return redirect(back)
    try:
        message = await run_in_threadpool(write, runtime_of(request), session.user, form)
    except (CcbError, CcbStoreError, SnapshotError, FormError) as error:
        session.flash("error", str(error))
    else:
        session.flash("ok", message)
    return redirect(back)


def _execute(runtime: Runtime, unit: Callable[[CcbView, IdSource], Changes]) -> str:
    changes = runtime.ccb.execute(unit)
    return "; ".join(changes.notes) or "nothing to change"


def _command(runtime: Runtime, command: cmd.Command) -> str:
    clock = runtime.clock
    return _execute(runtime, unit_of_work(command, runtime.admin, clock.business_date(),
                                          clock.now()))


# --- signing in and out ------------------------------------------------------------------------


@router.post("/signin")
async def sign_in(request: Request) -> Response:
    form = await request.form()
    target = local_path(_text(form, "next"), "/search")
    tokens = runtime_of(request).access.tokens
    try:
        session = sessions_of(request).sign_in(_text(form, "user"), _text(form, "token"),
                                                tokens)
    except SignInRefused as error:
        return render(request, "signin.html", {"next": target, "error": str(error),
                                               "user_name": _text(form, "user")},
                      status_code=401)
    response = redirect(target)
    response.set_cookie(COOKIE, session.id, max_age=int(LIFETIME_S), httponly=True,
                        samesite="strict", path="/")
    return response


@router.post("/signout")
async def sign_out(request: Request) -> Response:
    form = await request.form()
    session = current_session(request)
    if session is not None and session.csrf_matches(_text(form, "csrf") or None):
        sessions_of(request).sign_out(session.id)
    response = redirect("/search")
    response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict")
    return response


# --- request stop (steps 1.1-1.9) and cancel stop (5.4-5.6) ------------------------------------


def _date(form: FormData, name: str, label: str) -> dt.date:
    text = _text(form, name)
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise FormError(f"{label}: {text!r} is not a date (YYYY-MM-DD)") from None


def _forwarding_address(form: FormData) -> Address | None:
    parts = {name: _text(form, f"forward_{name}")
             for name in ("line1", "line2", "city", "state", "postal_code")}
    if not any(parts.values()):
        return None
    missing = [name.replace("_", " ") for name in ("line1", "city", "state", "postal_code")
               if not parts[name]]
    if missing:
        raise FormError("forwarding address: missing " + ", ".join(missing))
    return Address(**{key: value for key, value in parts.items() if value})


@router.post("/accounts/{account_id}/request-stop")
async def request_stop(request: Request, account_id: str) -> Response:
    def write(runtime: Runtime, user: str, form: FormData) -> str:
        sa_ids = tuple(value.strip() for value in form.getlist("sa")
                       if isinstance(value, str) and value.strip())
        if not sa_ids:
            raise FormError(f"request stop of account {account_id}: choose at least one SA")
        return _command(runtime, cmd.RequestStop(
            account_id=account_id, stop_date=_date(form, "stop_date", "stop date"),
            sa_ids=sa_ids, forwarding_address=_forwarding_address(form),
            contact_method=_text(form, "method") or "phone", user=user))

    return await perform(request, f"/accounts/{quote(account_id)}", write)


@router.post("/accounts/{account_id}/cancel-stop")
async def cancel_stop(request: Request, account_id: str) -> Response:
    def write(runtime: Runtime, user: str, form: FormData) -> str:
        sa_id = _text(form, "sa")
        if not sa_id:
            raise FormError("cancel stop: no SA given")
        return _command(runtime, cmd.CancelPendingStop(sa_id=sa_id, user=user))

    return await perform(request, f"/accounts/{quote(account_id)}", write)


# --- To Do work (steps 6.1-6.4) ----------------------------------------------------------------


@router.post("/todos/{todo_id}/take")
async def take(request: Request, todo_id: str) -> Response:
    return await perform(request, "/todos", lambda runtime, user, _form: _execute(
        runtime, lambda view, _ids: todo.take_todo(view, runtime.admin, todo_id, user,
                                                   runtime.clock.now())))


@router.post("/todos/{todo_id}/log")
async def log(request: Request, todo_id: str) -> Response:
    return await perform(request, "/todos", lambda runtime, user, form: _execute(
        runtime, lambda view, _ids: todo.add_todo_log(view, runtime.admin, todo_id, user,
                                                      _text(form, "comment"),
                                                      runtime.clock.now())))


@router.post("/todos/{todo_id}/complete")
async def complete(request: Request, todo_id: str) -> Response:
    return await perform(request, "/todos", lambda runtime, user, form: _execute(
        runtime, lambda view, _ids: todo.complete_todo(view, runtime.admin, todo_id, user,
                                                       runtime.clock.now(),
                                                       _text(form, "comment") or None)))


# --- sync monitor --------------------------------------------------------------------------


@router.post("/sync/resend-errors")
async def resend_errors(request: Request) -> Response:
    """Every request in ERROR queued again, in a run of its own: after a wave of rejections
    that is tens of thousands of requests, a minute's work the page does not wait for. The
    sync monitor shows the run's progress, then its outcome; the API's resends are the same
    runs (one at a time on the server)."""

    def write(runtime: Runtime, _user: str, _form: FormData) -> str:
        try:
            run = resend_runs_of(request).start(RESEND_ERRORS, runtime.clock.now(),
                                                resend_work(runtime), runtime.clock.now)
        except RunConflictError as error:
            raise FormError(f"{error}: its progress is shown below") from None
        return (f"{run.id}: every request in ERROR is being queued again with the current "
                "data of its entity; its progress is shown below")

    return await perform(request, "/sync", write)


@router.post("/sync/resend-errors/{run_id}/stop")
async def stop_resend(request: Request, run_id: str) -> Response:
    return await perform(request, "/sync", lambda _runtime, _user, _form: stop_run(
        resend_runs_of(request), run_id, "resend",
        "stops after the chunk under way; resend again for the rest"))


def stop_run(runs: Runs[Any], run_id: str, what: str, when: str) -> str:
    """Ask the run ``run_id`` of ``runs`` (a ``what``) to stop; what to tell the operator, who
    is told ``when`` it stops."""
    run = runs.get(run_id)
    if run is None:
        raise FormError(f"no {what} {run_id} on this server (a restart forgets them)")
    try:
        run.ask_to_stop(what)
    except ProblemError as error:
        raise FormError(error.detail) from None
    return f"{run.id} {when}"


@router.post("/sync/{request_id}/resend")
async def resend(request: Request, request_id: str) -> Response:
    def write(runtime: Runtime, _user: str, _form: FormData) -> str:
        sent = runtime.outbox.resend(request_id, runtime.clock.now())
        return (f"sync request {sent.id} ({sent.key}) queued again as version {sent.version}"
                f" with the entity's current data")

    return await perform(request, "/sync", write)
