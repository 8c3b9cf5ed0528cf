"""A server on the sample building: a runtime over fresh stores loaded with
``examples/premise-landlord.yaml``, and an httpx client driving the ASGI app in process."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from sync.api.app import create_app
from sync.api.runtime import Runtime
from sync.config.settings import Settings
from tests.api.support import client_for, loaded_runtime, settings_for


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return settings_for(f"sqlite:///{tmp_path / 'ccb.db'}", f"sqlite:///{tmp_path / 'mdm.db'}")


@pytest.fixture
def runtime(settings: Settings) -> Iterator[Runtime]:
    runtime = loaded_runtime(settings)
    try:
        yield runtime
    finally:
        runtime.close()


@pytest.fixture
def app(runtime: Runtime) -> FastAPI:
    return create_app(runtime)


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(app) as client:
        yield client


@pytest.fixture(scope="module")
def shared_runtime(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runtime]:
    """One loaded runtime for a module's tests that change nothing (reads, refusals)."""
    folder = tmp_path_factory.mktemp("api")
    runtime = loaded_runtime(settings_for(f"sqlite:///{folder / 'ccb.db'}",
                                          f"sqlite:///{folder / 'mdm.db'}"))
    try:
        yield runtime
    finally:
        runtime.close()


@pytest.fixture(scope="module")
def shared_app(shared_runtime: Runtime) -> FastAPI:
    return create_app(shared_runtime)


@pytest.fixture
async def shared_client(shared_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(shared_app) as client:
        yield client
