"""Token authentication for every write (and every read under private reads), and errors as
problem details: 400, 401, 404, 405, 422 and 500."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from sync.api.app import create_app
from sync.api.runtime import AccessPolicy, Runtime
from sync.api.security import access_policy, parse_tokens, read_token_file, token_known
from tests.api.support import (
    ADMIN,
    AUTH,
    TOKEN,
    client_for,
    entity_change_count,
    post,
    problem,
    settings_for,
)


def operations(app: FastAPI, method: str) -> list[str]:
    """Every path of the API answering ``method``, path parameters filled with ``X-1``."""
    paths = app.openapi()["paths"]
    return sorted(re.sub(r"\{[^}]+\}", "X-1", path) for path, item in paths.items()
                  if method in item and path.startswith(("/api/", "/health", "/metrics")))


# The app is only asked for its OpenAPI document: no store is opened.
WRITES = operations(create_app(Runtime(settings_for("sqlite://", "sqlite://"), ADMIN)), "post")
WRONG = {"Authorization": "Bearer not-the-token"}


def test_every_write_of_the_api_is_listed() -> None:
    assert len(WRITES) == 34
    assert "/api/batches/X-1/runs/X-1/stop" in WRITES
    assert "/api/reconciliations/X-1/stop" in WRITES
    assert "/api/sync-requests/resend-errors/X-1/stop" in WRITES
    assert "/api/commands/request-stop" in WRITES
    assert "/api/sync-requests/X-1/resend" in WRITES
    assert "/api/sync-requests/resend-errors" in WRITES


@pytest.mark.parametrize("path", WRITES)
@pytest.mark.parametrize("headers", [{}, WRONG], ids=["no token", "wrong token"])
async def test_a_write_without_a_known_token_is_refused_and_changes_nothing(
        shared_client: httpx.AsyncClient, shared_runtime: Runtime, path: str,
        headers: dict[str, str]) -> None:
    before = entity_change_count(shared_runtime)
    response = await shared_client.post(path, json={"account_id": "A-TN-01", "user": "csr1",
                                             "stop_date": "2025-03-10"}, headers=headers)
    document = problem(response, 401, "unauthorized")
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert TOKEN not in response.text
    assert entity_change_count(shared_runtime) == before
    if headers:
        assert 'error="invalid_token"' in response.headers["www-authenticate"]
        assert "not one of the server's API tokens" in document["detail"]
    else:
        assert "need an Authorization: Bearer token" in document["detail"]


async def test_a_basic_credential_is_not_a_bearer_token(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/commands/stop", json={"sa_id": "SA-TN01-E",
                                                             "user": "csr1"},
                                 headers={"Authorization": f"Basic {TOKEN}"})
    problem(response, 401, "unauthorized")


async def test_a_server_without_tokens_refuses_every_write(runtime: Runtime) -> None:
    runtime.access = AccessPolicy(tokens=frozenset(), open_reads=True)
    async with client_for(create_app(runtime)) as client:
        response = await post(client, "/api/commands/stop", {"sa_id": "SA-TN01-E",
                                                             "user": "csr1"})
        assert (await client.get("/api/sas/SA-TN01-E")).status_code == 200
    assert "the server has no API tokens" in problem(response, 401, "unauthorized")["detail"]


@pytest.fixture
async def private_client(runtime: Runtime) -> Any:
    runtime.access = AccessPolicy(tokens=frozenset({TOKEN}), open_reads=False)
    async with client_for(create_app(runtime)) as client:
        yield client


async def test_under_private_reads_every_read_needs_a_token(
        private_client: httpx.AsyncClient, app: FastAPI) -> None:
    reads = [path for path in operations(app, "get") if path != "/health"]
    assert "/metrics" in reads
    assert "/api/search" in reads
    for path in reads:
        response = await private_client.get(path)
        problem(response, 401, "unauthorized")
        wrong = await private_client.get(path, headers=WRONG)
        problem(wrong, 401, "unauthorized")
        allowed = await private_client.get(path, headers=AUTH)
        assert allowed.status_code != 401, path


async def test_under_private_reads_health_stays_open_for_probes(
        private_client: httpx.AsyncClient) -> None:
    assert (await private_client.get("/health")).status_code == 200


async def test_under_private_reads_a_token_reads(private_client: httpx.AsyncClient) -> None:
    response = await private_client.get("/api/accounts/A-TN-01", headers=AUTH)
    assert response.status_code == 200
    assert response.json()["account"]["id"] == "A-TN-01"


async def test_open_reads_need_no_token(client: httpx.AsyncClient) -> None:
    assert (await client.get("/api/accounts/A-TN-01")).status_code == 200


# --- tokens -----------------------------------------------------------------------------------


def test_tokens_come_from_the_environment_and_the_token_file(tmp_path: Path) -> None:
    token_file = tmp_path / "tokens"
    token_file.write_text("# operators\nfile-token-1\n\n  file-token-2  \n", "utf-8")
    policy = access_policy({"C2M_SYNC_API_TOKENS": " env-a, env-b ,,"}, token_file)
    assert policy.tokens == {"env-a", "env-b", "file-token-1", "file-token-2"}
    assert policy.open_reads


@pytest.mark.parametrize("value", ["true", "1", "yes", "TRUE"])
def test_private_reads_from_the_environment(value: str) -> None:
    assert not access_policy({"C2M_SYNC_API_PRIVATE_READS": value}).open_reads


def test_private_reads_from_the_flag() -> None:
    assert not access_policy({}, private_reads=True).open_reads
    assert access_policy({"C2M_SYNC_API_PRIVATE_READS": "false"}).open_reads


def test_an_unreadable_token_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"missing: cannot read token file"):
        read_token_file(tmp_path / "missing")


def test_token_comparison() -> None:
    policy = AccessPolicy(tokens=parse_tokens("one,two", ","))
    assert token_known(policy, "two")
    assert not token_known(policy, "tw")
    assert not token_known(policy, "two ")
    assert not token_known(policy, "é")
    assert not token_known(AccessPolicy(), "")


# --- problem details --------------------------------------------------------------------------


async def test_a_body_that_is_not_json_is_a_400(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/commands/stop", content=b"{not json",
                                 headers={**AUTH, "Content-Type": "application/json"})
    document = problem(response, 400, "bad-request")
    assert "not valid JSON" in document["detail"]


async def test_validation_names_every_field_at_fault(client: httpx.AsyncClient) -> None:
    response = await post(client, "/api/commands/request-stop",
                          {"account_id": "A-TN-01", "stop_date": "2025-02-30", "colour": "red"})
    document = problem(response, 422, "validation")
    fields = {error["field"] for error in document["errors"]}
    assert fields == {"body.stop_date", "body.user", "body.colour"}
    assert "body.stop_date" in document["detail"]


async def test_an_unknown_path_is_a_404_problem(client: httpx.AsyncClient) -> None:
    document = problem(await client.get("/api/nothing-here"), 404, "not-found")
    assert document["detail"] == "no resource at /api/nothing-here"


async def test_a_wrong_method_is_a_405_problem(client: httpx.AsyncClient) -> None:
    response = await client.delete("/api/accounts/A-TN-01")
    assert response.status_code == 405
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["type"] == "urn:c2m-sync:problem:method-not-allowed"


async def test_an_unexpected_error_is_a_500_problem_without_internals(app: FastAPI) -> None:
    def broken() -> None:
        raise RuntimeError("secret internals")

    app.add_api_route("/api/broken", broken)
    async with client_for(app, raise_errors=False) as client:
        response = await client.get("/api/broken")
    document = problem(response, 500, "server-error")
    assert "secret internals" not in response.text
    assert document["title"] == "Internal server error"


# --- the OpenAPI document ---------------------------------------------------------------------


async def test_openapi_documents_the_bearer_scheme_and_who_needs_it(
        client: httpx.AsyncClient) -> None:
    document = (await client.get("/openapi.json")).json()
    assert document["components"]["securitySchemes"]["bearerAuth"] == {
        "type": "http", "scheme": "bearer", "description": document["components"][
            "securitySchemes"]["bearerAuth"]["description"]}
    paths = document["paths"]
    assert paths["/api/commands/request-stop"]["post"]["security"] == [{"bearerAuth": []}]
    # Open reads: a read may be made with or without the token.
    assert paths["/api/sas/{sa_id}"]["get"]["security"] == [{}, {"bearerAuth": []}]
    assert "security" not in paths["/health"]["get"]
    problem_ref = {"$ref": "#/components/schemas/Problem"}
    assert paths["/api/sas/{sa_id}"]["get"]["responses"]["404"]["content"][
        "application/problem+json"]["schema"] == problem_ref


async def test_openapi_under_private_reads_requires_the_token_for_reads(
        private_client: httpx.AsyncClient) -> None:
    paths = (await private_client.get("/openapi.json")).json()["paths"]
    assert paths["/api/sas/{sa_id}"]["get"]["security"] == [{"bearerAuth": []}]
