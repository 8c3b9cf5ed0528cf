"""Consuming a batch in one transaction is the same as consuming its records one by one: the
same decisions, acknowledgements, dead letters, state rows and positions, whatever the records
(shared service points, subs and their master, duplicates, rejections, positions seen before)
and however the stream is cut into batches."""

from __future__ import annotations

import datetime as dt
import itertools
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sync.mdm.commands import MdmCommand, UpsertContact, UpsertServicePoint
from sync.mdm.decision import Outcome
from sync.mdm.model import ContactPhone, UsStatus
from sync.mdm.ports import (
    BatchItem,
    ConsumedPosition,
    ConsumeItem,
    DeadLetterItem,
    DeadLetterRecord,
)
from sync.storage.mdm import MdmStore
from tests.contract.test_mdm_store import ack_for, dump
from tests.unit.mdm.builders import D, default_admin, us_command

ADMIN = default_admin()
TOPIC = "c2m.sync-requests"
DATES = (D(2025, 1, 1), D(2025, 3, 1), D(2025, 6, 1), D(2025, 9, 1))


@st.composite
def commands(draw: st.DrawFn) -> MdmCommand:
    kind = draw(st.sampled_from(["us", "us", "us", "sub", "sp", "contact"]))
    version = draw(st.integers(1, 4))
    if kind == "sp":
        return UpsertServicePoint(sp_id=draw(st.sampled_from(["SP-1", "SP-2", "SP-3"])),
                                  sp_type=draw(st.sampled_from(["E-RES", "NOPE"])),
                                  version=version)
    if kind == "contact":
        return UpsertContact(contact_id="PER-1", name=draw(st.sampled_from(["A,B", "C,D"])),
                             version=version,
                             phones=(ContactPhone(number="555-0100", primary=True),))
    start = draw(st.sampled_from(DATES[:3]))
    end = draw(st.one_of(st.none(), st.sampled_from([d for d in DATES if d > start])))
    status = draw(st.sampled_from(["10", "20", "30"])) if end is None else \
        draw(st.sampled_from(["30", "40"]))
    external_id = draw(st.sampled_from(["SA-1", "SA-2", "SA-3"]))
    sp_ids = draw(st.lists(st.sampled_from(["SP-1", "SP-2", "SP-3"]), min_size=1, max_size=2,
                           unique=True))
    fields: dict[str, Any] = {}
    if kind == "sub":
        external_id = draw(st.sampled_from(["SUB-1", "SUB-2"]))
        fields["master_external_id"] = draw(st.sampled_from(["SA-1", "SA-2"]))
    return us_command(external_id, version=version, sa_status=status, start=start, end=end,
                      sp_ids=sp_ids, carry=draw(st.booleans()), **fields)


@st.composite
def streams(draw: st.DrawFn) -> list[BatchItem]:
    items: list[BatchItem] = []
    offsets = {0: 0, 1: 0}
    for _ in range(draw(st.integers(1, 25))):
        partition = draw(st.sampled_from([0, 1]))
        if draw(st.integers(0, 9)) == 0 and offsets[partition] > 0:  # a position seen before
            offset = draw(st.integers(0, offsets[partition] - 1))
        else:
            offset = offsets[partition]
            offsets[partition] += 1
        position = ConsumedPosition(TOPIC, partition, offset)
        if draw(st.integers(0, 7)) == 0:
            items.append(DeadLetterItem(position, DeadLetterRecord(b"k", "bad_json", "{}")))
        else:
            command = draw(st.one_of(st.none(), commands())) if draw(st.booleans()) \
                else draw(commands())
            entity = "SA-1" if command is None else getattr(command, "external_id", "X")
            items.append(ConsumeItem(position, command, ack_for(offset, entity)))
    return items


def fresh_store(folder: Path, name: str) -> MdmStore:
    store = MdmStore(f"sqlite:///{folder / name}.db", ADMIN)
    store.create_schema()
    return store


def one_by_one(store: MdmStore, items: list[BatchItem]) -> list[Any]:
    results: list[Any] = []
    for item in items:
        if isinstance(item, DeadLetterItem):
            results.append(store.dead_letter(item.position, item.record))
        else:
            results.append(store.consume(item.position, item.command, item.acknowledge))
    return results


def in_batches(store: MdmStore, items: list[BatchItem], cuts: list[int]) -> list[Any]:
    results: list[Any] = []
    bounds = [0, *sorted({cut % (len(items) + 1) for cut in cuts}), len(items)]
    for low, high in itertools.pairwise(bounds):
        results += store.consume_batch(items[low:high])
    return results


def comparable(results: list[Any]) -> list[Any]:
    return [result if isinstance(result, bool) or result is None
            else (result.decision, result.ack) for result in results]


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(items=streams(), cuts=st.lists(st.integers(0, 30), max_size=4))
def test_a_batch_is_the_same_as_its_records_one_by_one(items: list[BatchItem],
                                                       cuts: list[int]) -> None:
    with tempfile.TemporaryDirectory() as folder:
        single, batched = fresh_store(Path(folder), "single"), fresh_store(Path(folder), "batch")
        try:
            expected = one_by_one(single, items)
            assert comparable(in_batches(batched, items, cuts)) == comparable(expected)
            assert dump(batched, positions=True) == dump(single, positions=True)
        finally:
            single.dispose()
            batched.dispose()


@pytest.fixture
def store(database_url: str) -> Iterator[MdmStore]:
    created = MdmStore(database_url, ADMIN)
    created.create_schema()
    yield created
    created.dispose()


def test_step_1_5_landlord_after_tenant_stop_in_one_batch(store: MdmStore) -> None:
    """Step 1.5 within one batch: the tenant's stop frees the SP for the landlord's start
    that follows it, and a start overlapping the tenant is still rejected."""
    items: list[BatchItem] = [
        ConsumeItem(ConsumedPosition(TOPIC, 0, 0),
                    us_command("SA-TEN", start=D(2024, 1, 1)), ack_for(1, "SA-TEN")),
        ConsumeItem(ConsumedPosition(TOPIC, 1, 0),
                    us_command("SA-LL", sa_status="10", start=D(2025, 5, 31)),
                    ack_for(1, "SA-LL")),
        ConsumeItem(ConsumedPosition(TOPIC, 0, 1),
                    us_command("SA-TEN", version=2, sa_status="30", start=D(2024, 1, 1),
                               end=D(2025, 6, 1)), ack_for(2, "SA-TEN")),
        ConsumeItem(ConsumedPosition(TOPIC, 1, 1),
                    us_command("SA-LL", version=2, sa_status="10", start=D(2025, 6, 1)),
                    ack_for(2, "SA-LL")),
    ]
    results = store.consume_batch(items)
    outcomes = [getattr(getattr(r, "decision", None), "outcome", None) for r in results]
    assert outcomes == [Outcome.APPLIED, Outcome.REJECTED, Outcome.APPLIED, Outcome.APPLIED]
    tenant, landlord = store.get_us("SA-TEN"), store.get_us("SA-LL")
    assert tenant is not None
    assert tenant.end_date == dt.date(2025, 6, 1)
    assert landlord is not None
    assert landlord.status is UsStatus.PENDING
    assert store.last_positions(TOPIC) == {0: 1, 1: 1}
    assert [e.source.offset for e in store.unpublished(10)] == [0, 0, 1, 1]
    # Consumed once: the same batch again answers nothing and changes nothing.
    before = dump(store, positions=True)
    assert store.consume_batch(items) == [None] * 4
    assert dump(store, positions=True) == before


def test_a_failing_item_rolls_back_the_whole_batch(store: MdmStore) -> None:
    def broken(_decision: object) -> Any:
        raise RuntimeError("ack could not be built")

    items: list[BatchItem] = [
        ConsumeItem(ConsumedPosition(TOPIC, 0, 0), us_command("SA-1"), ack_for(1)),
        ConsumeItem(ConsumedPosition(TOPIC, 0, 1), us_command("SA-2"), broken),
    ]
    with pytest.raises(RuntimeError, match="ack could not be built"):
        store.consume_batch(items)
    assert store.get_us("SA-1") is None
    assert store.last_positions(TOPIC) == {}
    assert store.unpublished(10) == []
