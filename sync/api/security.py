"""Token authentication: ``Authorization: Bearer <token>``.

Every write needs a token the server knows; reads need one too when the server runs with
private reads. Tokens come from ``C2M_SYNC_API_TOKENS`` (comma-separated) and from a token
file (one per line, ``#`` comments); they are compared with :func:`hmac.compare_digest` and
never logged or echoed. A server without tokens refuses every write.
"""

from __future__ import annotations

import hmac
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from sync.api.problems import ProblemError
from sync.api.runtime import AccessPolicy, Runtime

TOKENS_ENV = "C2M_SYNC_API_TOKENS"
PRIVATE_READS_ENV = "C2M_SYNC_API_PRIVATE_READS"
SCHEME_NAME = "bearerAuth"

bearer = HTTPBearer(auto_error=False, scheme_name=SCHEME_NAME,
                    description="An API token of the server (C2M_SYNC_API_TOKENS or "
                                "--token-file). Required for every write; for reads only "
                                "when the server runs with private reads.")


class TokenFileError(ValueError):
    """The token file cannot be read; names the file."""


def parse_tokens(text: str, separator: str | None = None) -> frozenset[str]:
    """Tokens of ``text``: split on ``separator`` (lines when None), blanks and ``#``
    comment lines dropped, surrounding spaces stripped."""
    parts: Iterable[str] = text.split(separator) if separator else text.splitlines()
    return frozenset(token for token in (part.strip() for part in parts)
                     if token and not token.startswith("#"))


def read_token_file(path: Path) -> frozenset[str]:
    try:
        return parse_tokens(path.read_text("utf-8"))
    except (OSError, UnicodeDecodeError) as error:
        reason = getattr(error, "strerror", None) or str(error)
        raise TokenFileError(f"{path}: cannot read token file: {reason}") from None


def truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in {"1", "true", "yes", "on"}


def access_policy(environ: Mapping[str, str] | None = None, token_file: Path | None = None,
                  private_reads: bool = False) -> AccessPolicy:
    """The policy from the environment, the token file and the ``--private-reads`` flag."""
    env = os.environ if environ is None else environ
    tokens = parse_tokens(env.get(TOKENS_ENV, ""), ",")
    if token_file is not None:
        tokens |= read_token_file(token_file)
    private = private_reads or truthy(env.get(PRIVATE_READS_ENV))
    return AccessPolicy(tokens=tokens, open_reads=not private)


def token_known(policy: AccessPolicy, presented: str) -> bool:
    """Whether ``presented`` is one of the policy's tokens; every token is compared, in
    constant time each, so the answer's timing says nothing about which one matched."""
    given = presented.encode("utf-8")
    matched = False
    for token in policy.tokens:
        matched |= hmac.compare_digest(token.encode("utf-8"), given)
    return matched


def _challenge(error: str | None = None) -> dict[str, str]:
    value = 'Bearer realm="c2m-sync"'
    if error:
        value += f', error="{error}"'
    return {"WWW-Authenticate": value}


def _check(policy: AccessPolicy, credentials: HTTPAuthorizationCredentials | None,
           what: str) -> None:
    if credentials is None:
        raise ProblemError("unauthorized", f"{what} need an Authorization: Bearer token",
                         headers=_challenge())
    if not policy.tokens:
        raise ProblemError("unauthorized", f"{what} are refused: the server has no API tokens "
                         f"({TOKENS_ENV} or --token-file)", headers=_challenge("invalid_token"))
    if not token_known(policy, credentials.credentials):
        raise ProblemError("unauthorized", "the bearer token is not one of the server's API "
                         "tokens", headers=_challenge("invalid_token"))


Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]


def _runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


def require_write(request: Request, credentials: Credentials) -> None:
    """Dependency of every write: a known token."""
    _check(_runtime(request).access, credentials, "writes")


def require_read(request: Request, credentials: Credentials) -> None:
    """Dependency of every read: a known token under private reads, else nothing."""
    policy = _runtime(request).access
    if not policy.open_reads:
        _check(policy, credentials, "reads")


Write = Depends(require_write)
Read = Depends(require_read)
