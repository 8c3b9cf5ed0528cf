"""CCB views over HTTP: Control Central search (1.0, 4.6), the account view with alerts, the
premise tree, SA details with the audit log, a pending stop's impact (2.0-2.1) and the pending
start/stop list."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.api.support import post, problem

STOP = {"account_id": "A-TN-01", "stop_date": "2025-03-10", "premise_id": "PR-4410-1",
        "user": "csr1"}


def hit_ids(document: dict[str, Any]) -> list[tuple[str, list[str]]]:
    return [(hit["person_id"], [line["account_id"] for line in hit["accounts"]])
            for hit in document["hits"]]


@pytest.mark.parametrize(("by", "query", "expected"), [
    ("name", "okafor", [("P-TN-01", ["A-TN-01"])]),
    ("name", "nguyen , li", [("P-TN-02", ["A-TN-02"])]),
    ("phone", "773.555.0112", [("P-TN-01", ["A-TN-01"])]),
    ("address", "unit 2", [("P-TN-02", ["A-TN-02"])]),
    ("account", "A-LL-01", [("P-LL-01", ["A-LL-01"])]),
    ("sa", "SA-TN02-G", [("P-TN-02", ["A-TN-02"])]),
    ("premise", "PR-4410-3", [("P-LL-01", ["A-LL-01"])]),
    ("name", "zzz", []),
])
async def test_step_1_0_search_by_each_criterion(shared_client: httpx.AsyncClient, by: str,
                                                 query: str,
                                                 expected: list[tuple[str, list[str]]]) -> None:
    response = await shared_client.get("/api/search", params={"by": by, "q": query})
    assert response.status_code == 200, response.text
    document = response.json()
    assert (document["by"], document["truncated"]) == (by, False)
    assert hit_ids(document) == expected


async def test_step_1_0_search_shows_sas_and_alerts_of_each_account(
        shared_client: httpx.AsyncClient) -> None:
    document = (await shared_client.get("/api/search", params={"by": "account",
                                                               "q": "A-LL-01"})).json()
    [line] = document["hits"][0]["accounts"]
    assert [sa["sa_id"] for sa in line["sas"]] == ["SA-LL-3E", "SA-LL-3G"]
    assert line["info"].startswith("Account A-LL-01")
    assert [(a["kind"], a["premise_id"], a["is_landlord"]) for a in line["alerts"]] == [
        ("LandlordIndicator", "PR-4410-3", True)]


@pytest.mark.parametrize(("params", "field"), [
    ({"by": "colour", "q": "x"}, "query.by"),
    ({"by": "name"}, "query.q"),
    ({"by": "name", "q": ""}, "query.q"),
    ({"by": "address", "q": "a" * 201}, "query.q"),  # the domain's MAX_QUERY_LENGTH
])
async def test_search_refuses_bad_criteria_naming_the_parameter(
        shared_client: httpx.AsyncClient, params: dict[str, str], field: str) -> None:
    document = problem(await shared_client.get("/api/search", params=params), 422, "validation")
    assert [error["field"] for error in document["errors"]] == [field]


async def test_a_blank_search_is_refused_by_the_domain(shared_client: httpx.AsyncClient) -> None:
    response = await shared_client.get("/api/search", params={"by": "name", "q": "   "})
    assert "query: must not be blank" in problem(response, 422, "invalid-command")["detail"]


async def test_step_4_6_account_view_lists_persons_sas_by_status_and_alerts(
        shared_client: httpx.AsyncClient) -> None:
    document = (await shared_client.get("/api/accounts/A-LL-01")).json()
    assert document["account"]["customer_class"] == "LANDLORD"
    assert [(p["role"], p["person"]["id"]) for p in document["persons"]] == [
        ("main", "P-LL-01")]
    assert document["sas_by_status"] == {"20": ["SA-LL-3E", "SA-LL-3G"]}
    assert [sa["status_label"] for sa in document["sas"]] == ["active", "active"]
    assert [alert["kind"] for alert in document["alerts"]] == ["LandlordIndicator"]


async def test_step_1_3_account_view_shows_the_pending_stop_alert(
        client: httpx.AsyncClient) -> None:
    assert (await post(client, "/api/commands/request-stop", STOP)).status_code == 200
    document = (await client.get("/api/accounts/A-TN-01")).json()
    assert document["sas_by_status"] == {"30": ["SA-TN01-E", "SA-TN01-G"]}
    stops = [(a["sa_id"], a["stop_date"]) for a in document["alerts"]
             if a["kind"] == "PendingStopAlert"]
    assert stops == [("SA-TN01-E", "2025-03-10"), ("SA-TN01-G", "2025-03-10")]
    assert len(document["contacts"]) == 1


async def test_step_1_3_an_open_to_do_on_an_sa_is_an_alert_on_its_account_until_complete(
        client: httpx.AsyncClient) -> None:
    """A pending stop left 40 days: TD-SSFTL raises its To Dos, and the account view and the
    search show each as an open To Do alert; completing one takes it off."""
    assert (await post(client, "/api/commands/request-stop", STOP)).status_code == 200
    ran = await post(client, "/api/batches/TD-SSFTL/runs", {"business_date": "2025-04-20"})
    assert ran.status_code == 200, ran.text
    document = (await client.get("/api/accounts/A-TN-01")).json()
    todo_alerts = [alert for alert in document["alerts"] if alert["kind"] == "OpenToDoAlert"]
    assert [(a["todo_type"], a["drill_kind"], a["drill_id"], a["status"]) for a in todo_alerts
            ] == [("TD-SSFTL", "sa", "SA-TN01-E", "open"), ("TD-SSFTL", "sa", "SA-TN01-G", "open")]
    assert todo_alerts[0]["text"].startswith(
        f"Open To Do {todo_alerts[0]['todo_id']} (TD-SSFTL, open) on SA SA-TN01-E: ")
    searched = (await client.get("/api/search", params={"by": "account", "q": "A-TN-01"})).json()
    assert [a for a in searched["hits"][0]["accounts"][0]["alerts"]
            if a["kind"] == "OpenToDoAlert"] == todo_alerts

    completed = await post(client, f"/api/todos/{todo_alerts[0]['todo_id']}/complete",
                           {"user": "csr1", "comment": "customer called back"})
    assert completed.status_code == 200, completed.text
    after = (await client.get("/api/accounts/A-TN-01")).json()
    assert [a["todo_id"] for a in after["alerts"] if a["kind"] == "OpenToDoAlert"] == [
        todo_alerts[1]["todo_id"]]


@pytest.mark.parametrize(("path", "detail"), [
    ("/api/accounts/A-404", "account 'A-404' not found (account_id)"),
    ("/api/premises/PR-404", "premise 'PR-404' not found (premise_id)"),
    ("/api/sas/SA-404", "SA 'SA-404' not found (sa_id)"),
    ("/api/sas/SA-404/pending-stop-impact", "SA 'SA-404' not found (sa_id)"),
])
async def test_an_unknown_id_is_a_404_naming_it(shared_client: httpx.AsyncClient, path: str,
                                                detail: str) -> None:
    assert problem(await shared_client.get(path), 404, "not-found")["detail"] == detail


async def test_an_id_with_control_characters_is_refused(shared_client: httpx.AsyncClient) -> None:
    response = await shared_client.get("/api/accounts/A%00B")
    assert problem(response, 422, "validation")["errors"][0]["field"] == "path.account_id"


async def test_step_4_7_a_reverted_unit_with_only_an_incoming_tenant_is_vacant_until_the_start(
        client: httpx.AsyncClient) -> None:
    """Vacancy on the business date, as the console's premise tree reads it: a new tenant's
    pending start at the reverted unit does not occupy it before its start date."""
    started = await post(client, "/api/commands/start-service", {
        "account_id": "A-TN-03", "sa_type": "E-RES", "start_date": "2025-03-15",
        "premise_id": "PR-4410-3", "user": "csr1"})
    assert started.status_code == 200, started.text
    units = {unit["premise"]["id"]: unit
             for unit in (await client.get("/api/premises/PR-4410")).json()["units"]}
    unit = units["PR-4410-3"]
    assert "10" in {sa["status"] for sa in unit["sas"] if sa["account_id"] == "A-TN-03"}
    assert (unit["vacant"], unit["reverted"]) == (True, True)


async def test_premise_tree_of_the_building(shared_client: httpx.AsyncClient) -> None:
    document = (await shared_client.get("/api/premises/PR-4410")).json()
    assert document["parent"] is None
    assert document["premise"]["premise"]["id"] == "PR-4410"
    units = {unit["premise"]["id"]: unit for unit in document["units"]}
    assert sorted(units) == ["PR-4410-1", "PR-4410-2", "PR-4410-3"]
    # Every unit inherits the building's landlord agreement.
    assert {unit["landlord_agreement"]["id"] for unit in units.values()} == {"LA-4410"}
    assert (units["PR-4410-1"]["vacant"], units["PR-4410-1"]["reverted"]) == (False, False)
    assert (units["PR-4410-3"]["vacant"], units["PR-4410-3"]["reverted"]) == (True, True)
    assert [sp["id"] for sp in units["PR-4410-3"]["service_points"]] == ["SP-4410-3E",
                                                                         "SP-4410-3G"]
    assert [sa["id"] for sa in units["PR-4410-3"]["sas"]] == ["SA-LL-3E", "SA-LL-3G"]


async def test_a_unit_shows_its_parent(shared_client: httpx.AsyncClient) -> None:
    document = (await shared_client.get("/api/premises/PR-4410-2")).json()
    assert document["parent"]["id"] == "PR-4410"
    assert document["units"] == []


async def test_sa_details_carry_links_audit_log_changes_and_sync_requests(
        shared_client: httpx.AsyncClient) -> None:
    document = (await shared_client.get("/api/sas/SA-TN01-E")).json()
    assert document["sa"]["status"] == "20"
    assert [entry["user"] for entry in document["sa"]["audit"]] == ["loader"]
    assert [(link["sp_id"], link["start_read"]) for link in document["links"]] == [
        ("SP-4410-1E", 18234.0)]
    assert document["balance"] == "0.00"
    assert [(c["entity_type"], c["entity_id"]) for c in document["recorded_changes"]] == [
        ("SA", "SA-TN01-E")]
    assert [(r["key"], r["state"]) for r in document["sync_requests"]] == [
        ("SA:SA-TN01-E", "PENDING")]


async def test_step_2_1_pending_stop_impact(client: httpx.AsyncClient) -> None:
    await post(client, "/api/commands/request-stop", STOP)
    document = (await client.get("/api/sas/SA-TN01-E/pending-stop-impact")).json()
    assert document["stop_date"] == "2025-03-10"
    # The landlord's reverted start begins on the stop date: a date change moves it.
    landlord_start = document["next_start"]
    assert (landlord_start["account_id"], landlord_start["status"]) == ("A-LL-01", "10")
    assert document["moved_by_date_change"] == [landlord_start["id"]]
    assert len(document["pending_field_activities"]) == 1


async def test_impact_of_an_sa_without_a_pending_stop_is_refused(
        shared_client: httpx.AsyncClient) -> None:
    response = await shared_client.get("/api/sas/SA-TN01-E/pending-stop-impact")
    assert "has no pending stop" in problem(response, 422, "invalid-command")["detail"]


async def test_pending_list_with_filters(client: httpx.AsyncClient) -> None:
    assert (await client.get("/api/pending")).json() == []
    await post(client, "/api/commands/request-stop", STOP)
    everything = (await client.get("/api/pending")).json()
    assert sorted((item["kind"], item["account_id"]) for item in everything) == [
        ("start", "A-LL-01"), ("start", "A-LL-01"), ("stop", "A-TN-01"), ("stop", "A-TN-01")]
    assert {(item["date"], item["days_from_today"], item["due"]) for item in everything} == {
        ("2025-03-10", 7, False)}
    stops = (await client.get("/api/pending", params={"kind": "stop"})).json()
    assert [item["sa_id"] for item in stops] == ["SA-TN01-E", "SA-TN01-G"]
    assert (await client.get("/api/pending", params={"due": "true"})).json() == []
    first = await client.get("/api/pending", params={"limit": 3})
    assert first.json() == everything[:3]
    assert first.headers["X-Total-Count"] == "4"
    # The next page starts where the first ended; past the end, an empty page.
    rest = await client.get("/api/pending", params={"limit": 3, "offset": 3})
    assert (rest.json(), rest.headers["X-Total-Count"]) == (everything[3:], "4")
    beyond = await client.get("/api/pending", params={"offset": 4})
    assert (beyond.json(), beyond.headers["X-Total-Count"]) == ([], "4")
    # Or right after the first page's last SA, by the cursor it came with; the last page
    # comes with none.
    after = await client.get("/api/pending", params={"limit": 3,
                                                     "after": first.headers["X-Next-After"]})
    assert after.json() == everything[3:]
    assert "X-Next-After" not in after.headers
    assert "X-Next-After" not in rest.headers
    # A place in another list (a worklist's: priority, time, id) is not one in this.
    response = await client.get("/api/pending", params={"after": "WzEsIngiLCJ5Il0"})
    assert problem(response, 422, "validation")["errors"][0]["field"] == "query.after"
    response = await client.get("/api/pending", params={"offset": -1})
    assert problem(response, 422, "validation")["errors"][0]["field"] == "query.offset"
    response = await client.get("/api/pending", params={"limit": 0})
    assert problem(response, 422, "validation")["errors"][0]["field"] == "query.limit"


async def test_pending_list_refuses_an_unknown_kind(shared_client: httpx.AsyncClient) -> None:
    response = await shared_client.get("/api/pending", params={"kind": "maybe"})
    assert problem(response, 422, "validation")["errors"][0]["field"] == "query.kind"
