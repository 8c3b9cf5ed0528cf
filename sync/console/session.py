"""Who is signed in to the console, their CSRF token and their flash messages.

A sign-in takes a user name and one of the server's access tokens (``Runtime.access.tokens``,
compared with :func:`hmac.compare_digest`). The browser then holds only a random session id in
an HttpOnly, SameSite=Strict cookie; the user, the CSRF token and pending flash messages stay in
the server's memory. Sessions therefore end when the server restarts, and a server run as
several processes needs sticky sessions: the console is meant to run as one process next to the
API (``c2m-sync serve``).
"""

from __future__ import annotations

import hmac
import re
import secrets
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

from fastapi import Request

COOKIE = "c2m_console_session"
LIFETIME_S = 8 * 3600  # one working day
USER_NAME = re.compile(r"[A-Za-z0-9._-]{1,64}")

FlashKind = Literal["ok", "error"]


@dataclass(frozen=True)
class Flash:
    kind: FlashKind
    text: str


@dataclass
class ConsoleSession:
    id: str
    user: str
    csrf: str
    expires_at: float
    flashes: list[Flash] = field(default_factory=list)

    def flash(self, kind: FlashKind, text: str) -> None:
        self.flashes.append(Flash(kind, text))

    def take_flashes(self) -> list[Flash]:
        shown, self.flashes = self.flashes, []
        return shown

    def csrf_matches(self, presented: str | None) -> bool:
        return presented is not None and hmac.compare_digest(
            presented.encode("utf-8"), self.csrf.encode("utf-8"))


class SignInRefused(ValueError):  # noqa: N818 - a refusal shown to the user, not a bug
    """Why a sign-in was refused (shown on the sign-in page)."""


def token_accepted(presented: str, tokens: Iterable[str]) -> bool:
    """Whether ``presented`` is one of ``tokens``; every token is compared in constant time."""
    wanted = presented.encode("utf-8")
    found = False
    for token in tokens:
        found |= hmac.compare_digest(wanted, token.encode("utf-8"))
    return found


class SessionStore:
    """Signed-in console sessions of this server process."""

    def __init__(self, lifetime_s: float = LIFETIME_S) -> None:
        self.lifetime_s = lifetime_s
        self._sessions: dict[str, ConsoleSession] = {}
        self._lock = threading.Lock()

    def sign_in(self, user: str, token: str, tokens: frozenset[str]) -> ConsoleSession:
        user = user.strip()
        if not USER_NAME.fullmatch(user):
            raise SignInRefused("user: enter your user name (letters, digits, '.', '_', '-';"
                                " at most 64)")
        if not tokens:
            raise SignInRefused("this server has no access tokens configured: the console is"
                                " read-only")
        if not token_accepted(token, tokens):
            raise SignInRefused("token: not an access token of this server")
        session = ConsoleSession(id=secrets.token_urlsafe(32), user=user,
                                 csrf=secrets.token_urlsafe(32),
                                 expires_at=time.monotonic() + self.lifetime_s)
        with self._lock:
            self._drop_expired()
            self._sessions[session.id] = session
        return session

    def get(self, session_id: str | None) -> ConsoleSession | None:
        if not session_id:
            return None
        with self._lock:
            session = self._sessions.get(session_id)
            if session is not None and session.expires_at <= time.monotonic():
                del self._sessions[session_id]
                return None
            return session

    def sign_out(self, session_id: str | None) -> None:
        with self._lock:
            self._sessions.pop(session_id or "", None)

    def _drop_expired(self) -> None:
        now = time.monotonic()
        for expired in [key for key, s in self._sessions.items() if s.expires_at <= now]:
            del self._sessions[expired]


def sessions_of(request: Request) -> SessionStore:
    store: SessionStore = request.app.state.console_sessions
    return store


def current_session(request: Request) -> ConsoleSession | None:
    return sessions_of(request).get(request.cookies.get(COOKIE))


def local_path(target: str | None, default: str = "/") -> str:
    """``target`` when it is a path on this server, else ``default`` (no open redirects)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return default
    return target
