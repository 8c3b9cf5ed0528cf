"""CCB commands over HTTP: each is one unit of work answering what changed, and bad input
(invalid date, unknown id, a refused transition) is a problem that changes nothing."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from sync.api.problems import domain_kind
from sync.api.runtime import Runtime
from sync.ccb.errors import ConcurrentUpdateError
from sync.mapping.snapshots import SnapshotError
from sync.storage.ccb import CcbStoreError
from tests.api.support import entity_change_count, post, problem

STOP = {"account_id": "A-TN-01", "stop_date": "2025-03-10", "premise_id": "PR-4410-1",
        "user": "csr1"}
START = {"account_id": "A-TN-03", "sa_type": "E-RES", "start_date": "2025-03-15",
         "premise_id": "PR-4410-3", "user": "csr1"}
ADDRESS = {"line1": "918 S Wabash Ave", "line2": "Apt 1204", "city": "Chicago",
           "state": "IL", "postal_code": "60605"}


async def command(client: httpx.AsyncClient, name: str, body: dict[str, Any]
                  ) -> dict[str, Any]:
    response = await post(client, f"/api/commands/{name}", body)
    assert response.status_code == 200, response.text
    document: dict[str, Any] = response.json()
    return document


async def sa(client: httpx.AsyncClient, sa_id: str) -> dict[str, Any]:
    document: dict[str, Any] = (await client.get(f"/api/sas/{sa_id}")).json()
    return document


def new_sa(changes: dict[str, Any], account_id: str | None = None) -> str:
    """The id of the SA the command created (the one not in the sample building)."""
    [sa_id] = [sa_id for sa_id in changes["sas"] if sa_id.startswith("SA-")
               and sa_id.split("-")[1].isdigit()]
    return sa_id


async def landlord_start(client: httpx.AsyncClient, changes: dict[str, Any],
                         sa_type: str) -> str:
    """The landlord SA of ``sa_type`` the reversion started (step 4.7)."""
    for sa_id in changes["sas"]:
        details = (await sa(client, sa_id))["sa"]
        if details["account_id"] == "A-LL-01" and details["sa_type"] == sa_type:
            return sa_id
    raise AssertionError(f"no landlord {sa_type} SA in {sorted(changes['sas'])}")


async def test_step_1_1_request_stop_moves_the_sas_to_pending_stop_and_reverts_4_7(
        client: httpx.AsyncClient) -> None:
    changes = await command(client, "request-stop", {**STOP, "forwarding_address": ADDRESS})
    assert {sa_id: change["status"] for sa_id, change in changes["sas"].items()
            if sa_id.startswith("SA-TN01")} == {"SA-TN01-E": "30", "SA-TN01-G": "30"}
    landlord = [change for sa_id, change in changes["sas"].items()
                if not sa_id.startswith("SA-TN01")]
    assert [(c["status"], c["start_date"]) for c in landlord] == [("10", "2025-03-10")] * 2
    assert len(changes["field_activities"]) == 4
    assert len(changes["contacts"]) >= 1
    assert {"entity_type": "SA", "entity_id": "SA-TN01-E"} in changes["changed"]
    details = await sa(client, "SA-TN01-E")
    assert details["sa"]["end_date"] == "2025-03-10"
    assert details["sa"]["forwarding_address"]["line1"] == "918 S Wabash Ave"  # step 1.8
    assert details["sa"]["audit"][-1]["user"] == "csr1"


@pytest.mark.parametrize(("body", "status", "kind", "text"), [
    ({**STOP, "stop_date": "2025-03-32"}, 422, "validation", "body.stop_date"),
    ({**STOP, "stop_date": "0001-01-01"}, 422, "validation", "between 1900-01-01"),
    ({**STOP, "account_id": "A-404"}, 404, "not-found", "account 'A-404' not found"),
    ({**STOP, "stop_date": "2020-01-01"}, 422, "invalid-command", "stop_date"),
    ({**STOP, "forwarding_address": {"line1": "x"}}, 422, "validation",
     "body.forwarding_address.city"),
])
async def test_request_stop_refuses_bad_input_and_changes_nothing(
        client: httpx.AsyncClient, runtime: Runtime, body: dict[str, Any], status: int,
        kind: str, text: str) -> None:
    before = entity_change_count(runtime)
    document = problem(await post(client, "/api/commands/request-stop", body), status, kind)
    assert text in document["detail"]
    assert entity_change_count(runtime) == before
    assert (await sa(client, "SA-TN01-E"))["sa"]["status"] == "20"


async def test_start_service_creates_a_pending_start(client: httpx.AsyncClient) -> None:
    changes = await command(client, "start-service", START)
    sa_id = new_sa(changes)
    assert changes["sas"][sa_id]["status"] == "10"
    assert (await sa(client, sa_id))["sa"]["account_id"] == "A-TN-03"


async def test_start_service_refuses_an_unknown_sa_type(client: httpx.AsyncClient) -> None:
    response = await post(client, "/api/commands/start-service", {**START, "sa_type": "X-RES"})
    assert problem(response, 422, "invalid-command")["detail"] == (
        "account 'A-TN-03': sa_type: unknown SA type 'X-RES'")


async def test_steps_4_8_to_5_3_change_stop_date_moves_the_landlord_start(
        client: httpx.AsyncClient) -> None:
    stopped = await command(client, "request-stop", STOP)
    changes = await command(client, "change-stop-date", {"sa_id": "SA-TN01-E",
                                                         "stop_date": "2025-03-12",
                                                         "user": "csr1"})
    assert changes["sas"]["SA-TN01-E"]["end_date"] == "2025-03-12"
    landlord_e = await landlord_start(client, stopped, "E-RES")
    assert (await sa(client, landlord_e))["sa"]["start_date"] == "2025-03-12"


async def test_change_stop_date_of_an_active_sa_is_a_conflict(
        client: httpx.AsyncClient) -> None:
    response = await post(client, "/api/commands/change-stop-date",
                          {"sa_id": "SA-TN01-E", "stop_date": "2025-03-12", "user": "csr1"})
    assert "SA 'SA-TN01-E' in status 20" in problem(response, 409,
                                                     "invalid-transition")["detail"]


async def test_change_start_date_moves_a_pending_start(client: httpx.AsyncClient) -> None:
    sa_id = new_sa(await command(client, "start-service", START))
    changes = await command(client, "change-start-date", {"sa_id": sa_id,
                                                          "start_date": "2025-03-20",
                                                          "user": "csr1"})
    assert changes["sas"][sa_id]["start_date"] == "2025-03-20"


async def test_change_start_date_refuses_an_invalid_date(client: httpx.AsyncClient) -> None:
    response = await post(client, "/api/commands/change-start-date",
                          {"sa_id": "SA-TN01-E", "start_date": "03/20/2025", "user": "csr1"})
    assert problem(response, 422, "validation")["errors"][0]["field"] == "body.start_date"


async def test_steps_5_4_to_5_6_cancel_stop_cancels_the_landlord_start(
        client: httpx.AsyncClient) -> None:
    stopped = await command(client, "request-stop", STOP)
    landlord = [sa_id for sa_id in stopped["sas"] if not sa_id.startswith("SA-TN01")]
    changes = await command(client, "cancel-stop", {"sa_id": "SA-TN01-E", "user": "csr1"})
    assert changes["sas"]["SA-TN01-E"]["status"] == "20"
    statuses = [(await sa(client, sa_id))["sa"]["status"] for sa_id in landlord]
    assert sorted(statuses) == ["10", "70"]  # only the electric start followed the stop


async def test_cancel_stop_of_an_unknown_sa_is_a_404(client: httpx.AsyncClient) -> None:
    response = await post(client, "/api/commands/cancel-stop", {"sa_id": "SA-9", "user": "u"})
    assert problem(response, 404, "not-found")["detail"] == "SA 'SA-9' not found (sa_id)"


async def test_steps_2_8_2_9_cancel_a_pending_start(client: httpx.AsyncClient) -> None:
    sa_id = new_sa(await command(client, "start-service", START))
    changes = await command(client, "cancel-start", {"sa_id": sa_id, "user": "csr1"})
    assert changes["sas"][sa_id]["status"] == "70"
    again = await post(client, "/api/commands/cancel-start", {"sa_id": sa_id, "user": "csr1"})
    problem(again, 409, "invalid-transition")


async def test_steps_3_2_and_7_6_manual_stop_once_the_fa_is_complete_then_reinstate(
        client: httpx.AsyncClient) -> None:
    stopped = await command(client, "request-stop", {**STOP, "stop_date": "2025-03-03"})
    refused = await post(client, "/api/commands/stop", {"sa_id": "SA-TN01-E", "user": "csr1"})
    assert "stop FA with a read missing" in problem(refused, 409, "invalid-transition")["detail"]
    fa_id = (await sa(client, "SA-TN01-E"))["field_activities"][0]["id"]
    assert fa_id in stopped["field_activities"]
    completed = await command(client, "complete-field-activity",
                              {"fa_id": fa_id, "read_value": 22420.0, "user": "csr1"})
    assert completed["field_activities"] == [fa_id]
    changes = await command(client, "stop", {"sa_id": "SA-TN01-E", "user": "csr1"})
    assert changes["sas"]["SA-TN01-E"]["status"] == "40"
    reinstated = await command(client, "reinstate", {"sa_id": "SA-TN01-E", "user": "csr1"})
    assert reinstated["sas"]["SA-TN01-E"]["status"] == "20"


async def test_complete_field_activity_refuses_a_read_that_is_not_a_number(
        client: httpx.AsyncClient) -> None:
    response = await post(client, "/api/commands/complete-field-activity",
                          {"fa_id": "FA-1", "read_value": "lots", "user": "csr1"})
    assert problem(response, 422, "validation")["errors"][0]["field"] == "body.read_value"


async def test_activate_a_pending_start_once_its_fa_is_complete(
        client: httpx.AsyncClient) -> None:
    stopped = await command(client, "request-stop", {**STOP, "stop_date": "2025-03-03"})
    landlord_e = await landlord_start(client, stopped, "E-RES")
    [fa] = (await sa(client, landlord_e))["field_activities"]
    await command(client, "complete-field-activity", {"fa_id": fa["id"], "read_value": 22420.0,
                                                      "user": "csr1"})
    changes = await command(client, "activate", {"sa_id": landlord_e, "user": "csr1"})
    assert changes["sas"][landlord_e]["status"] == "20"


async def test_activate_an_active_sa_is_a_conflict(client: httpx.AsyncClient) -> None:
    response = await post(client, "/api/commands/activate", {"sa_id": "SA-TN02-E",
                                                             "user": "csr1"})
    problem(response, 409, "invalid-transition")


async def test_steps_6_5_to_7_2_cancel_sa_needs_every_ft_canceled_first(
        client: httpx.AsyncClient) -> None:
    added = await command(client, "add-financial-transaction", {
        "sa_id": "SA-TN02-E", "kind": "bill_segment", "amount": "42.10", "user": "billing1"})
    [ft_id] = added["financial_transactions"]
    assert (await sa(client, "SA-TN02-E"))["balance"] == "42.10"
    refused = await post(client, "/api/commands/cancel-sa", {"sa_id": "SA-TN02-E",
                                                             "user": "billing1"})
    assert f"financial transaction {ft_id} not canceled" in problem(
        refused, 409, "invalid-transition")["detail"]
    await command(client, "cancel-financial-transaction", {"ft_id": ft_id,
                                                           "reason": "SA-CANCEL",
                                                           "user": "billing1"})
    assert (await sa(client, "SA-TN02-E"))["balance"] == "0.00"
    changes = await command(client, "cancel-sa", {"sa_id": "SA-TN02-E", "user": "billing1"})
    assert changes["sas"]["SA-TN02-E"]["status"] == "70"


@pytest.mark.parametrize(("body", "field"), [
    ({"kind": "bill_segment", "amount": "1.005"}, "body.amount"),
    ({"kind": "bill_segment", "amount": "NaN"}, "body.amount"),
    ({"kind": "gift", "amount": "1"}, "body.kind"),
])
async def test_add_financial_transaction_refuses_bad_amounts_and_kinds(
        client: httpx.AsyncClient, body: dict[str, Any], field: str) -> None:
    response = await post(client, "/api/commands/add-financial-transaction",
                          {"sa_id": "SA-TN02-E", "user": "billing1", **body})
    assert [e["field"] for e in problem(response, 422, "validation")["errors"]] == [field]


async def test_cancel_financial_transaction_of_an_unknown_ft_is_a_404(
        client: httpx.AsyncClient) -> None:
    response = await post(client, "/api/commands/cancel-financial-transaction",
                          {"ft_id": "FT-9", "reason": "ENTRY-ERROR", "user": "billing1"})
    problem(response, 404, "not-found")


async def test_reinstate_an_active_sa_is_a_conflict(client: httpx.AsyncClient) -> None:
    response = await post(client, "/api/commands/reinstate", {"sa_id": "SA-TN02-E",
                                                              "user": "csr1"})
    problem(response, 409, "invalid-transition")


async def test_premise_management_assign_group_and_stop_at_children(
        client: httpx.AsyncClient) -> None:
    assigned = await command(client, "assign-landlord-agreement", {
        "agreement_id": "LA-4410", "premise_ids": ["PR-4410-1"], "user": "csr1"})
    assert assigned["notes"]
    premise = (await client.get("/api/premises/PR-4410-1")).json()["premise"]["premise"]
    assert premise["landlord_agreement_id"] == "LA-4410"
    grouped = await command(client, "group-premises", {
        "parent_premise_id": "PR-4410", "premise_ids": ["PR-4410-1"], "user": "csr1"})
    assert grouped["notes"]
    stopped = await command(client, "stop-at-child-premises", {
        "account_id": "A-TN-01", "parent_premise_id": "PR-4410", "stop_date": "2025-03-10",
        "user": "csr1"})
    assert stopped["sas"]["SA-TN01-E"]["status"] == "30"
    assert stopped["sas"]["SA-TN01-G"]["status"] == "30"


@pytest.mark.parametrize(("name", "body", "status", "text"), [
    ("assign-landlord-agreement", {"agreement_id": "LA-9", "premise_ids": ["PR-4410-1"]}, 404,
     "landlord agreement 'LA-9' not found"),
    ("group-premises", {"parent_premise_id": "PR-9", "premise_ids": ["PR-4410-1"]}, 404,
     "premise 'PR-9' not found"),
    ("stop-at-child-premises", {"account_id": "A-TN-01", "parent_premise_id": "PR-4410",
                                "stop_date": "2025-3-10"}, 422, "body.stop_date"),
])
async def test_premise_management_refuses_bad_input(client: httpx.AsyncClient, name: str,
                                                    body: dict[str, Any], status: int,
                                                    text: str) -> None:
    response = await post(client, f"/api/commands/{name}", {**body, "user": "csr1"})
    assert text in response.json()["detail"]
    assert response.status_code == status


async def test_step_2_2_change_person_and_account_details(client: httpx.AsyncClient) -> None:
    person = await command(client, "change-person-details", {
        "person_id": "P-TN-01", "email": "chidi@example.org", "user": "csr1"})
    assert {"entity_type": "PERSON", "entity_id": "P-TN-01"} in person["changed"]
    account = await command(client, "change-account-details", {
        "account_id": "A-TN-01", "mailing_address": ADDRESS, "user": "csr1"})
    assert account["notes"]
    view = (await client.get("/api/accounts/A-TN-01")).json()
    assert view["persons"][0]["person"]["email"] == "chidi@example.org"
    assert view["account"]["mailing_address"]["line1"] == "918 S Wabash Ave"


@pytest.mark.parametrize(("name", "body", "status", "text"), [
    ("change-person-details", {"person_id": "P-TN-01", "name": "okafor"}, 422, "name"),
    ("change-person-details", {"person_id": "P-9", "email": "a@b.org"}, 404, "P-9"),
    ("change-account-details", {"account_id": "A-TN-01", "mailing_premise_id": "PR-9"}, 404,
     "PR-9"),
])
async def test_details_changes_refuse_bad_input(client: httpx.AsyncClient, name: str,
                                                body: dict[str, Any], status: int,
                                                text: str) -> None:
    response = await post(client, f"/api/commands/{name}", {**body, "user": "csr1"})
    assert text in response.json()["detail"]
    assert response.status_code == status


async def test_step_2_3_set_and_clear_the_forwarding_address(client: httpx.AsyncClient) -> None:
    await command(client, "request-stop", STOP)
    await command(client, "set-forwarding-address", {"sa_id": "SA-TN01-E",
                                                     "forwarding_address": ADDRESS,
                                                     "user": "csr1"})
    assert (await sa(client, "SA-TN01-E"))["sa"]["forwarding_address"]["city"] == "Chicago"
    await command(client, "set-forwarding-address", {"sa_id": "SA-TN01-E",
                                                     "forwarding_address": None,
                                                     "user": "csr1"})
    assert (await sa(client, "SA-TN01-E"))["sa"]["forwarding_address"] is None


async def test_set_forwarding_address_of_an_active_sa_is_refused(
        client: httpx.AsyncClient) -> None:
    response = await post(client, "/api/commands/set-forwarding-address",
                          {"sa_id": "SA-TN02-E", "forwarding_address": ADDRESS, "user": "csr1"})
    assert "only a pending stop (30) carries a forwarding address" in problem(
        response, 409, "invalid-transition")["detail"]


@pytest.mark.parametrize(("error", "kind", "status"), [
    (ConcurrentUpdateError("SA-1", version_read=3), "concurrent-update", 409),
    (CcbStoreError("the database refused the change"), "refused", 409),
    (SnapshotError("SA", "SA-1", "account_id", "account 'A-9' not found"),
     "not-synchronizable", 409),
])
def test_store_refusals_are_conflicts(error: Exception, kind: str, status: int) -> None:
    from sync.api.problems import KINDS

    assert domain_kind(error) == kind
    assert KINDS[kind][0] == status
