"""The MDM batch's readers by key (driver-level ``IN`` lists, or arrays on PostgreSQL) find
exactly what the general readers (a SQLAlchemy condition) find, and a stream consumed in
batches leaves the same rows and answers as its records one by one, on both databases."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

import pytest

from sync.mdm.commands import UpsertContact, UpsertServicePoint
from sync.mdm.model import ContactPhone, FactorOverride, MeasuringComponent, UsageGroupAssignment
from sync.mdm.ports import (
    BatchItem,
    ConsumedPosition,
    ConsumeItem,
    DeadLetterItem,
    DeadLetterRecord,
)
from sync.storage import mdm_schema as t
from sync.storage.mdm import MdmStore
from sync.storage.mdm_rows import (
    load_service_points,
    load_service_points_by_id,
    load_subscriptions,
    load_subscriptions_by,
    load_subscriptions_by_id,
)
from tests.contract.test_mdm_batch import comparable, in_batches, one_by_one
from tests.contract.test_mdm_store import ack_for, dump
from tests.unit.mdm.builders import D, default_admin, sp_copy, us_command

ADMIN = default_admin()
TOPIC = "c2m.sync-requests"


def _store(url: str) -> MdmStore:
    store = MdmStore(url, ADMIN)
    store.create_schema()
    return store


@pytest.fixture
def store(database_url: str) -> Iterator[MdmStore]:
    created = _store(database_url)
    yield created
    created.dispose()


def _fill(store: MdmStore) -> None:
    overrides = (FactorOverride(factor="LOSS-FACTOR", value=1.02, start=D(2025, 3, 1),
                                end=D(2025, 5, 1)),
                 FactorOverride(factor="CT-MULTIPLIER", value=-0.0, start=D(2025, 3, 1)))
    groups = (UsageGroupAssignment(group="E-RES-LEGACY", start=D(2020, 1, 1),
                                   end=D(2024, 1, 1)),
              UsageGroupAssignment(group="E-RES-TOU", start=D(2024, 1, 1)))
    two_meters = sp_copy("SP-2", components=(
        MeasuringComponent(mc_id="MC-2B", mc_class="kWh"),
        MeasuringComponent(mc_id="MC-2A", mc_class="kW", channel="demand")))
    for command in (
        us_command("SA-1", sp_ids=("SP-1",), factor_overrides=overrides),
        us_command("SA-2", sa_status="30", end=D(2025, 9, 1), sp_ids=("SP-3", "SP-4"),
                   start=D(2020, 1, 1), usage_groups=groups),
        us_command("SA-3", sp_ids=("SP-5",), service_points=(two_meters, sp_copy("SP-5")),
                   sp_links=us_command(sp_ids=("SP-5", "SP-2")).sp_links),
        us_command("SUB-1", sp_ids=("SP-1",), master_external_id="SA-1"),
        us_command("SUB-2", sp_ids=("SP-6",), master_external_id="SA-1", version=3),
    ):
        assert store.apply(command).applied, command.external_id


def test_readers_by_key_find_what_the_general_readers_find(store: MdmStore) -> None:
    _fill(store)
    us, sp = t.usage_subscriptions.c, t.service_points.c
    ids = ["SUB-2", "SA-1", "SA-404", "SA-2", "SA-3", "SUB-1", "SA-1"]
    sp_ids = ["SP-2", "SP-404", "SP-1", "SP-3", "SP-5", "SP-6", "SP-4"]
    with store.engine.connect() as connection:
        found = load_subscriptions_by_id(connection, ids)
        assert found == load_subscriptions(connection, us.external_id.in_(ids))
        assert [s.external_id for s in found] == ["SA-1", "SA-2", "SA-3", "SUB-1", "SUB-2"]
        assert found[0].factor_overrides[1].value == -0.0
        assert len(found[1].usage_groups) == 2
        assert load_subscriptions_by(connection, "master_external_id", ["SA-1", "SA-9"]) == \
            load_subscriptions(connection, us.master_external_id.in_(["SA-1", "SA-9"]))
        sps = load_service_points_by_id(connection, sp_ids)
        assert sps == load_service_points(connection, sp.sp_id.in_(sp_ids))
        assert [mc.mc_id for mc in sps[1].measuring_components] == ["MC-2B", "MC-2A"]
        assert load_subscriptions_by_id(connection, []) == []


def _stream() -> list[BatchItem]:
    def at(partition: int, offset: int) -> ConsumedPosition:
        return ConsumedPosition(TOPIC, partition, offset)

    def item(partition: int, offset: int, command: Any, entity: str, version: int = 1
             ) -> ConsumeItem:
        return ConsumeItem(at(partition, offset), command, ack_for(version, entity))

    return [
        item(0, 0, us_command("SA-1", sp_ids=("SP-1", "SP-2")), "SA-1"),
        item(1, 0, us_command("SA-2", sp_ids=("SP-2",)), "SA-2"),  # SP-2 is SA-1's: rejected
        item(0, 1, us_command("SA-1", version=2, sa_status="30", end=D(2025, 6, 1),
                              sp_ids=("SP-1", "SP-2")), "SA-1", 2),
        item(1, 1, us_command("SA-2", version=2, start=D(2025, 6, 1), sp_ids=("SP-2",)),
             "SA-2", 2),  # after SA-1's stop: applied
        item(0, 2, us_command("SA-1", version=2, sa_status="30", end=D(2025, 6, 1),
                              sp_ids=("SP-1", "SP-2")), "SA-1", 2),  # a duplicate
        DeadLetterItem(at(1, 2), DeadLetterRecord(b"SA:SA-9", "bad_json", "{}")),
        item(0, 3, UpsertServicePoint(sp_id="SP-3", sp_type="E-RES", version=1), "SP-3"),
        item(0, 4, UpsertServicePoint(sp_id="SP-3", sp_type="E-RES", version=2,
                                      meter_id="M-NEW"), "SP-3", 2),
        item(1, 3, UpsertContact(contact_id="PER-1", name="SMITH,JANE", version=1,
                                 phones=(ContactPhone(number="555-0100", primary=True),)),
             "PER-1"),
        item(1, 4, us_command("SUB-1", sp_ids=("SP-1",), master_external_id="SA-1",
                              end=D(2025, 6, 1), sa_status="30"), "SUB-1"),
        item(0, 1, us_command("SA-1", version=3, sp_ids=("SP-1",)), "SA-1", 3),  # seen before
        item(1, 5, None, "SA-1"),
        item(0, 5, us_command("SA-3", sp_ids=("SP-5",), factor_overrides=(FactorOverride(
            factor="LOSS-FACTOR", value=0.5, start=D(2025, 3, 1)),)), "SA-3"),
        item(0, 6, us_command("SA-3", version=2, sp_ids=("SP-5",)), "SA-3", 2),
    ]


@pytest.mark.parametrize("cuts", [[], [3, 7, 11], [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]])
def test_a_stream_in_batches_is_the_same_as_one_by_one(database_url: str,
                                                       postgres_or_sqlite_second_url: str,
                                                       cuts: list[int]) -> None:
    single, batched = _store(database_url), _store(postgres_or_sqlite_second_url)
    try:
        items = _stream()
        expected = one_by_one(single, items)
        assert comparable(in_batches(batched, items, cuts)) == comparable(expected)
        assert dump(batched, positions=True) == dump(single, positions=True)
        # Again, every record read twice: answered once, nothing changes.
        before = dump(batched, positions=True)
        for low, high in itertools.pairwise([0, 5, len(items)]):
            assert all(result in (None, False)
                       for result in batched.consume_batch(items[low:high]))
        assert dump(batched, positions=True) == before
    finally:
        single.dispose()
        batched.dispose()
