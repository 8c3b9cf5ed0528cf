"""``STOPUPL`` (steps 1.1-1.9 in bulk): a mass stop upload gives exactly what the same stop
requests give one command at a time, on SQLite and PostgreSQL; its bulk view answers every read
as the plain view does; bad rows are reported by number and change nothing."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from sync.batches import JobContext, load_jobs
from sync.batches.ccb_jobs import STOPUPL
from sync.ccb.batches import StopRequestRow, parse_stop_rows
from sync.ccb.commands import RequestStop
from sync.ccb.dispatch import unit_of_work
from sync.ccb.errors import InvalidCommand
from sync.ccb.loading import load_master_data, parse_text
from sync.clock import FixedClock
from sync.config.admin import load_admin_config
from sync.pipeline.stores import open_outbox
from sync.storage import ccb_schema as schema
from sync.storage.ccb_batch_queries import SqlBatchQueries
from sync.storage.ccb_view import SqlCcbView
from sync.storage.outbox import SqlOutbox
from sync.storage.outbox_schema import sync_requests
from sync.storage.stop_prefetch import PrefetchedAccountsView
from tests.faults.support import tenants

EXAMPLE = Path(__file__).parents[2] / "examples" / "premise-landlord.yaml"
ADMIN = load_admin_config()
TODAY = dt.date(2025, 3, 3)
STOP = dt.date(2025, 3, 14)  # gas reverts to the landlord in the heating season too
TENANTS = 12


def _world(url: str, clock: FixedClock) -> SqlOutbox:
    outbox = open_outbox(url, ADMIN, clock)
    for data, name in ((parse_text(EXAMPLE.read_text("utf-8"), "example"), "example"),
                       (tenants(TENANTS), "tenants")):
        outbox.store.execute(load_master_data(data, name, ADMIN, clock.now(), "loader"))
    return outbox


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(TODAY)


@pytest.fixture
def bulk(database_url: str, clock: FixedClock) -> Iterator[SqlOutbox]:
    outbox = _world(database_url, clock)
    yield outbox
    outbox.store.dispose()


@pytest.fixture
def single(postgres_or_sqlite_second_url: str, clock: FixedClock) -> Iterator[SqlOutbox]:
    outbox = _world(postgres_or_sqlite_second_url, clock)
    yield outbox
    outbox.store.dispose()


def _good_rows() -> list[StopRequestRow]:
    rows = [StopRequestRow(1, "A-TN-01", STOP, ("SA-TN01-E",)),
            StopRequestRow(2, "A-TN-02", STOP, premise_id="PR-4410-2",
                           contact_method="letter")]
    rows += [StopRequestRow(3 + n, f"A-T{n:04d}", STOP + dt.timedelta(days=n % 3),
                            (f"SA-T{n:04d}",)) for n in range(TENANTS)]
    return rows


def _run(outbox: SqlOutbox, clock: FixedClock, rows: list[StopRequestRow],
         chunk_size: int) -> Any:
    context = JobContext(admin=ADMIN, clock=clock, store=outbox.store,
                         queries=SqlBatchQueries(outbox.store.engine), chunk_size=chunk_size)
    return STOPUPL.run_rows(context, rows)


def _state(outbox: SqlOutbox) -> dict[str, list[dict[str, Any]]]:
    """Every CCB row that a stop request writes, and the sync requests' snapshots (without
    their request ids and versions, which count units of work, not outcomes)."""
    tables = (schema.service_agreements, schema.sa_sp_links, schema.field_activities,
              schema.contacts, schema.todos, schema.accounts, schema.persons)
    with outbox.store.engine.connect() as connection:
        state = {table.name: [{key: value for key, value in row.items() if key != "version"}
                              for row in connection.execute(
                                  select(table).order_by(table.c.id)).mappings()]
                 for table in tables}
        latest: dict[tuple[str, str], dict[str, Any]] = {}
        for row in connection.execute(select(sync_requests).order_by(
                sync_requests.c.seq)).mappings():
            snapshot = json.loads(row["payload"])
            for key in ("syncRequestId", "version"):
                snapshot.pop(key, None)
            latest[(row["entity_type"], row["entity_id"])] = snapshot
    state["snapshots"] = [{"entity": list(key), **value}
                          for key, value in sorted(latest.items())]
    return state


def test_steps_1_1_to_1_9_a_stop_upload_equals_the_same_requests_one_at_a_time(
        bulk: SqlOutbox, single: SqlOutbox, clock: FixedClock) -> None:
    rows = _good_rows()
    report = _run(bulk, clock, rows, chunk_size=5)
    assert (report.changed, report.errors) == (len(rows), [])
    for row in rows:
        command = RequestStop(account_id=row.account_id, stop_date=row.stop_date,
                              sa_ids=row.sa_ids, premise_id=row.premise_id, user="STOPUPL",
                              contact_method=row.contact_method or "phone")
        single.store.execute(unit_of_work(command, ADMIN, TODAY, clock.now()))
    expected = _state(single)
    assert _state(bulk) == expected
    # What the rows did, in the business's terms: the tenants' SAs are pending stops and the
    # landlord's reversion starts are pending at the units (electric and in-season gas).
    sas = {row["id"]: row for row in expected["ccb_service_agreements"]}
    assert {sas[sa]["status"] for sa in ("SA-TN01-E", "SA-TN02-E", "SA-TN02-G")} == {"30"}
    assert sas["SA-TN01-G"]["status"] == "20"
    reverted = [sa for sa in sas.values()
                if sa["account_id"] == "A-LL-01" and sa["status"] == "10"]
    assert sorted(sa["premise_id"] for sa in reverted) == ["PR-4410-1", "PR-4410-2",
                                                           "PR-4410-2"]
    assert len(expected["ccb_contacts"]) >= len(rows)


def test_step_1_1_bad_rows_are_reported_by_number_and_the_good_rows_apply(
        bulk: SqlOutbox, clock: FixedClock, tmp_path: Path) -> None:
    upload = tmp_path / "stops.csv"
    upload.write_text(
        "account_id,stop_date,sa_ids,premise_id\n"
        "A-T0000,2025-03-14,SA-T0000,\n"          # 1 good
        "A-T0001,2025-02-30,SA-T0001,\n"          # 2 no such date
        "A-NOPE,2025-03-14,SA-T0002,\n"           # 3 unknown account
        "A-T0003,2025-03-14,,\n"                  # 4 neither SAs nor premise
        "A-T0004,2025-03-14,SA-T0004 SA-NOPE,\n"  # 5 one unknown SA: the whole row refused
        ",2025-03-14,SA-T0005,\n"                 # 6 no account
        "A-T0000,2025-03-21,SA-T0000,\n"          # 7 the SA is a pending stop by row 1
        "A-T0006,2025-03-14,SA-T0006,\n",         # 8 good
        "utf-8")
    before = _state(bulk)
    context = JobContext(admin=ADMIN, clock=clock, store=bulk.store,
                         queries=SqlBatchQueries(bulk.store.engine), file=upload,
                         chunk_size=4)
    report = load_jobs().run("STOPUPL", context)
    assert report.changed == 2
    reasons = {int(error.entity_id): error.reason for error in report.errors}
    assert sorted(reasons) == [2, 3, 4, 5, 6, 7]
    assert "stop_date: '2025-02-30' is not a date" in reasons[2]
    assert "A-NOPE" in reasons[3]
    assert "name the SAs (sa_ids) or a premise (premise_id)" in reasons[4]
    assert "SA-NOPE" in reasons[5]
    assert reasons[6] == "missing account_id"
    assert "SA-T0000" in reasons[7]
    assert "pending stop" in reasons[7]
    after = _state(bulk)
    sas_before = {row["id"]: row for row in before["ccb_service_agreements"]}
    sas_after = {row["id"]: row for row in after["ccb_service_agreements"]}
    assert sorted(sa_id for sa_id, row in sas_after.items()
                  if sas_before.get(sa_id) != row) == ["SA-T0000", "SA-T0006"]
    assert len(after["ccb_contacts"]) == len(before["ccb_contacts"]) + 2
    sa = next(row for row in after["ccb_service_agreements"] if row["id"] == "SA-T0000")
    assert sa["end_date"] == dt.date(2025, 3, 14)  # row 1's date, not row 7's


def test_a_stop_upload_that_is_not_a_table_is_refused_naming_the_file() -> None:
    with pytest.raises(InvalidCommand, match=r"stops\.csv.*missing column\(s\) stop_date"):
        parse_stop_rows("account_id,when\nA-1,2025-03-14\n", "stops.csv")
    with pytest.raises(InvalidCommand, match=r"stops\.json.*not valid JSON"):
        parse_stop_rows("[{", "stops.json")
    rows, problems = parse_stop_rows(json.dumps([
        {"account_id": "A-1", "stop_date": "2025-03-14", "sa_ids": ["SA-1", "SA-2"]},
        {"account_id": "A-2", "stop_date": "2025-03-14", "sa_ids": [3]}]), "stops.json")
    assert rows == [StopRequestRow(1, "A-1", STOP, ("SA-1", "SA-2"))]
    assert [(p.row, p.reason) for p in problems] == [
        (2, "account 'A-2': sa_ids: [3] is not a list of SA ids")]


def test_step_1_1_a_stop_upload_row_with_more_or_fewer_fields_than_the_header_is_bad(
        ) -> None:
    rows, problems = parse_stop_rows(
        "account_id,stop_date,sa_ids\n"
        "A-1,2025-03-14,SA-1\n"
        "A-2,2025-03-14,SA-2,SA-3\n"     # an unquoted list: its second SA a field too many
        "A-3,2025-03-14\n"
        "\n"                              # a blank line is no row
        "A-4,2025-03-14,SA-4 SA-5\n", "stops.csv")
    assert rows == [StopRequestRow(1, "A-1", STOP, ("SA-1",)),
                    StopRequestRow(4, "A-4", STOP, ("SA-4", "SA-5"))]
    assert [(p.row, p.reason) for p in problems] == [
        (2, "4 fields where the header has 3"), (3, "2 fields where the header has 3")]
    with pytest.raises(InvalidCommand, match=r"stops\.csv.*header: column\(s\) named more than"
                                             r" once: stop_date$"):
        parse_stop_rows("account_id,stop_date,stop_date\nA-1,2025-03-14,2025-03-31\n",
                        "stops.csv")


@pytest.mark.parametrize(("accounts", "stopped_first"), [
    (["A-TN-01", "A-TN-02", "A-LL-01", "A-T0003", "A-NOPE"], False),
    # After the tenants' stops, their landlord's reversion SAs are at their premises and
    # service points: read besides the tenants' own, which the view already holds.
    (["A-TN-01", "A-TN-02", "A-T0003"], True),
], ids=["master-data", "tenants-after-their-stops"])
def test_the_bulk_view_answers_every_read_as_the_plain_view(
        bulk: SqlOutbox, clock: FixedClock, accounts: list[str], stopped_first: bool) -> None:
    if stopped_first:
        assert _run(bulk, clock, _good_rows(), chunk_size=50).changed == len(_good_rows())
    with bulk.store.engine.connect() as connection:
        plain = SqlCcbView(connection)
        fetched = PrefetchedAccountsView(plain, accounts)
        ids = {table.name: [str(value) for value in connection.execute(
            select(table.c.id)).scalars()] for table in (
            schema.accounts, schema.persons, schema.service_agreements, schema.premises,
            schema.service_points, schema.landlord_agreements)}
        reads = [
            *((name, key) for name in ("account", "sas_of_account")
              for key in [*ids["ccb_accounts"], "A-NOPE"]),
            *(("person", key) for key in ids["ccb_persons"]),
            *((name, key) for name in ("sa", "sub_sas", "links_of_sa",
                                       "field_activities_of_sa")
              for key in [*ids["ccb_service_agreements"], "SA-NOPE"]),
            *((name, key) for name in ("premise", "sas_at_premise")
              for key in ids["ccb_premises"]),
            *((name, key) for name in ("service_point", "links_at_sp")
              for key in ids["ccb_service_points"]),
            *(("landlord_agreement", key) for key in ids["ccb_landlord_agreements"]),
        ]
        assert len(reads) > 100
        for name, key in reads:
            assert getattr(fetched, name)(key) == getattr(plain, name)(key), (name, key)
