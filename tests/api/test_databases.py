"""A few reads and writes of the API on each supported database (SQLite and a real
PostgreSQL): the same answers, the write in one unit of work with its sync request."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from sync.api.app import create_app
from sync.api.runtime import Runtime
from tests.api.support import client_for, loaded_runtime, post, problem, settings_for


@pytest.fixture
async def db_client(database_url: str) -> AsyncIterator[tuple[httpx.AsyncClient, Runtime]]:
    runtime = loaded_runtime(settings_for(database_url, database_url))
    try:
        async with client_for(create_app(runtime)) as client:
            yield client, runtime
    finally:
        runtime.close()


async def test_reads_and_a_stop_on_each_database(
        db_client: tuple[httpx.AsyncClient, Runtime]) -> None:
    client, runtime = db_client
    search = (await client.get("/api/search", params={"by": "name", "q": "brennan"})).json()
    assert [hit["person_id"] for hit in search["hits"]] == ["P-LL-01"]
    stopped = await post(client, "/api/commands/request-stop", {
        "account_id": "A-TN-02", "stop_date": "2025-03-10", "sa_ids": ["SA-TN02-E"],
        "user": "csr1"})
    assert stopped.status_code == 200, stopped.text
    assert stopped.json()["sas"]["SA-TN02-E"]["status"] == "30"
    details = (await client.get("/api/sas/SA-TN02-E")).json()
    assert details["sa"]["end_date"] == "2025-03-10"
    assert details["sync_requests"][0]["state"] == "PENDING"
    assert details["sync_requests"][0]["version"] == 2  # refreshed by the stop (accumulative)
    assert (await client.get("/health")).json()["status"] == "ok"
    assert runtime.outbox.counts()["PENDING"] >= 1


async def test_refusals_on_each_database(db_client: tuple[httpx.AsyncClient, Runtime]) -> None:
    client, _runtime = db_client
    problem(await client.get("/api/accounts/A-404"), 404, "not-found")
    response = await post(client, "/api/commands/cancel-start",
                          {"sa_id": "SA-TN02-E", "user": "csr1"})
    problem(response, 409, "invalid-transition")
    # NUL cannot be stored as text on PostgreSQL: the API refuses it before the database.
    response = await post(client, "/api/persons/P-TN-02/contacts",
                          {"contact_type": "INQUIRY", "comments": "a\u0000b", "user": "csr1"})
    assert problem(response, 422, "validation")["errors"][0]["field"] == "body.comments"
