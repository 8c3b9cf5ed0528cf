"""Console pages (HTML, server-rendered)."""

from __future__ import annotations

from fastapi import FastAPI


def install(app: FastAPI) -> None:
    """Add the console's routes and static files to ``app``."""
