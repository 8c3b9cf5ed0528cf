"""``c2m-sync ccb`` as a CSR drives it: load the landlord/tenant building, stop a tenant, follow
the landlord reversion, work To Do entries and contacts; every refusal is one line and a
non-zero exit."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, func, select

from sync.cli import main
from sync.storage import ccb_schema

SAMPLE = Path(__file__).resolve().parents[2] / "examples" / "premise-landlord.yaml"


class Cli:
    def __init__(self, url: str, capsys: pytest.CaptureFixture[str]) -> None:
        self.url = url
        self.capsys = capsys

    def run(self, *args: str, business_date: str = "2025-03-03") -> tuple[int, str, str]:
        code = main(["--ccb-db-url", self.url, "--business-date", business_date, *args])
        out, err = self.capsys.readouterr()
        return code, out, err

    def json(self, *args: str, **options: str) -> Any:
        code, out, err = self.run(*args, "--json", **options)
        assert code == 0, err
        return json.loads(out)

    def fails(self, *args: str) -> str:
        code, _out, err = self.run(*args)
        assert code != 0
        assert "Traceback" not in err
        lines = err.strip().splitlines()
        assert lines[0].startswith("error: ")
        return err.strip()

    def row_counts(self) -> dict[str, int]:
        engine = create_engine(self.url.replace("postgresql://", "postgresql+psycopg://"))
        with engine.connect() as connection:
            counts = {table.name: connection.execute(
                select(func.count()).select_from(table)).scalar_one()
                for table in ccb_schema.metadata.tables.values()}
        engine.dispose()
        return counts


@pytest.fixture
def cli(sqlite_url: str, capsys: pytest.CaptureFixture[str]) -> Cli:
    return Cli(sqlite_url, capsys)


def test_load_reports_what_it_loaded_and_is_repeatable(cli: Cli) -> None:
    first = cli.json("ccb", "load", str(SAMPLE))
    assert any("6 service agreements" in note for note in first["notes"])
    assert {"entity_type": "SA", "entity_id": "SA-TN01-E"} in first["changed"]
    again = cli.json("ccb", "load", str(SAMPLE))
    assert again["sas"]["SA-TN01-E"]["version"] == 2


def test_a_bad_load_file_names_every_problem_and_changes_nothing(cli: Cli,
                                                                 tmp_path: Path) -> None:
    cli.json("ccb", "load", str(SAMPLE))
    before = cli.row_counts()
    bad = tmp_path / "bad.yaml"
    bad.write_text(SAMPLE.read_text().replace("sp_type: G-RES, meter_id: M-G-550341",
                                              "sp_type: G-XX, meter_id: M-G-550341")
                   .replace("account_id: A-TN-02, sa_type: E-RES",
                            "account_id: A-NOBODY, sa_type: E-RES"))
    message = cli.fails("ccb", "load", str(bad))
    assert f"{bad}: service_points[1] (SP-4410-1G): sp_type: unknown SP type 'G-XX'" in message
    assert (f"{bad}: service_agreements[2] (SA-TN02-E): account_id: unknown account "
            "'A-NOBODY'") in message
    assert cli.row_counts() == before


def test_a_missing_file_is_one_line(cli: Cli, tmp_path: Path) -> None:
    message = cli.fails("ccb", "load", str(tmp_path / "none.yaml"))
    assert message == f"error: {tmp_path / 'none.yaml'}: cannot read file: No such file or " \
                      "directory"


def test_a_load_file_that_is_not_utf8_names_the_byte_and_loads_nothing(
        cli: Cli, tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.bin"
    garbage.write_bytes(b"persons:\n  - {id: P-1, name: \"M\xfcller,Jo\"}\n")  # Latin-1
    cli.json("ccb", "load", str(SAMPLE))
    before = cli.row_counts()
    assert cli.fails("ccb", "load", str(garbage)) == (
        f"error: {garbage}: cannot read file: not UTF-8 text at byte 32 (line 2)")
    assert cli.row_counts() == before


def test_a_load_file_with_a_meter_read_that_is_not_finite_names_it_and_loads_nothing(
        cli: Cli, tmp_path: Path) -> None:
    text = SAMPLE.read_text("utf-8")
    read = "value: 22391.0 }"
    assert read in text
    infinite = tmp_path / "infinite.yaml"
    infinite.write_text(text.replace(read, "value: .inf }", 1), "utf-8")
    cli.json("ccb", "load", str(SAMPLE))  # a loaded store, which the bad file leaves alone
    before = cli.row_counts()
    assert cli.fails("ccb", "load", str(infinite)) == (
        f"error: {infinite}: 1 problem, nothing loaded\n{infinite}: meter_reads[1] "
        "(RD-1E-202502): value: Input should be a finite number (got inf)")
    assert cli.row_counts() == before


def test_a_load_file_with_a_byte_order_mark_loads(cli: Cli, tmp_path: Path) -> None:
    marked = tmp_path / "marked.yaml"
    marked.write_bytes(b"\xef\xbb\xbf" + SAMPLE.read_bytes())
    assert any("6 service agreements" in note
               for note in cli.json("ccb", "load", str(marked))["notes"])


def test_step_1_6_complete_fa_refuses_a_read_that_is_not_finite(cli: Cli) -> None:
    cli.json("ccb", "load", str(SAMPLE))
    cli.json("ccb", "request-stop", "A-TN-01", "--stop-date", "2025-03-14", "--sa", "SA-TN01-E")
    before = cli.row_counts()
    for value in ("inf", "nan", "-inf", "1e400"):
        with pytest.raises(SystemExit) as usage:
            cli.run("ccb", "complete-fa", "FA-1", f"--read={value}")
        assert usage.value.code == 2
        err = cli.capsys.readouterr().err
        assert f"argument --read: not a finite number: {value!r}" in err
        assert "Traceback" not in err
    assert cli.row_counts() == before
    assert cli.json("ccb", "sa", "SA-TN01-E")["field_activities"][0]["status"] == "pending"


@pytest.mark.parametrize("by", ["name", "address", "phone", "account", "sa"])
def test_step_1_0_a_search_longer_than_200_characters_is_refused(cli: Cli, by: str) -> None:
    cli.json("ccb", "load", str(SAMPLE))
    # 60,000 characters made a LIKE pattern SQLite refuses as too complex: a traceback.
    assert cli.fails("ccb", "search", by, "7" * 60_000) == (
        f"error: search {by!r}: query: 60000 characters long; at most 200 allowed")
    assert cli.json("ccb", "search", by, "7" * 200)["hits"] == []


def test_step_1_1_to_4_7_stop_a_tenant_and_the_landlord_takes_over(cli: Cli) -> None:
    cli.json("ccb", "load", str(SAMPLE))
    result = cli.json("ccb", "request-stop", "A-TN-01", "--stop-date", "2025-03-31",
                      "--premise", "PR-4410-1", "--user", "csr1",
                      "--forward-line1", "918 S Wabash Ave", "--forward-city", "Chicago",
                      "--forward-state", "IL", "--forward-postal-code", "60605")
    assert result["sas"]["SA-TN01-E"]["status"] == "30"
    landlord_sas = [sa_id for sa_id, sa in result["sas"].items() if sa["status"] == "10"]
    assert len(landlord_sas) == 2  # electric always, gas in its heating season
    shown = cli.json("ccb", "sa", "SA-TN01-E")
    assert shown["sa"]["forwarding_address"]["line1"] == "918 S Wabash Ave"
    assert [entry["action"] for entry in shown["sa"]["audit"]] == ["load", "request stop"]
    assert shown["links"][0]["stop_date"] == "2025-03-31"
    assert [fa["purpose"] for fa in shown["field_activities"]] == ["stop"]
    landlord = cli.json("ccb", "account", "A-LL-01")
    assert {alert["kind"] for alert in landlord["alerts"]} >= {"PendingStartAlert",
                                                               "LandlordIndicator"}
    changes = cli.json("ccb", "changes", "--after", "0", "--limit", "1000")
    assert {"SA-TN01-E", *landlord_sas} <= {c["entity_id"] for c in changes}


def test_step_5_4_to_5_6_cancel_the_stop_and_the_landlord_start_goes(cli: Cli) -> None:
    cli.json("ccb", "load", str(SAMPLE))
    stopped = cli.json("ccb", "request-stop", "A-TN-01", "--stop-date", "2025-03-31",
                       "--sa", "SA-TN01-E")
    landlord_sa = next(sa_id for sa_id, sa in stopped["sas"].items() if sa["status"] == "10")
    canceled = cli.json("ccb", "cancel-stop", "SA-TN01-E")
    assert canceled["sas"]["SA-TN01-E"]["status"] == "20"
    assert canceled["sas"][landlord_sa]["status"] == "70"


def test_step_4_8_to_5_3_change_the_stop_date_and_the_landlord_start_follows(cli: Cli) -> None:
    cli.json("ccb", "load", str(SAMPLE))
    stopped = cli.json("ccb", "request-stop", "A-TN-02", "--stop-date", "2025-03-31",
                       "--sa", "SA-TN02-E")
    landlord_sa = next(sa_id for sa_id, sa in stopped["sas"].items() if sa["status"] == "10")
    moved = cli.json("ccb", "change-stop-date", "SA-TN02-E", "--stop-date", "2025-04-10")
    assert moved["sas"]["SA-TN02-E"]["end_date"] == "2025-04-10"
    assert moved["sas"][landlord_sa]["start_date"] == "2025-04-10"


def test_step_1_0_search_finds_the_customer_with_the_account_view(cli: Cli) -> None:
    cli.json("ccb", "load", str(SAMPLE))
    found = cli.json("ccb", "search", "phone", "773-555-0112")
    assert [hit["person_id"] for hit in found["hits"]] == ["P-TN-01"]
    assert [sa["sa_id"] for sa in found["hits"][0]["accounts"][0]["sas"]] == ["SA-TN01-E",
                                                                            "SA-TN01-G"]
    by_address = cli.json("ccb", "search", "address", "clarendon ave, unit 2")
    assert [hit["person_id"] for hit in by_address["hits"]] == ["P-TN-02"]


def test_premise_show_lists_the_building_with_its_units(cli: Cli) -> None:
    cli.json("ccb", "load", str(SAMPLE))
    tree = cli.json("ccb", "premise", "PR-4410")["premises"]
    assert [node["premise"]["id"] for node in tree] == ["PR-4410", "PR-4410-1", "PR-4410-2",
                                                        "PR-4410-3"]
    assert tree[0]["landlord_agreement"]["id"] == "LA-4410"
    assert [sp["id"] for sp in tree[3]["service_points"]] == ["SP-4410-3E", "SP-4410-3G"]


def test_step_6_1_to_6_4_to_do_work_and_contacts(cli: Cli) -> None:
    cli.json("ccb", "load", str(SAMPLE))
    added = cli.json("ccb", "contact", "add", "P-TN-01", "--type", "INQUIRY", "--account",
                     "A-TN-01", "--comments", "asked about the final bill", "--open",
                     "--user", "csr1")
    contact_id = added["contacts"][0]
    cli.json("ccb", "contact", "log", contact_id, "called back", "--user", "csr1")
    cli.json("ccb", "contact", "remind", contact_id, "--on", "2025-03-05", "--to-role", "CSR")
    listed = cli.json("ccb", "contact", "list", "P-TN-01")
    assert listed[0]["id"] == contact_id
    assert [entry["comment"] for entry in listed[0]["log"]] == ["called back"]
    assert cli.json("ccb", "todo", "list", "--role", "CSR") == []


def test_refusals_are_one_line_and_change_nothing(cli: Cli) -> None:
    cli.json("ccb", "load", str(SAMPLE))
    before = cli.row_counts()
    assert cli.fails("ccb", "cancel-start", "SA-TN01-E") == (
        "error: SA 'SA-TN01-E' in status 20 (active) cannot cancel pending start")
    assert "SA-NOPE" in cli.fails("ccb", "sa", "SA-NOPE")
    assert cli.fails("ccb", "request-stop", "A-TN-01", "--stop-date", "2022-01-01", "--sa",
                     "SA-TN01-E") == ("error: SA 'SA-TN01-E': stop_date: 2022-01-01 is before "
                                      "the start date 2023-06-01")
    assert cli.fails("ccb", "todo", "take", "TD-9") == "error: To Do 'TD-9' not found (todo_id)"
    message = cli.fails("ccb", "request-stop", "A-TN-01", "--stop-date", "2025-03-31",
                        "--forward-line1", "918 S Wabash Ave")
    assert message.startswith("error: forwarding address: missing --forward-city")
    assert cli.row_counts() == before


@pytest.mark.postgres
def test_the_same_flow_runs_on_postgresql(postgres_url: str,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    cli = Cli(postgres_url, capsys)
    cli.json("ccb", "load", str(SAMPLE))
    stopped = cli.json("ccb", "request-stop", "A-TN-01", "--stop-date", "2025-03-31",
                       "--premise", "PR-4410-1")
    assert stopped["sas"]["SA-TN01-G"]["status"] == "30"
    assert cli.fails("ccb", "cancel-start", "SA-TN01-E").startswith("error: SA 'SA-TN01-E'")
    assert cli.json("ccb", "sa", "SA-TN01-G")["sa"]["version"] == 2
