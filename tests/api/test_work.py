"""To Do work (steps 6.1-6.4) and customer contacts (seed 002) over HTTP."""

from __future__ import annotations

import base64
from typing import Any

import httpx
import pytest

from sync.api.runtime import Runtime
from sync.ccb.changes import Changes
from sync.ccb.model import DrillKey
from sync.ccb.ports import CcbView, IdSource
from sync.ccb.todo import raise_todo
from tests.api.support import ADMIN, fail_sync_request, post, problem


@pytest.fixture
def sync_error_todo(runtime: Runtime) -> str:
    """The To Do an MDM rejection of SA-TN01-E raised (role SYNC: user integ1)."""
    fail_sync_request(runtime, "SA-TN01-E")
    [entry] = runtime.ccb.read(lambda view: view.todos())
    return entry.id


async def test_step_6_1_worklist_by_role_type_and_status(client: httpx.AsyncClient,
                                                         sync_error_todo: str) -> None:
    everything = (await client.get("/api/todos")).json()
    assert [(e["id"], e["role"], e["todo_type"], e["status"]) for e in everything] == [
        (sync_error_todo, "SYNC", "TD-SYNCER", "open")]
    assert everything[0]["drill_key"] == {"kind": "sa", "id": "SA-TN01-E"}
    for params, count in [({"role": "SYNC"}, 1), ({"role": "CSR"}, 0),
                          ({"todo_type": "TD-SYNCER"}, 1), ({"status": "complete"}, 0),
                          ({"assigned_user": "integ1"}, 0), ({"unfinished": "true"}, 1)]:
        response = await client.get("/api/todos", params=params)
        assert len(response.json()) == count, params
        assert response.headers["X-Total-Count"] == str(count)


async def test_step_6_1_the_worklist_answers_the_most_urgent_up_to_a_limit(
        client: httpx.AsyncClient, runtime: Runtime, sync_error_todo: str) -> None:
    """The limit keeps the most urgent; X-Total-Count says how many matched; the offset
    reads the next page; the unfinished worklist leaves the completed entries out."""
    def raise_more(view: CcbView, ids: IdSource) -> Changes:
        changes = Changes()
        for sa_id in ("SA-TN02-E", "SA-TN03-E"):
            changes.merge(raise_todo(view, ids, ADMIN, "sa_activation",
                                     DrillKey(kind="sa", id=sa_id), "start read missing",
                                     runtime.clock.now()).changes)
        return changes

    runtime.ccb.execute(raise_more)
    everything = (await client.get("/api/todos")).json()
    assert len(everything) == 3
    first = await client.get("/api/todos", params={"limit": 2})
    assert (first.json(), first.headers["X-Total-Count"]) == (everything[:2], "3")
    pages = [(await client.get("/api/todos", params={"limit": 2, "offset": offset})).json()
             for offset in (0, 2)]
    assert pages == [everything[:2], everything[2:]]  # page by page, each entry once
    done, user = everything[0]["id"], {"CSR": "csr1", "SYNC": "integ1"}[everything[0]["role"]]
    for action in ("take", "complete"):
        answer = await post(client, f"/api/todos/{done}/{action}", {"user": user})
        assert answer.status_code == 200, answer.text
    worklist = (await client.get("/api/todos", params={"unfinished": "true"})).json()
    assert [entry["id"] for entry in worklist] == [e["id"] for e in everything[1:]]


async def _complete(client: httpx.AsyncClient, entry: dict[str, Any]) -> None:
    user = {"CSR": "csr1", "SYNC": "integ1"}[entry["role"]]
    for action in ("take", "complete"):
        answer = await post(client, f"/api/todos/{entry['id']}/{action}", {"user": user})
        assert answer.status_code == 200, answer.text


async def test_step_6_1_worked_page_by_page_after_each_page_skips_nothing(
        client: httpx.AsyncClient, runtime: Runtime, sync_error_todo: str) -> None:
    """A worklist worked a page at a time (each page completed before the next is read):
    the offset of the next page skips as many entries as were completed, ``after`` starts
    right behind the last entry read."""
    def raise_more(view: CcbView, ids: IdSource) -> Changes:
        changes = Changes()
        for sa_id in ("SA-TN02-E", "SA-TN03-E", "SA-TN04-E", "SA-TN05-E"):
            changes.merge(raise_todo(view, ids, ADMIN, "sa_activation",
                                     DrillKey(kind="sa", id=sa_id), "start read missing",
                                     runtime.clock.now()).changes)
        return changes

    runtime.ccb.execute(raise_more)
    worklist = {"unfinished": "true", "limit": 2}
    everything = (await client.get("/api/todos", params={"unfinished": "true"})).json()
    assert len(everything) == 5
    seen: list[str] = []
    cursor: str | None = None
    for number in range(5):  # bounded: three pages are expected
        if number == 1:
            # By offset the second page would pass over the two entries behind the first
            # page: the two completed have left the unfinished worklist.
            by_offset = (await client.get("/api/todos", params={**worklist, "offset": 2}))
            assert [e["id"] for e in by_offset.json()] == [e["id"] for e in everything[4:]]
        response = await client.get("/api/todos", params={
            **worklist, **({} if cursor is None else {"after": cursor})})
        assert response.status_code == 200, response.text
        entries = response.json()
        seen += [entry["id"] for entry in entries]
        for entry in entries:
            await _complete(client, entry)
        cursor = response.headers.get("X-Next-After")
        if cursor is None:
            break
    assert seen == [entry["id"] for entry in everything]
    # The whole list (completed entries stay in it) by cursor: each entry once, in order.
    pages, cursor = [], None
    for _ in range(5):
        response = await client.get("/api/todos", params={
            "limit": 2, **({} if cursor is None else {"after": cursor})})
        pages.append([entry["id"] for entry in response.json()])
        cursor = response.headers.get("X-Next-After")
        if cursor is None:
            break
    assert pages == [seen[0:2], seen[2:4], seen[4:]]


async def test_step_6_1_a_worklist_cursor_that_is_not_one_is_refused_naming_after(
        client: httpx.AsyncClient, sync_error_todo: str) -> None:
    for cursor, why in [("abc", "not a cursor of this list"),
                        ("WyJ4Il0", "it is a place in another list"),  # ["x"]
                        ("eyJhIjoxfQ", "it holds no place in it")]:  # {"a":1}
        response = await client.get("/api/todos", params={"after": cursor})
        document = problem(response, 422, "validation")
        assert document["errors"][0]["field"] == "query.after"
        assert why in document["errors"][0]["message"], cursor
    response = await client.get("/api/todos", params={"after": "WyJ4Il0", "offset": 1})
    assert "after and offset cannot be combined" in problem(response, 422, "validation")["detail"]
    deep = base64.urlsafe_b64encode(b"[" * 1400).decode().rstrip("=")  # nests past Python's
    response = await client.get("/api/todos", params={"after": deep})  # recursion limit
    assert "not a cursor of this list" in problem(response, 422, "validation")["detail"]
    response = await client.get("/api/todos", params={"after": "not/base64"})
    assert problem(response, 422, "validation")["errors"][0]["field"] == "query.after"


async def test_steps_6_1_to_6_4_take_log_and_complete(client: httpx.AsyncClient,
                                                      sync_error_todo: str) -> None:
    base = f"/api/todos/{sync_error_todo}"
    taken = await post(client, f"{base}/take", {"user": "integ1"})
    assert taken.status_code == 200, taken.text
    assert taken.json()["todos"] == [sync_error_todo]
    logged = await post(client, f"{base}/log", {"user": "integ1",
                                                "comment": "measuring component added in MDM"})
    assert logged.status_code == 200
    done = await post(client, f"{base}/complete", {"user": "integ1", "comment": "resent"})
    assert done.status_code == 200
    entry = (await client.get(base)).json()
    assert (entry["status"], entry["assigned_user"]) == ("complete", "integ1")
    assert [line["comment"] for line in entry["log"]][1:] == [
        "taken by integ1", "measuring component added in MDM", "completed by integ1: resent"]


async def test_only_members_of_the_role_work_an_entry(client: httpx.AsyncClient,
                                                      sync_error_todo: str) -> None:
    response = await post(client, f"/api/todos/{sync_error_todo}/take", {"user": "csr1"})
    assert "user 'csr1' is not in role SYNC" in problem(response, 422,
                                                        "invalid-command")["detail"]
    assert (await client.get(f"/api/todos/{sync_error_todo}")).json()["status"] == "open"


@pytest.mark.parametrize(("path", "body", "status", "field_or_text"), [
    ("/api/todos/TODO-9/take", {"user": "integ1"}, 404, "To Do 'TODO-9' not found"),
    ("/api/todos/TODO-9/log", {"user": "integ1", "comment": ""}, 422, "body.comment"),
    ("/api/todos/TODO-9/complete", {}, 422, "body.user"),
])
async def test_todo_actions_refuse_bad_input(client: httpx.AsyncClient, path: str,
                                             body: dict[str, Any], status: int,
                                             field_or_text: str) -> None:
    response = await post(client, path, body)
    assert response.status_code == status
    assert field_or_text in response.json()["detail"]


async def test_todo_reads_refuse_unknown_ids_and_filters(
        shared_client: httpx.AsyncClient) -> None:
    problem(await shared_client.get("/api/todos/TODO-404"), 404, "not-found")
    response = await shared_client.get("/api/todos", params={"status": "sleeping"})
    assert problem(response, 422, "validation")["errors"][0]["field"] == "query.status"


# --- customer contacts ------------------------------------------------------------------------


async def test_seed_002_a_contact_with_log_characteristic_reminder_and_close(
        client: httpx.AsyncClient) -> None:
    assert (await client.get("/api/persons/P-TN-02/contacts")).json() == []
    created = await post(client, "/api/persons/P-TN-02/contacts", {
        "contact_type": "INQUIRY", "account_id": "A-TN-02", "comments": "billing question",
        "open": True, "user": "csr1"})
    assert created.status_code == 201, created.text
    [contact_id] = created.json()["contacts"]
    base = f"/api/contacts/{contact_id}"
    for path, body in [("log", {"user": "csr1", "comment": "called back"}),
                       ("characteristics", {"characteristic_type": "CALLBACK",
                                            "value": "evening"}),
                       ("reminders", {"trigger_date": "2025-03-05", "role": "CSR"}),
                       ("close", {"user": "csr1", "comment": "answered"})]:
        response = await post(client, f"{base}/{path}", body)
        assert response.status_code == 200, (path, response.text)
        assert response.json()["contacts"] == [contact_id]
    contact = (await client.get(base)).json()
    assert (contact["person_id"], contact["account_id"], contact["open"]) == (
        "P-TN-02", "A-TN-02", False)
    assert [line["comment"] for line in contact["log"]][:1] == ["called back"]
    assert contact["characteristics"] == [{"type": "CALLBACK", "value": "evening"}]
    assert [(r["trigger_date"], r["role"]) for r in contact["reminders"]] == [
        ("2025-03-05", "CSR")]
    listed = (await client.get("/api/persons/P-TN-02/contacts")).json()
    assert [c["id"] for c in listed] == [contact_id]


@pytest.mark.parametrize(("path", "body", "status", "text"), [
    ("/api/persons/P-404/contacts", {"contact_type": "INQUIRY", "user": "csr1"}, 404, "P-404"),
    ("/api/persons/P-TN-02/contacts", {"contact_type": "GOSSIP", "user": "csr1"}, 422,
     "GOSSIP"),
    ("/api/persons/P-TN-02/contacts", {"contact_type": "INQUIRY", "user": "csr1",
                                       "account_id": "A-TN-01"}, 422, "A-TN-01"),
    ("/api/contacts/CONTACT-9/log", {"user": "csr1", "comment": "x"}, 404, "CONTACT-9"),
    ("/api/contacts/CONTACT-9/reminders", {"trigger_date": "tomorrow"}, 422,
     "body.trigger_date"),
    ("/api/contacts/CONTACT-9/close", {"user": "csr1"}, 404, "CONTACT-9"),
    ("/api/contacts/CONTACT-9/characteristics", {"characteristic_type": "A", "value": ""},
     422, "body.value"),
])
async def test_contact_commands_refuse_bad_input(client: httpx.AsyncClient, path: str,
                                                 body: dict[str, Any], status: int,
                                                 text: str) -> None:
    response = await post(client, path, body)
    assert response.status_code == status, response.text
    assert text in response.json()["detail"]


async def test_contact_reads_refuse_unknown_ids(shared_client: httpx.AsyncClient) -> None:
    problem(await shared_client.get("/api/persons/P-404/contacts"), 404, "not-found")
    problem(await shared_client.get("/api/contacts/CONTACT-404"), 404, "not-found")
