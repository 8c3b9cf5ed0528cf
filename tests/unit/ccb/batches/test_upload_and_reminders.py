"""FACOMPL (step 1.6): field activities completed from an upload file, bad rows reported and
nothing else changed; TD-CCCB (seed 002): due contact reminders become To Dos."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest

from sync.batches import BatchUsageError
from sync.ccb.commands import CompleteFieldActivity, RequestStop
from sync.ccb.errors import InvalidCommand
from sync.ccb.model import (
    ContactReminder,
    CustomerContact,
    FaPurpose,
    FaStatus,
    MeterRead,
    SaStatus,
    ToDoStatus,
)
from tests.unit.ccb.batches.support import run_batch, todos
from tests.unit.ccb.world import TENANT, TENANT_E, World, day, now_of


def _world_with_fas() -> tuple[World, str, str]:
    """A tenant stop with its stop FA and the landlord's start FA, both pending."""
    world = World()
    world.run(RequestStop(account_id=TENANT, sa_ids=(TENANT_E,), stop_date=day(1)))
    (landlord,) = world.landlord_sas(SaStatus.PENDING_START)
    (stop_fa,) = world.fas(TENANT_E, FaPurpose.STOP)
    (start_fa,) = world.fas(landlord.id, FaPurpose.START)
    return world, stop_fa.id, start_fa.id


def _without(state: dict[str, dict[str, Any]], fa_ids: set[str],
             read_sp_values: set[tuple[str, float]]) -> dict[str, dict[str, Any]]:
    """The store state minus the good rows' FAs and the meter reads their completion added."""
    trimmed = {name: dict(table) for name, table in state.items()}
    for fa_id in fa_ids:
        trimmed["field_activities"].pop(fa_id, None)
    trimmed["reads"] = {key: r for key, r in trimmed["reads"].items()
                        if not (isinstance(r, MeterRead) and (r.sp_id, r.value) in read_sp_values)}
    return trimmed


def test_step_1_6_facompl_applies_good_rows_and_reports_each_bad_row(tmp_path: Path) -> None:
    world, stop_fa, start_fa = _world_with_fas()
    done_fa = stop_fa
    # Complete the stop FA beforehand so that its row is "not pending".
    world.run(CompleteFieldActivity(fa_id=done_fa, read_value=10.0))
    pending = world.store.field_activity(start_fa)
    assert pending is not None
    sp_id = pending.sp_id
    before = world.store.state()
    upload = tmp_path / "completions.csv"
    upload.write_text(
        "fa_id,completed_at,read_value\n"
        f"{start_fa},{day(1).isoformat()}T08:15:00-06:00,5120.5\n"   # row 1: good
        "FA-404,2025-03-04T08:00:00-06:00,10\n"                     # row 2: unknown FA
        f"{start_fa},yesterday,10\n"                                # row 3: bad date
        f"{start_fa},2025-03-04T08:00:00,ten\n"                     # row 4: not a number
        f"{done_fa},2025-03-04T08:00:00,11\n"                       # row 5: not pending
        ",2025-03-04T08:00:00,11\n",                                # row 6: no FA id
        "utf-8")

    report = run_batch(world, "FACOMPL", day(1), file=upload)

    completed = world.store.field_activity(start_fa)
    assert completed is not None
    assert (completed.status, completed.completion_read) == (FaStatus.COMPLETE, 5120.5)
    assert [(e.entity, e.entity_id) for e in report.errors] == [
        ("row", "2"), ("row", "3"), ("row", "4"), ("row", "5"), ("row", "6")]
    reasons = {e.entity_id: e.reason for e in report.errors}
    assert reasons["2"] == "FA 'FA-404' not found (fa_id)"
    assert "completed_at: 'yesterday' is not a date and time" in reasons["3"]
    assert "read_value: 'ten' is not a number" in reasons["4"]
    assert reasons["5"] == f"FA {done_fa!r}: status: is complete, not pending"
    assert reasons["6"] == "missing fa_id"
    assert (report.examined, report.changed) == (6, 1)
    assert _without(world.store.state(), {start_fa}, {(sp_id, 5120.5)}) \
        == _without(before, {start_fa}, set())


def test_step_1_6_facompl_reads_json_rows_and_is_idempotent(tmp_path: Path) -> None:
    world, stop_fa, start_fa = _world_with_fas()
    upload = tmp_path / "completions.json"
    upload.write_text(json.dumps({"rows": [
        {"fa_id": stop_fa, "completed_at": f"{day(1).isoformat()}T09:00:00",
         "read_value": 42},
        {"fa_id": start_fa, "completed_at": f"{day(1).isoformat()}T09:00:00",
         "read_value": "42.0"},
    ]}), "utf-8")

    first = run_batch(world, "FACOMPL", day(1), file=upload)
    assert (first.changed, first.errors) == (2, [])
    completed = world.store.field_activity(stop_fa)
    assert completed is not None
    # Without an offset the time is the installation's base time zone (America/Chicago).
    assert completed.completed_at == dt.datetime(2025, 3, 4, 15, 0, tzinfo=dt.UTC)
    before = world.store.state()

    second = run_batch(world, "FACOMPL", day(1), file=upload)

    assert world.store.state() == before
    assert second.changed == 0
    assert [e.reason.endswith("is complete, not pending") for e in second.errors] == [True, True]


def test_step_1_6_facompl_refuses_a_completion_after_the_business_date(tmp_path: Path) -> None:
    world, stop_fa, _start_fa = _world_with_fas()
    upload = tmp_path / "late.csv"
    upload.write_text(f"fa_id,completed_at,read_value\n{stop_fa},{day(3).isoformat()}T09:00,1\n",
                      "utf-8")

    report = run_batch(world, "FACOMPL", day(1), file=upload)

    assert report.errors[0].reason.startswith(f"FA {stop_fa!r}: completed_at:")
    assert report.changed == 0


def test_step_1_6_facompl_needs_a_file_with_the_right_columns(tmp_path: Path) -> None:
    world, _stop_fa, _start_fa = _world_with_fas()
    with pytest.raises(BatchUsageError, match="FACOMPL needs --file"):
        run_batch(world, "FACOMPL", day(1))
    with pytest.raises(BatchUsageError, match="cannot read file"):
        run_batch(world, "FACOMPL", day(1), file=tmp_path / "missing.csv")
    bad = tmp_path / "bad.csv"
    bad.write_text("fa,when,read\nFA-1,2025-03-04,1\n", "utf-8")
    with pytest.raises(InvalidCommand, match=r"missing column.*fa_id, completed_at, read_value"):
        run_batch(world, "FACOMPL", day(1), file=bad)


def test_step_1_6_facompl_reports_a_row_with_more_or_fewer_fields_than_the_header(
        tmp_path: Path) -> None:
    world, stop_fa, start_fa = _world_with_fas()
    before = world.store.state()
    upload = tmp_path / "completions.csv"
    upload.write_text(
        "fa_id,completed_at,read_value\n"
        f"{stop_fa},{day(1).isoformat()}T09:00:00,18,500\n"   # row 1: "18,500" unquoted
        f"{start_fa},{day(1).isoformat()}T09:00:00\n"         # row 2: the read left out
        f"{start_fa},{day(1).isoformat()}T09:00:00,\"18,500\"\n", "utf-8")  # row 3: quoted

    report = run_batch(world, "FACOMPL", day(1), file=upload)

    assert [(e.entity_id, e.reason) for e in report.errors] == [
        ("1", "4 fields where the header has 3"), ("2", "2 fields where the header has 3"),
        ("3", f"FA {start_fa!r}: read_value: '18,500' is not a number")]
    assert (report.examined, report.changed) == (3, 0)
    assert world.store.state() == before


def test_step_1_6_facompl_applies_good_rows_beside_a_row_of_the_wrong_width(
        tmp_path: Path) -> None:
    world, stop_fa, start_fa = _world_with_fas()
    upload = tmp_path / "completions.csv"
    upload.write_text(
        "fa_id,completed_at,read_value\n"
        f"{stop_fa},{day(1).isoformat()}T09:00:00,18,500\n"
        f"{start_fa},{day(1).isoformat()}T09:00:00,18500\n", "utf-8")

    report = run_batch(world, "FACOMPL", day(1), file=upload)

    assert [(e.entity_id, e.reason) for e in report.errors] == [
        ("1", "4 fields where the header has 3")]
    stop = world.store.field_activity(stop_fa)
    start = world.store.field_activity(start_fa)
    assert stop is not None
    assert start is not None
    assert (stop.status, stop.completion_read) == (FaStatus.PENDING, None)
    assert (start.status, start.completion_read) == (FaStatus.COMPLETE, 18500.0)


def test_step_1_6_facompl_refuses_a_header_naming_a_column_twice(tmp_path: Path) -> None:
    world, stop_fa, _start_fa = _world_with_fas()
    before = world.store.state()
    upload = tmp_path / "twice.csv"
    upload.write_text("fa_id,completed_at,read_value,read_value\n"
                      f"{stop_fa},{day(1).isoformat()}T09:00:00,18,500\n", "utf-8")
    with pytest.raises(InvalidCommand) as raised:
        run_batch(world, "FACOMPL", day(1), file=upload)
    assert str(raised.value) == (f"upload file {str(upload)!r}: header: column(s) named more"
                                 " than once: read_value")
    assert world.store.state() == before


@pytest.mark.parametrize(("name", "content"), [
    ("excel.csv", "fa_id,completed_at,read_value\r\n{fa},{day}T09:00:00,42\r\n"),
    ("rows.json", '[{{"fa_id": "{fa}", "completed_at": "{day}T09:00:00", "read_value": 42}}]'),
    ("rows", '{{"rows": [{{"fa_id": "{fa}", "completed_at": "{day}T09:00", "read_value": 42}}]}}'),
])
def test_step_1_6_facompl_reads_a_file_starting_with_a_byte_order_mark(
        tmp_path: Path, name: str, content: str) -> None:
    world, stop_fa, _start_fa = _world_with_fas()
    upload = tmp_path / name
    # Excel's "CSV UTF-8" (and some editors) begin the file with the UTF-8 byte order mark.
    upload.write_bytes(b"\xef\xbb\xbf"
                       + content.format(fa=stop_fa, day=day(1).isoformat()).encode("utf-8"))

    report = run_batch(world, "FACOMPL", day(1), file=upload)

    assert (report.changed, report.errors) == (1, [])
    completed = world.store.field_activity(stop_fa)
    assert completed is not None
    assert completed.completion_read == 42.0


def test_step_1_6_facompl_refuses_a_file_that_is_not_utf8_naming_the_byte(
        tmp_path: Path) -> None:
    world, stop_fa, _start_fa = _world_with_fas()
    before = world.store.state()
    upload = tmp_path / "latin1.csv"
    upload.write_bytes(b"fa_id,completed_at,read_value\n"
                       + f"{stop_fa},{day(1).isoformat()}T09:00:00,42\n".encode()
                       + b"FA-\xe9,2025-03-04T09:00:00,1\n")
    with pytest.raises(BatchUsageError) as raised:
        run_batch(world, "FACOMPL", day(1), file=upload)
    offset = upload.read_bytes().index(b"\xe9") + 1
    assert str(raised.value) == (f"{upload}: cannot read file: not UTF-8 text at byte {offset}"
                                 " (line 3)")
    assert world.store.state() == before


# --- TD-CCCB --------------------------------------------------------------------------------


def _contact(contact_id: str, *reminders: ContactReminder) -> CustomerContact:
    return CustomerContact(id=contact_id, person_id="P-T", account_id=TENANT,
                           contact_class="RES", contact_type="INQUIRY",
                           contacted_at=now_of(day(-5)), user="csr1",
                           comments="call back about the deposit", reminders=reminders)


def test_seed_002_td_cccb_raises_one_todo_per_contact_for_its_due_reminders() -> None:
    world = World()
    world.store.add(
        _contact("C-1", ContactReminder(trigger_date=day(1), role="CSR"),
                 ContactReminder(trigger_date=day(0), user="csr2", role="CSR"),
                 ContactReminder(trigger_date=day(9), role="CSR")),
        _contact("C-2", ContactReminder(trigger_date=day(1), user="billing1")))

    report = run_batch(world, "TD-CCCB", day(1))

    entries = {e.drill_key.id: e for e in todos(world, "TD-CCREM")}
    assert set(entries) == {"C-1", "C-2"}
    assert (entries["C-1"].role, entries["C-1"].assigned_user) == ("CSR", "csr2")
    assert "call back about the deposit" in entries["C-1"].message
    assert len(entries["C-1"].log) == 2  # created, then the second due reminder logged
    assert (entries["C-2"].role, entries["C-2"].assigned_user) == ("BILLING", "billing1")
    contact = world.store.contact("C-1")
    assert contact is not None
    assert [r.sent for r in contact.reminders] == [True, True, False]
    assert (report.examined, report.todos_raised) == (2, 2)


def test_seed_002_td_cccb_second_run_raises_nothing() -> None:
    world = World()
    world.store.add(_contact("C-1", ContactReminder(trigger_date=day(0), role="CSR")))
    run_batch(world, "TD-CCCB", day(0))
    before = world.store.state()

    second = run_batch(world, "TD-CCCB", day(0))

    assert world.store.state() == before
    assert second.nothing_to_do
    assert len(todos(world, "TD-CCREM", ToDoStatus.OPEN)) == 1
