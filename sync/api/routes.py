"""JSON endpoints under ``/api``."""

from __future__ import annotations

from fastapi import FastAPI


def install(app: FastAPI) -> None:
    """Add the API's routers and error handlers to ``app``."""
