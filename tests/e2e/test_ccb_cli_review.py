"""``c2m-sync ccb`` for steps 2.0–2.3: review a pending stop, change person and account details,
set the forwarding address of a pending stop."""

from __future__ import annotations

import json

import pytest

from .test_ccb_cli import SAMPLE, Cli

ADDRESS = json.dumps({"line1": "918 S Wabash Ave", "city": "Chicago", "state": "IL",
                      "postal_code": "60605"})


@pytest.fixture
def cli(sqlite_url: str, capsys: pytest.CaptureFixture[str]) -> Cli:
    loaded = Cli(sqlite_url, capsys)
    loaded.json("ccb", "load", str(SAMPLE))
    return loaded


def test_step_2_1_sa_impact_names_the_next_start_and_what_moves(cli: Cli) -> None:
    stopped = cli.json("ccb", "request-stop", "A-TN-01", "--stop-date", "2025-03-31",
                       "--sa", "SA-TN01-E")
    landlord_sa = next(sa_id for sa_id, sa in stopped["sas"].items() if sa["status"] == "10")
    impact = cli.json("ccb", "sa", "impact", "SA-TN01-E")
    assert impact["stop_date"] == "2025-03-31"
    assert impact["next_start"]["id"] == landlord_sa
    assert impact["next_start"]["account_id"] == "A-LL-01"
    assert len(impact["pending_field_activities"]) == 1
    code, out, _err = cli.run("ccb", "sa", "impact", "SA-TN01-E")
    assert code == 0
    assert f"next start: SA {landlord_sa}" in out
    assert cli.json("ccb", "sa", "SA-TN01-E")["sa"]["id"] == "SA-TN01-E"  # the plain view
    assert "has no pending stop" in cli.fails("ccb", "sa", "impact", "SA-TN01-G")
    assert "expected 'sa ID' or 'sa impact ID'" in cli.fails("ccb", "sa", "x", "SA-TN01-E")


def test_step_2_2_person_update(cli: Cli) -> None:
    result = cli.json("ccb", "person", "update", "P-TN-01", "--email", "tn01@example.com",
                      "--phone", "cell:312-555-0101", "--mailing-address", ADDRESS)
    assert {"entity_type": "PERSON", "entity_id": "P-TN-01"} in result["changed"]
    assert len(result["contacts"]) == 1
    account = cli.json("ccb", "account", "A-TN-01")
    person = account["main_person"]
    assert person["email"] == "tn01@example.com"
    assert person["phones"] == [{"type": "cell", "number": "312-555-0101", "primary": True}]
    assert person["mailing_address"]["city"] == "Chicago"
    before = cli.row_counts()
    assert "C2M-PERNMVAL" in cli.fails("ccb", "person", "update", "P-TN-01", "--name", "bad")
    assert "--mailing-address: not an address" in cli.fails(
        "ccb", "person", "update", "P-TN-01", "--mailing-address", '{"line1": "x"}')
    assert cli.row_counts() == before


def test_step_2_2_account_update(cli: Cli) -> None:
    result = cli.json("ccb", "account", "update", "A-TN-01", "--mailing-address", ADDRESS,
                      "--bill-cycle", "BC07")
    assert any("bill_cycle" in note for note in result["notes"])
    account = cli.json("ccb", "account", "A-TN-01")["account"]
    assert (account["bill_cycle"], account["mailing_premise_id"]) == ("BC07", None)
    assert account["mailing_address"]["line1"] == "918 S Wabash Ave"
    assert account["version"] == 2
    assert "premise 'PR-NOPE' not found" in cli.fails(
        "ccb", "account", "update", "A-TN-01", "--mailing-premise", "PR-NOPE")


def test_step_2_3_set_forwarding_address(cli: Cli) -> None:
    cli.json("ccb", "request-stop", "A-TN-01", "--stop-date", "2025-03-31", "--sa", "SA-TN01-E")
    result = cli.json("ccb", "set-forwarding-address", "SA-TN01-E", "--address", ADDRESS)
    assert result["sas"]["SA-TN01-E"]["status"] == "30"
    assert result["sas"]["SA-TN01-E"]["end_date"] == "2025-03-31"
    shown = cli.json("ccb", "sa", "SA-TN01-E")
    assert shown["sa"]["forwarding_address"]["city"] == "Chicago"
    cleared = cli.json("ccb", "set-forwarding-address", "SA-TN01-E", "--clear")
    assert cleared["sas"]["SA-TN01-E"]["status"] == "30"
    assert cli.json("ccb", "sa", "SA-TN01-E")["sa"]["forwarding_address"] is None
    assert "in status 20" in cli.fails("ccb", "set-forwarding-address", "SA-TN01-G",
                                       "--address", ADDRESS)
