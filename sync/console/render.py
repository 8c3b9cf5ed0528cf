"""Rendering console pages: the Jinja2 templates, what every page gets (the signed-in user,
the CSRF token, flash messages, the business date) and the refusal page.

Errors are turned into pages here and in the handlers, never by application-wide exception
handlers: the JSON API mounted on the same application answers its own errors in JSON.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from sync.api.runtime import Runtime
from sync.console.session import ConsoleSession, current_session

HERE = Path(__file__).parent
templates = Jinja2Templates(directory=str(HERE / "templates"))

# How often a page following a run under way (a resend, a reconciliation) reloads itself.
RUN_REFRESH_S = 2

NAVIGATION = (("/search", "Search"), ("/pending", "Pending start/stop"), ("/todos", "To Do"),
              ("/sync", "Sync monitor"), ("/reconcile", "Reconciliation"))


def runtime_of(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


def render(request: Request, template: str, context: dict[str, Any] | None = None,
           status_code: int = 200) -> HTMLResponse:
    runtime = runtime_of(request)
    session = current_session(request)
    page: dict[str, Any] = {
        "session": session,
        "user": session.user if session else None,
        "csrf": session.csrf if session else "",
        "flashes": session.take_flashes() if session else [],
        "business_date": runtime.clock.business_date(),
        "navigation": NAVIGATION,
        "path": request.url.path,
        "here": _here(request),
        "at": _local_time(runtime.admin.installation.base_time_zone),
    }
    page.update(context or {})
    return templates.TemplateResponse(request, template, page, status_code=status_code)


def _local_time(zone_name: str) -> Any:
    """Times as the installation reads them: stores may hand back UTC or local offsets."""
    zone = ZoneInfo(zone_name)

    def at(value: dt.datetime | None, seconds: bool = False) -> str:
        if value is None:
            return ""
        shown = value.astimezone(zone) if value.tzinfo is not None else value
        return shown.strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M")

    return at


def _here(request: Request) -> str:
    query = request.url.query
    return request.url.path + (f"?{query}" if query else "")


def refusal(request: Request, title: str, message: str, status_code: int) -> HTMLResponse:
    """A page naming what is wrong (unknown entity, bad filter, unreachable broker)."""
    return render(request, "refused.html", {"title": title, "message": message},
                  status_code=status_code)


def sign_in_redirect(request: Request) -> Response:
    return RedirectResponse(f"/signin?next={quote(_here(request), safe='')}", status_code=303)


def reader(request: Request) -> ConsoleSession | Response | None:
    """Who reads the page: the session, None when reads are open, or the redirect to sign in
    when the server's access policy closes reads."""
    session = current_session(request)
    if session is None and not runtime_of(request).access.open_reads:
        return sign_in_redirect(request)
    return session
