"""Property-based run of the whole API against its own OpenAPI document (schemathesis): with a
valid token, no generated request (valid or not) gets a server error.

The schema is read from the app when the module is imported (schemathesis parametrizes the
test per operation at collection); the app's stores are opened only by its first request, and
the fixture below loads the sample building into them before any test runs.
"""

from __future__ import annotations

import asyncio
import atexit
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.generation.case import Case

from sync.api.app import create_app
from sync.api.runtime import AccessPolicy, Runtime
from sync.ccb.loading import load_master_data, parse_text
from sync.pipeline.ccb_worker import ensure_topics
from sync.transport.bus import bus_for
from tests.api.support import ADMIN, AUTH, EXAMPLE, TOKEN, settings_for

# Bounded for suite time: every operation gets at most this many examples.
MAX_EXAMPLES = 12

FOLDER = Path(tempfile.mkdtemp(prefix="c2m-sync-fuzz-"))
atexit.register(shutil.rmtree, FOLDER, True)  # also when the test is collected but not run
RUNTIME = Runtime(settings_for(f"sqlite:///{FOLDER / 'ccb.db'}",
                               f"sqlite:///{FOLDER / 'mdm.db'}"),
                  ADMIN, AccessPolicy(tokens=frozenset({TOKEN})))
schema = schemathesis.openapi.from_asgi("/openapi.json", create_app(RUNTIME))


@pytest.fixture(scope="module", autouse=True)
def sample_building() -> Iterator[None]:
    RUNTIME.ccb.execute(load_master_data(parse_text(EXAMPLE.read_text("utf-8"), "example"),
                                         "example", ADMIN, RUNTIME.clock.now(), "loader"))

    async def create_topics() -> None:
        # Reconciliations replay the sync topic of the runtime's in-process bus.
        bus = bus_for(RUNTIME.settings.broker_url)
        await bus.start()
        await ensure_topics(bus, RUNTIME.settings)

    asyncio.run(create_topics())
    try:
        yield
    finally:
        RUNTIME.close()


@schema.parametrize()
@settings(max_examples=MAX_EXAMPLES, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
def test_no_request_gets_a_server_error(case: Case) -> None:
    case.call_and_validate(headers=AUTH, checks=[not_a_server_error])
