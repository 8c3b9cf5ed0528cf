"""Helpers of the API tests: authorized calls, problem checks, and CCB states the sample
building does not start in (a sync request in ERROR, a To Do)."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI

from sync.api.runtime import AccessPolicy, Runtime
from sync.ccb.loading import load_master_data, parse_text
from sync.ccb.sync_requests import QueuedRequest, SyncRequest
from sync.config.admin import load_admin_config
from sync.config.settings import Settings, TopicNames
from sync.mapping.messages import AckError, Acknowledgement, AckOutcome, EntityType
from sync.storage.outbox import SqlOutbox

EXAMPLE = Path(__file__).parents[2] / "examples" / "premise-landlord.yaml"
ADMIN = load_admin_config()
TODAY = dt.date(2025, 3, 3)
TOKEN = "api-test-token-7f3a"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def settings_for(ccb_url: str, mdm_url: str, business_date: dt.date = TODAY) -> Settings:
    """Stores at the URLs and an in-process bus with topic names of this test's own."""
    suffix = uuid.uuid4().hex[:10]
    return Settings(ccb_db_url=ccb_url, mdm_db_url=mdm_url, business_date=business_date,
                    broker_url=f"memory://api-{suffix}",
                    topics=TopicNames(sync_requests=f"api-sync-{suffix}",
                                      acknowledgements=f"api-acks-{suffix}",
                                      dead_letters=f"api-dlq-{suffix}"))


def loaded_runtime(settings: Settings, *, open_reads: bool = True,
                   tokens: tuple[str, ...] = (TOKEN,)) -> Runtime:
    runtime = Runtime(settings, ADMIN, AccessPolicy(frozenset(tokens), open_reads))
    runtime.ccb.execute(load_master_data(parse_text(EXAMPLE.read_text("utf-8"), "example"),
                                         "example", ADMIN, runtime.clock.now(), "loader"))
    return runtime


def client_for(app: FastAPI, raise_errors: bool = True) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=raise_errors)
    return httpx.AsyncClient(transport=transport, base_url="http://api.test")


PROBLEM_JSON = "application/problem+json"
MC_ERROR = AckError(code="D2-VALUSMC", path="spLinks[0].spId",
                    message="SP SP-4410-1E has no direct measuring component of class kWh")


async def post(client: httpx.AsyncClient, path: str, body: dict[str, Any] | None = None,
               ) -> httpx.Response:
    return await client.post(path, json=body, headers=AUTH)


def problem(response: httpx.Response, status: int, kind: str) -> dict[str, Any]:
    """The problem document of ``response``, checked to be a ``kind`` problem."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM_JSON)
    document: dict[str, Any] = response.json()
    assert document["type"] == f"urn:c2m-sync:problem:{kind}"
    assert document["status"] == status
    assert document["instance"] == response.request.url.path
    return document


def fail_sync_request(runtime: Runtime, entity_id: str) -> SyncRequest:
    """Send every pending request and have MDM reject ``entity_id``'s: it is in ERROR, with a
    sync error To Do (what an MDM validation failure leaves behind)."""
    outbox, now = runtime.outbox, runtime.clock.now()
    sent = send_pending(outbox, now)
    [request] = [r for r in sent if r.entity_id == entity_id and r.entity_type == "SA"]
    reject(outbox, [request], now)
    return request


def send_pending(outbox: SqlOutbox, now: dt.datetime) -> list[QueuedRequest]:
    """Every pending request marked sent (as the relay does once the broker has them)."""
    sent = outbox.next_batch(1_000_000)
    outbox.mark_sent([(request, 0, n) for n, request in enumerate(sent)], now)
    return sent


def reject(outbox: SqlOutbox, sent: Sequence[QueuedRequest], now: dt.datetime) -> None:
    """MDM's rejection of each sent request (a D2 validation error): each goes to ERROR with
    its sync error To Do."""
    outbox.acknowledge([Acknowledgement(
        sync_request_id=request.id, entity_type=EntityType(request.entity_type),
        entity_id=request.entity_id, version=request.version, outcome=AckOutcome.ERROR,
        errors=(MC_ERROR,), mdm_us_id=request.entity_id,
        processed_at=dt.datetime(2025, 3, 3, 12, 1, tzinfo=dt.UTC)) for request in sent], now)


def entity_change_count(runtime: Runtime) -> int:
    return len(runtime.ccb.entity_changes(limit=1_000_000))
