"""The console over HTTP without a browser: sign-in, CSRF, POST-redirect-GET writes and their
refusals, the premise tree and the read pages, on the sample building (in-process bus, no
workers: sync requests stay pending)."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine

from bench.saact_data import populate
from sync.api.app import create_app
from sync.api.runtime import AccessPolicy, Runtime
from sync.batches import JobContext, load_jobs
from sync.ccb.changes import Changes
from sync.ccb.model import DrillKey, SaStatus, ToDoStatus
from sync.ccb.ports import CcbView, IdSource
from sync.ccb.sync_requests import SyncRequestState
from sync.ccb.todo import raise_todo
from sync.config.settings import Settings
from sync.console.session import COOKIE
from sync.mapping.messages import AckError, Acknowledgement, AckOutcome, EntityType
from sync.storage.ccb_batch_queries import SqlBatchQueries
from tests.api.support import reject, send_pending
from tests.browser.support import ADMIN, BUSINESS_DATE, TOKEN, csrf_of, flashes, load_example


def make_runtime(folder: Path, open_reads: bool = True) -> Runtime:
    settings = Settings(ccb_db_url=f"sqlite:///{folder / 'ccb.db'}",
                        mdm_db_url=f"sqlite:///{folder / 'mdm.db'}",
                        business_date=BUSINESS_DATE)
    runtime = Runtime(settings, ADMIN, AccessPolicy(tokens=frozenset({TOKEN}),
                                                    open_reads=open_reads))
    load_example(runtime)
    return runtime


@pytest.fixture
def runtime(tmp_path: Path) -> Runtime:
    return make_runtime(tmp_path)


@pytest.fixture
def client(runtime: Runtime) -> Iterator[TestClient]:
    with TestClient(create_app(runtime)) as client:
        yield client


def sign_in(client: TestClient, user: str = "csr1") -> None:
    answer = client.post("/signin", data={"user": user, "token": TOKEN, "next": "/search"},
                         follow_redirects=False)
    assert answer.status_code == 303, answer.text


def sa_status(runtime: Runtime, sa_id: str) -> SaStatus:
    sa = runtime.ccb.read(lambda view: view.sa(sa_id))
    assert sa is not None
    return sa.status


def stop_form(client: TestClient, **fields: str) -> dict[str, str]:
    page = client.get("/accounts/A-TN-01").text
    return {"csrf": csrf_of(page), "sa": "SA-TN01-E", "stop_date": "2025-03-14",
            "back": "/accounts/A-TN-01", **fields}


# --- signing in ------------------------------------------------------------------------------


def test_sign_in_with_a_wrong_token_is_refused_and_sets_no_cookie(client: TestClient) -> None:
    answer = client.post("/signin", data={"user": "csr1", "token": "guess", "next": "/"},
                         follow_redirects=False)
    assert answer.status_code == 401
    assert "token: not an access token of this server" in answer.text
    assert COOKIE not in answer.cookies


def test_sign_in_sets_an_http_only_same_site_strict_session_cookie(client: TestClient) -> None:
    answer = client.post("/signin", data={"user": "csr1", "token": TOKEN,
                                          "next": "/accounts/A-TN-01"}, follow_redirects=False)
    assert answer.status_code == 303
    assert answer.headers["location"] == "/accounts/A-TN-01"
    cookie = answer.headers["set-cookie"]
    assert cookie.startswith(f"{COOKIE}=")
    assert "HttpOnly" in cookie
    assert "samesite=strict" in cookie.lower()
    assert TOKEN not in cookie
    assert 'id="signed-in-user">csr1<' in client.get("/search").text


def test_sign_in_never_redirects_off_the_server(client: TestClient) -> None:
    answer = client.post("/signin", data={"user": "csr1", "token": TOKEN,
                                          "next": "//evil.example/x"}, follow_redirects=False)
    assert answer.headers["location"] == "/search"


def test_closed_reads_send_the_reader_to_sign_in(tmp_path: Path) -> None:
    with TestClient(create_app(make_runtime(tmp_path, open_reads=False))) as client:
        answer = client.get("/accounts/A-TN-01", follow_redirects=False)
        assert answer.status_code == 303
        assert answer.headers["location"] == "/signin?next=%2Faccounts%2FA-TN-01"
        sign_in(client)
        assert client.get("/accounts/A-TN-01").status_code == 200


# --- writes and their refusals -----------------------------------------------------------------


def test_a_write_without_sign_in_changes_nothing(client: TestClient, runtime: Runtime) -> None:
    answer = client.post("/accounts/A-TN-01/request-stop",
                         data={"sa": "SA-TN01-E", "stop_date": "2025-03-14"},
                         follow_redirects=False)
    assert answer.status_code == 303
    assert answer.headers["location"].startswith("/signin?next=%2Faccounts%2FA-TN-01")
    assert sa_status(runtime, "SA-TN01-E") is SaStatus.ACTIVE


def test_a_write_with_a_stale_csrf_token_changes_nothing(client: TestClient,
                                                         runtime: Runtime) -> None:
    sign_in(client)
    page = client.post("/accounts/A-TN-01/request-stop",
                       data=stop_form(client, csrf="not-the-token")).text
    assert "CSRF token" in flashes(page, "error")[0]
    assert sa_status(runtime, "SA-TN01-E") is SaStatus.ACTIVE


def test_step_1_1_request_stop_from_the_account_view_reverts_the_unit_to_the_landlord(
        client: TestClient, runtime: Runtime) -> None:
    sign_in(client)
    answer = client.post("/accounts/A-TN-01/request-stop", data=stop_form(client),
                         follow_redirects=False)
    assert (answer.status_code, answer.headers["location"]) == (303, "/accounts/A-TN-01")
    page = client.get("/accounts/A-TN-01").text
    [message] = flashes(page, "ok")
    assert "SA SA-TN01-E request stop: 2025-03-14" in message
    assert sa_status(runtime, "SA-TN01-E") is SaStatus.PENDING_STOP
    # Step 1.3: the pending-stop alert; step 4.7: the landlord's pending start in the tree.
    assert "Pending stop: SA SA-TN01-E (E-RES) on 2025-03-14" in page
    landlord_rows = re.findall(r'data-sa="([^"]+)" data-status="10" data-landlord="yes"', page)
    assert len(landlord_rows) == 1
    assert f"2025-03-14: reverts to the landlord (SA {landlord_rows[0]}, E-RES)" in page
    # The flash is shown once.
    assert flashes(client.get("/accounts/A-TN-01").text, "ok") == []


@pytest.mark.parametrize(("fields", "expected"), [
    ({"stop_date": "14/03/2025"}, "stop date: '14/03/2025' is not a date (YYYY-MM-DD)"),
    ({"stop_date": "2023-01-01"}, "SA 'SA-TN01-E'"),
    ({"sa": ""}, "choose at least one SA"),
    ({"forward_line1": "1 Main St"}, "forwarding address: missing city, state, postal code"),
])
def test_a_refused_request_stop_names_what_is_wrong_and_changes_nothing(
        client: TestClient, runtime: Runtime, fields: dict[str, str], expected: str) -> None:
    sign_in(client)
    answer = client.post("/accounts/A-TN-01/request-stop", data=stop_form(client, **fields))
    assert answer.status_code == 200
    [message] = flashes(answer.text, "error")
    assert expected in message.replace("&#39;", "'")
    assert sa_status(runtime, "SA-TN01-E") is SaStatus.ACTIVE


def test_steps_5_4_to_5_6_cancel_stop_from_the_account_view(client: TestClient,
                                                            runtime: Runtime) -> None:
    sign_in(client)
    client.post("/accounts/A-TN-01/request-stop", data=stop_form(client))
    page = client.get("/accounts/A-TN-01").text
    client.post("/accounts/A-TN-01/cancel-stop", data={"csrf": csrf_of(page), "sa": "SA-TN01-E"})
    assert sa_status(runtime, "SA-TN01-E") is SaStatus.ACTIVE
    tree = client.get("/premises/PR-4410-1").text
    assert not re.findall(r'data-status="10" data-landlord="yes"', tree)


# --- To Do work (steps 6.1-6.4) --------------------------------------------------------------


def raise_sample_todo(runtime: Runtime) -> str:
    def unit(view: CcbView, ids: IdSource) -> Changes:
        return raise_todo(view, ids, ADMIN, "sa_activation", DrillKey(kind="sa", id="SA-TN02-E"),
                          "start read missing", runtime.clock.now()).changes

    changes = runtime.ccb.execute(unit)
    [todo_id] = changes.todos
    return todo_id


def todo_status(runtime: Runtime, todo_id: str) -> tuple[ToDoStatus, str | None, list[str]]:
    entry = runtime.ccb.read(lambda view: view.todo(todo_id))
    assert entry is not None
    return entry.status, entry.assigned_user, [line.comment for line in entry.log]


def test_steps_6_1_to_6_4_take_log_and_complete_a_todo(client: TestClient,
                                                       runtime: Runtime) -> None:
    todo_id = raise_sample_todo(runtime)
    sign_in(client, "csr1")
    page = client.get("/todos").text
    assert f'data-todo="{todo_id}" data-status="open"' in page
    assert "start read missing" in page
    csrf = csrf_of(page)
    client.post(f"/todos/{todo_id}/take", data={"csrf": csrf})
    assert todo_status(runtime, todo_id)[:2] == (ToDoStatus.BEING_WORKED, "csr1")
    client.post(f"/todos/{todo_id}/log", data={"csrf": csrf, "comment": "called the tenant"})
    assert "called the tenant" in todo_status(runtime, todo_id)[2]
    page = client.post(f"/todos/{todo_id}/complete",
                       data={"csrf": csrf, "comment": "read entered"}).text
    assert flashes(page, "ok") == [f"To Do {todo_id} completed by csr1"]
    status, user, log = todo_status(runtime, todo_id)
    assert (status, user) == (ToDoStatus.COMPLETE, "csr1")
    assert log[-1] == "completed by csr1: read entered"
    assert f'data-todo="{todo_id}"' not in page  # the default list shows open and being worked
    assert f'data-todo="{todo_id}" data-status="complete"' in client.get("/todos?status=all").text


def test_step_6_1_the_todo_list_shows_the_most_urgent_entries_and_how_many_match(
        client: TestClient, runtime: Runtime, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sync.console.pages.TODO_PAGE_SIZE", 2)

    def unit(view: CcbView, ids: IdSource) -> Changes:
        changes = Changes()
        for sa_id in ("SA-TN01-E", "SA-TN02-E", "SA-TN03-E"):
            changes.merge(raise_todo(view, ids, ADMIN, "sa_activation",
                                     DrillKey(kind="sa", id=sa_id), "start read missing",
                                     runtime.clock.now()).changes)
        return changes

    raised = list(runtime.ccb.execute(unit).todos)
    page = client.get("/todos").text
    assert re.findall(r'data-todo="([^"]+)" data-status="open"', page) == raised[:2]
    assert "The 2 most urgent of 3 matching entries are shown" in page


def test_a_user_outside_the_todo_role_is_refused_by_name(client: TestClient,
                                                         runtime: Runtime) -> None:
    todo_id = raise_sample_todo(runtime)
    sign_in(client, "integ1")
    page = client.post(f"/todos/{todo_id}/take",
                       data={"csrf": csrf_of(client.get("/todos").text)}).text
    [message] = flashes(page, "error")
    assert "user &#39;integ1&#39; is not in role CSR" in message
    assert todo_status(runtime, todo_id)[0] is ToDoStatus.OPEN


# --- sync monitor, reconciliation and read pages -----------------------------------------------


def test_the_sync_monitor_lists_waiting_requests_and_refuses_resending_one_not_in_error(
        client: TestClient, runtime: Runtime) -> None:
    page = client.get("/sync").text
    pending = runtime.outbox.counts()["PENDING"]
    assert pending > 0
    assert f'data-state="PENDING" data-count="{pending}"' in page
    [request] = runtime.outbox.find(entity_id="SA-TN01-E")
    assert f'data-request="{request.id}" data-entity="SA-TN01-E" data-state="PENDING"' in page
    detail = client.get(f"/sync/{request.id}").text
    assert '"externalId": "SA-TN01-E"' in detail.replace("&#34;", '"')
    sign_in(client)
    csrf = csrf_of(client.get("/sync").text)
    page = client.post(f"/sync/{request.id}/resend", data={"csrf": csrf}).text
    [message] = flashes(page, "error")
    assert "is PENDING; only a request in ERROR can be resent" in message


def test_step_1_4_the_sync_monitor_shows_the_newest_of_each_state_needing_attention(
        client: TestClient, runtime: Runtime, monkeypatch: pytest.MonkeyPatch) -> None:
    """However many requests wait, the page lists a bounded number of each state, newest
    first, and says how many there are."""
    monkeypatch.setattr("sync.console.pages.ATTENTION_PER_STATE", 3)
    waiting = runtime.outbox.find(state=SyncRequestState.PENDING, newest_first=True)
    assert len(waiting) > 3
    page = client.get("/sync").text
    attention = page.split('id="attention"')[1].split('id="recent"')[0]
    listed = re.findall(r'data-request="([^"]+)"', attention)
    assert listed == [r.id for r in waiting[:3]]
    assert f"The newest 3 of {len(waiting)} in PENDING are shown" in attention


def test_step_1_4_the_sync_monitor_resends_every_request_in_error_at_once(
        client: TestClient, runtime: Runtime) -> None:
    """After a wave of rejections: one button queues every request in ERROR again."""
    outbox, now = runtime.outbox, runtime.clock.now()
    sent = outbox.next_batch(100)
    outbox.mark_sent([(r, 0, n) for n, r in enumerate(sent)], now)
    rejected = [r for r in sent if r.entity_type == "SA"][:3]
    outbox.acknowledge([Acknowledgement(
        sync_request_id=r.id, entity_type=EntityType.SA, entity_id=r.entity_id,
        version=r.version, outcome=AckOutcome.ERROR, mdm_us_id=r.entity_id, processed_at=now,
        errors=(AckError(code="D2-VALUSMC", path="spLinks[0].spId", message="no kWh MC"),))
        for r in rejected], now)
    page = client.get("/sync").text
    assert "Resend all 3 in ERROR" in page
    sign_in(client)
    csrf = csrf_of(client.get("/sync").text)
    page = client.post("/sync/resend-errors", data={"csrf": csrf}).text
    assert flashes(page, "ok") == [
        "RS-1: every request in ERROR is being queued again with the current data of its "
        "entity; its progress is shown below"]
    page = _until_run_ended(client, "/sync", "RS-1")
    run = page.split('data-run="RS-1"')[1].split("</div>")[0]
    assert 'data-state="FINISHED"' in run
    assert ("3 of 3 requests in ERROR queued again with the current data of their entities"
            in run)
    assert '<meta http-equiv="refresh"' not in page  # nothing to follow any more
    assert outbox.counts()["ERROR"] == 0
    assert {r.id for r in outbox.find(state=SyncRequestState.PENDING)} >= {
        r.id for r in rejected}
    assert 'id="resend-errors"' not in page

    # The run has ended: asking it to stop says so and changes nothing.
    page = client.post("/sync/resend-errors/RS-1/stop", data={"csrf": csrf}).text
    assert flashes(page, "error") == ["resend RS-1 has already ended (FINISHED)"]
    page = client.post("/sync/resend-errors/RS-9/stop", data={"csrf": csrf}).text
    assert flashes(page, "error") == ["no resend RS-9 on this server (a restart forgets them)"]


def test_step_1_4_a_resend_of_a_wave_of_errors_is_followed_and_stopped_from_the_monitor(
        client: TestClient, runtime: Runtime) -> None:
    """A wave of 3,000 rejections: the page answers at once, follows the run (reloading
    itself) and its Stop ends it between two chunks of 500; the rest stay in ERROR."""
    in_error = _a_wave_of_rejections(runtime, 3_000)
    sign_in(client)
    csrf = csrf_of(client.get("/sync").text)
    client.post("/sync/resend-errors", data={"csrf": csrf})
    stop = client.post("/sync/resend-errors/RS-1/stop", data={"csrf": csrf}).text
    going = client.get("/sync").text
    page = _until_run_ended(client, "/sync", "RS-1")

    run = page.split('data-run="RS-1"')[1].split("</div>")[0]
    if 'data-state="RUNNING"' in going.split('data-run="RS-1"')[1].split("</div>")[0]:
        assert '<meta http-equiv="refresh" content="2">' in going
        assert "stopping after the chunk under way" in going
        assert 'id="resend-errors"' not in going  # no second resend while one goes
    assert flashes(stop, "ok") == ["RS-1 stops after the chunk under way; resend again for "
                                   "the rest"]
    assert 'data-state="STOPPED"' in run, run
    resent = int(run.split('class="outcome">')[1].split(" of ")[0])
    assert resent % 500 == 0
    assert resent < in_error
    assert "stopped on request: resend again for the rest" in run
    assert runtime.outbox.counts()["ERROR"] == in_error - resent


def _a_wave_of_rejections(runtime: Runtime, count: int) -> int:
    """``count`` bench SAs due today moved on by SAACT, sent and rejected by MDM."""
    engine = create_engine(runtime.settings.ccb_db_url)
    populate(engine, count, 0, runtime.clock.business_date())
    engine.dispose()
    load_jobs().run("SAACT", JobContext(
        admin=runtime.admin, clock=runtime.clock, store=runtime.ccb,
        queries=SqlBatchQueries(runtime.ccb.engine)))
    now = runtime.clock.now()
    reject(runtime.outbox, send_pending(runtime.outbox, now), now)
    in_error = runtime.outbox.counts()["ERROR"]
    assert in_error >= count
    return in_error


def _until_run_ended(client: TestClient, path: str, run_id: str) -> str:
    for _ in range(600):  # bounded: 60 s
        page = client.get(path).text
        if 'data-state="RUNNING"' not in page.split(f'data-run="{run_id}"')[1].split("</div>")[0]:
            return page
        time.sleep(0.1)
    raise AssertionError(f"{run_id} still running after 60 s")


def test_reconciliation_on_the_in_process_bus_explains_why_there_is_no_report(
        client: TestClient) -> None:
    page = client.get("/reconcile?run=1").text
    assert "in-process bus (memory://)" in page
    assert 'id="report"' not in page


def test_a_repair_on_the_in_process_bus_is_refused_by_name(client: TestClient,
                                                           runtime: Runtime) -> None:
    sign_in(client)
    before = runtime.outbox.counts()
    csrf = csrf_of(client.get("/reconcile").text)
    page = client.post("/reconcile/repair", data={"csrf": csrf}).text
    # The flash comes first; the report page below it explains the same.
    assert "in-process bus (memory://)" in flashes(page, "error")[0]
    assert 'role="status">This server runs on the in-process bus' in page
    assert runtime.outbox.counts() == before


def test_step_1_0_search_by_name_links_the_account_view(client: TestClient) -> None:
    page = client.get("/search", params={"by": "name", "q": "okafor"}).text
    assert 'href="/accounts/A-TN-01"' in page
    assert "Landlord: landlord agreement at premise PR-4410-1 (LA-4410)" in page


def test_the_premise_tree_shows_the_landlord_tenants_and_the_reverted_unit(
        client: TestClient) -> None:
    page = client.get("/premises/PR-4410-3").text  # any unit shows the whole building
    units = dict(re.findall(r'data-unit="([^"]+)" data-occupancy="([^"]+)"', page))
    assert units == {"PR-4410": "no_service_points", "PR-4410-1": "tenant",
                     "PR-4410-2": "tenant", "PR-4410-3": "landlord"}
    assert "Landlord: <strong>BRENNAN,MARGARET" in page
    assert page.count('class="badge reverted"') == 2  # unit 3's electric and gas


def test_step_5_9_the_pending_list_shows_the_earliest_and_how_many_there_are(
        client: TestClient, runtime: Runtime, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sync.console.pages.PENDING_PAGE_SIZE", 1)
    sign_in(client)
    client.post("/accounts/A-TN-01/request-stop", data=stop_form(client))
    pending = [sa.id for sa in runtime.ccb.read(lambda view: view.sas_with_status(
        SaStatus.PENDING_START, SaStatus.PENDING_STOP))]
    assert len(pending) >= 2  # the tenant's pending stop, the landlord's pending start
    page = client.get("/pending").text
    [shown] = re.findall(r'<tr data-sa="([^"]+)"', page)
    assert shown in pending
    assert f"The earliest 1 of {len(pending)} pending starts and stops are shown" in page


def test_pending_list_and_refusals_of_bad_reads(client: TestClient) -> None:
    assert "Nothing pending." in client.get("/pending").text
    missing = client.get("/accounts/A-NOPE")
    assert missing.status_code == 404
    assert "account &#39;A-NOPE&#39; not found (account_id)" in missing.text
    bad = client.get("/sync", params={"state": "LOST"})
    assert bad.status_code == 400
    assert "state: &#39;LOST&#39; is not a sync request state" in bad.text
