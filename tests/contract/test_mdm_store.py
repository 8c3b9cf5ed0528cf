"""The MDM store port, against SQLite and PostgreSQL (and the in-memory store where the test
needs no database): state and consumed position in one transaction, duplicates and rejections
change nothing, queries by status and SP, and the cross-US check holding under concurrency."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import select, text

from sync.config.admin import AdminConfig
from sync.mdm.commands import MdmCommand, UpsertContact, UpsertServicePoint
from sync.mdm.decision import ApplyDecision, Outcome
from sync.mdm.memory import InMemoryMdmStore
from sync.mdm.model import ContactPhone, FactorOverride, UsStatus
from sync.mdm.ports import (
    AckRecord,
    ConsumedPosition,
    DeadLetterRecord,
    MdmStorePort,
    OutboxKind,
)
from sync.storage import mdm as mdm_storage
from sync.storage.common import create_engine_for
from sync.storage.mdm import MdmStore
from sync.storage.mdm_schema import acknowledgements, consumed_positions, dead_letters, metadata
from tests.unit.mdm.builders import D, default_admin, sp_copy, us_command

ADMIN = default_admin()
TOPIC = "c2m.sync-requests"


@pytest.fixture
def store(database_url: str) -> Iterator[MdmStore]:
    created = MdmStore(database_url, ADMIN)
    created.create_schema()
    yield created
    created.dispose()


@pytest.fixture(params=["memory", "sqlite", "postgresql"])
def port(request: pytest.FixtureRequest) -> Iterator[MdmStorePort]:
    if request.param == "memory":
        yield InMemoryMdmStore(ADMIN)
        return
    url = request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "postgres_url")
    created = MdmStore(url, ADMIN)
    created.create_schema()
    yield created
    created.dispose()


def dump(store: MdmStore, *, positions: bool = False) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every MDM table, in key order (the worker's tables with ``positions``)."""
    with store.engine.connect() as connection:
        return {
            table.name: [tuple(row) for row in connection.execute(
                select(table).order_by(*table.primary_key.columns))]
            for table in metadata.sorted_tables
            if positions or table not in (consumed_positions, acknowledgements, dead_letters)
        }


# --- the port ------------------------------------------------------------------------------


def test_applied_state_reads_back_equal(port: MdmStorePort) -> None:
    command = us_command(
        "SA-1", sa_status="30", end=D(2025, 9, 1), sp_ids=("SP-1", "SP-2"),
        factor_overrides=(FactorOverride(factor="LOSS-FACTOR", value=1.02,
                                         start=D(2025, 3, 1), end=D(2025, 9, 1)),))
    decision = port.apply(command)
    assert decision.outcome is Outcome.APPLIED
    assert port.get_us("SA-1") == decision.usage_subscription
    assert port.get_service_point("SP-2") == sp_copy("SP-2")
    contact = UpsertContact(contact_id="PER-1", name="SMITH,JANE", version=1,
                            phones=(ContactPhone(number="555-0100", primary=True),))
    assert port.apply(contact).applied
    stored = port.get_contact("PER-1")
    assert stored is not None
    assert stored.phones == contact.phones
    assert port.get_us("SA-404") is None


def test_list_by_status_and_by_service_point(port: MdmStorePort) -> None:
    port.apply(us_command("SA-A", sa_status="10", sp_ids=("SP-1",)))
    port.apply(us_command("SA-B", sa_status="20", sp_ids=("SP-2", "SP-3")))
    port.apply(us_command("SA-C", sa_status="40", end=D(2025, 4, 1), sp_ids=("SP-3",),
                          start=D(2025, 1, 1)))
    assert [us.external_id for us in port.list_us()] == ["SA-A", "SA-B", "SA-C"]
    assert [us.external_id for us in port.list_us(status=UsStatus.ACTIVE)] == ["SA-B"]
    assert [us.external_id for us in port.list_us(sp_id="SP-3")] == ["SA-B", "SA-C"]
    assert [us.external_id for us in port.list_us(status=UsStatus.INACTIVE,
                                                  sp_id="SP-3")] == ["SA-C"]


def test_step_1_5_landlord_us_beside_a_stopping_tenant_and_overlap_rejected(
        port: MdmStorePort) -> None:
    """Step 1.5: the landlord pending start takes the SP on the tenant's stop date; a start
    one day earlier overlaps the tenant and is rejected."""
    port.apply(us_command("SA-TEN", sa_status="30", start=D(2024, 1, 1), end=D(2025, 6, 1)))
    early = port.apply(us_command("SA-LL", sa_status="10", start=D(2025, 5, 31)))
    assert [(e.code, e.path) for e in early.errors] == [("D2-USSPDTVAL", "spLinks[0].spId")]
    assert port.apply(us_command("SA-LL", sa_status="10", start=D(2025, 6, 1))).applied


def test_positions_per_partition_whatever_the_outcome(port: MdmStorePort) -> None:
    port.apply(us_command(version=1), ConsumedPosition(TOPIC, 0, 41))
    port.apply(us_command(version=1), ConsumedPosition(TOPIC, 0, 42))  # duplicate
    port.apply(us_command("SA-2", us_type="NOPE"), ConsumedPosition(TOPIC, 2, 7))  # rejected
    port.apply(UpsertServicePoint(sp_id="SP-9", sp_type="E-RES", version=1),
               ConsumedPosition("other-topic", 0, 3))
    port.apply(us_command(version=2), ConsumedPosition(TOPIC, 0, 40))  # a re-read: kept at max
    assert port.last_positions(TOPIC) == {0: 42, 2: 7}
    assert port.last_positions("other-topic") == {0: 3}
    assert port.last_positions("never-read") == {}


# --- database specifics --------------------------------------------------------------------


def test_a_rejected_update_leaves_every_table_byte_for_byte_unchanged(store: MdmStore) -> None:
    store.apply(us_command("SA-1", version=1), ConsumedPosition(TOPIC, 0, 1))
    store.apply(us_command("SA-2", version=1, sp_ids=("SP-2",)), ConsumedPosition(TOPIC, 1, 1))
    before = dump(store)
    bad = us_command("SA-1", version=2, time_zone="Europe/Paris", end=D(2025, 2, 1),
                     service_points=(sp_copy(version=2, mc_class="therm"),),
                     sp_ids=("SP-1", "SP-2"))
    decision = store.apply(bad, ConsumedPosition(TOPIC, 0, 2))
    assert decision.outcome is Outcome.REJECTED
    assert {e.code for e in decision.errors} >= {"MDM-APPLY", "D2-VALUSTMZN", "D2-USSPDTVAL",
                                                 "D2-VALUSMC"}
    assert dump(store) == before
    assert store.last_positions(TOPIC) == {0: 2, 1: 1}


def test_a_duplicate_leaves_every_table_unchanged(store: MdmStore) -> None:
    store.apply(us_command(version=3))
    before = dump(store)
    decision = store.apply(us_command(version=2, sa_status="40", end=D(2025, 4, 1)))
    assert decision.outcome is Outcome.DUPLICATE
    assert dump(store) == before


def test_state_and_position_commit_together(store: MdmStore,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*_: object) -> None:
        raise RuntimeError("position write failed")

    monkeypatch.setattr(mdm_storage, "record_position", broken)
    with pytest.raises(RuntimeError, match="position write failed"):
        store.apply(us_command(), ConsumedPosition(TOPIC, 0, 5))
    assert store.get_us("SA-1") is None
    assert store.get_service_point("SP-1") is None
    monkeypatch.undo()
    store.apply(us_command(), ConsumedPosition(TOPIC, 0, 5))
    assert store.get_us("SA-1") is not None
    assert store.last_positions(TOPIC) == {0: 5}


def test_an_update_replaces_child_rows(store: MdmStore) -> None:
    store.apply(us_command(version=1, sp_ids=("SP-1", "SP-2", "SP-3")))
    store.apply(us_command(version=2, sp_ids=("SP-3",)))
    us = store.get_us("SA-1")
    assert us is not None
    assert [link.sp_id for link in us.sp_links] == ["SP-3"]
    assert store.list_us(sp_id="SP-1") == []
    links = dump(store)["mdm_us_sp_links"]
    assert [(row[0], row[1], row[2]) for row in links] == [("SA-1", 0, "SP-3")]


def test_us_sharing_sps_returns_other_non_inactive_subscriptions_of_the_type(
        store: MdmStore) -> None:
    store.apply(us_command("SA-A", start=D(2024, 1, 1), end=D(2025, 1, 1), sa_status="30"))
    store.apply(us_command("SA-B", start=D(2025, 1, 1)))
    store.apply(us_command("SA-C", start=D(2023, 1, 1), end=D(2024, 1, 1), sa_status="40"))
    sharing = store.us_sharing_sps(["SP-1"], "E-RES-US", excluding="SA-B")
    assert [us.external_id for us in sharing] == ["SA-A"]
    assert store.us_sharing_sps(["SP-1"], "G-RES-US", excluding="SA-B") == []


def test_sqlite_engine_settings(sqlite_url: str) -> None:
    engine = create_engine_for(sqlite_url)
    with engine.connect() as connection:
        assert connection.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert connection.execute(text("PRAGMA foreign_keys")).scalar() == 1
        assert connection.execute(text("PRAGMA busy_timeout")).scalar() == 30_000
    engine.dispose()
    assert create_engine_for("postgresql://u@localhost/db").url.drivername == \
        "postgresql+psycopg"


# --- concurrency ---------------------------------------------------------------------------


def _race(store: MdmStore, commands: list[MdmCommand]) -> list[ApplyDecision]:
    barrier = threading.Barrier(len(commands))
    results: list[ApplyDecision | BaseException] = [RuntimeError("not run")] * len(commands)

    def run(index: int) -> None:
        barrier.wait()
        try:
            results[index] = store.apply(commands[index])
        except BaseException as error:  # reported by the assertion below
            results[index] = error

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(commands))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    decisions = [r for r in results if isinstance(r, ApplyDecision)]
    assert len(decisions) == len(commands), results
    return decisions


@pytest.mark.parametrize("sp_exists", [False, True], ids=["new-sp", "known-sp"])
def test_two_writers_cannot_both_put_one_sp_in_overlapping_subscriptions(
        store: MdmStore, sp_exists: bool) -> None:
    for round_number in range(4):
        sp_id = f"SP-R{round_number}"
        if sp_exists:
            store.apply(UpsertServicePoint(sp_id=sp_id, sp_type="E-RES", version=1,
                                           measuring_components=sp_copy().measuring_components))
        contenders: list[MdmCommand] = [
            us_command(f"SA-{round_number}-{name}", sp_ids=(sp_id,), carry=not sp_exists)
            for name in ("A", "B", "C")]
        outcomes = sorted(d.outcome.value for d in _race(store, contenders))
        assert outcomes == ["APPLIED", "REJECTED", "REJECTED"]
        assert len(store.list_us(sp_id=sp_id)) == 1


def test_sub_limit_holds_under_concurrent_subs(store: MdmStore, admin_with_one_sub: AdminConfig,
                                               database_url: str) -> None:
    limited = MdmStore(database_url, admin_with_one_sub)
    try:
        assert limited.apply(us_command("SA-M", start=D(2024, 1, 1))).applied
        subs: list[MdmCommand] = [
            us_command(f"SA-S{i}", master_external_id="SA-M", sp_ids=(f"SP-S{i}",))
            for i in range(3)]
        outcomes = sorted(d.outcome.value for d in _race(limited, subs))
        assert outcomes == ["APPLIED", "REJECTED", "REJECTED"]
    finally:
        limited.dispose()


@pytest.fixture
def admin_with_one_sub() -> AdminConfig:
    us_type = ADMIN.us_types["E-RES-US"].model_copy(update={"max_sub_us": 1})
    return ADMIN.model_copy(update={"us_types": {**ADMIN.us_types, "E-RES-US": us_type}})


# --- the worker's outbox: consume, dead letters, publication --------------------------------


def ack_for(command_version: int, entity_id: str = "SA-1") -> Any:
    """An ``acknowledge`` callable recording the decision's outcome in a small document."""
    def acknowledge(decision: ApplyDecision | None) -> AckRecord:
        outcome = "SYNCHRONIZED" if decision is None else decision.outcome.value
        return AckRecord(sync_request_id=f"SR-{entity_id}-{command_version}", entity_type="SA",
                         entity_id=entity_id, version=command_version, outcome=outcome,
                         document=f'{{"outcome": "{outcome}"}}')
    return acknowledge


def test_consume_stores_state_position_and_ack_together(store: MdmStore) -> None:
    consumed = store.consume(ConsumedPosition(TOPIC, 1, 7), us_command(version=1), ack_for(1))
    assert consumed is not None
    assert consumed.decision is not None
    assert consumed.decision.outcome is Outcome.APPLIED
    assert consumed.ack.outcome == "APPLIED"
    assert store.get_us("SA-1") is not None
    assert store.last_positions(TOPIC) == {1: 7}
    [entry] = store.unpublished(100)
    assert (entry.kind, entry.key, entry.value) == (
        OutboxKind.ACKNOWLEDGEMENT, b"SA:SA-1", b'{"outcome": "APPLIED"}')
    assert entry.source == ConsumedPosition(TOPIC, 1, 7)


def test_a_position_is_consumed_once_whatever_comes_again(store: MdmStore) -> None:
    position = ConsumedPosition(TOPIC, 0, 3)
    assert store.consume(position, us_command(version=1), ack_for(1)) is not None
    before = dump(store, positions=True)
    # The same position again, even with a newer command, changes nothing: it was consumed.
    assert store.consume(position, us_command(version=2, sa_status="30", end=D(2025, 9, 1)),
                         ack_for(2)) is None
    assert store.consume(position, None, ack_for(2)) is None
    assert store.dead_letter(position, DeadLetterRecord(b"k", "bad_json", "{}")) is False
    assert dump(store, positions=True) == before


def test_a_dead_lettered_position_is_not_consumed_again(store: MdmStore) -> None:
    position = ConsumedPosition(TOPIC, 2, 0)
    assert store.dead_letter(position, DeadLetterRecord(b"\xff key", "bad_json", '{"x": 1}'))
    assert store.last_positions(TOPIC) == {2: 0}
    assert store.consume(position, us_command(), ack_for(1)) is None
    assert store.get_us("SA-1") is None
    [entry] = store.unpublished(10)
    assert (entry.kind, entry.key, entry.value) == (
        OutboxKind.DEAD_LETTER, b"\xff key", b'{"x": 1}')


def test_message_without_command_is_acknowledged_with_its_position(store: MdmStore) -> None:
    consumed = store.consume(ConsumedPosition(TOPIC, 0, 9), None, ack_for(4, "SA-SUB"))
    assert consumed is not None
    assert consumed.decision is None
    assert store.last_positions(TOPIC) == {0: 9}
    assert [e.key for e in store.unpublished(10)] == [b"SA:SA-SUB"]


def test_state_position_and_ack_commit_together(store: MdmStore) -> None:
    def broken(_: ApplyDecision | None) -> AckRecord:
        raise RuntimeError("ack could not be built")

    with pytest.raises(RuntimeError, match="ack could not be built"):
        store.consume(ConsumedPosition(TOPIC, 0, 5), us_command(), broken)
    assert store.get_us("SA-1") is None
    assert store.last_positions(TOPIC) == {}
    assert store.unpublished(10) == []


def test_unpublished_in_consumption_order_until_marked_published(store: MdmStore) -> None:
    for offset, version in enumerate((1, 2, 2)):
        store.consume(ConsumedPosition(TOPIC, 0, offset), us_command(version=version),
                      ack_for(version))
    store.dead_letter(ConsumedPosition(TOPIC, 0, 3), DeadLetterRecord(None, "bad_json", "{}"))
    pending = store.unpublished(100)
    assert [(e.kind, e.source.offset) for e in pending] == [
        (OutboxKind.ACKNOWLEDGEMENT, 0), (OutboxKind.ACKNOWLEDGEMENT, 1),
        (OutboxKind.ACKNOWLEDGEMENT, 2), (OutboxKind.DEAD_LETTER, 3)]
    assert [e.value for e in pending[:3]] == [
        b'{"outcome": "APPLIED"}', b'{"outcome": "APPLIED"}', b'{"outcome": "DUPLICATE"}']
    assert [e.source.offset for e in store.unpublished(2)] == [0, 1, 3]  # limit per kind
    store.mark_published(pending[:2], dt.datetime(2025, 3, 1, 12, tzinfo=dt.UTC))
    assert [e.source.offset for e in store.unpublished(100)] == [2, 3]
    store.mark_published(store.unpublished(100), dt.datetime(2025, 3, 1, 12, tzinfo=dt.UTC))
    assert store.unpublished(100) == []


def test_purge_removes_the_acknowledgements_published_before_the_cutoff(
        store: MdmStore) -> None:
    """Published before the cutoff: removed, chunk after chunk. Published at or after it,
    unpublished, or a dead letter: kept. A record of a purged position consumed again (the
    worker resumes after its stored positions, so only a consumer sought back by hand would)
    is answered as a duplicate and changes nothing; a second purge removes nothing."""
    early = dt.datetime(2025, 3, 1, 12, tzinfo=dt.UTC)
    cutoff = dt.datetime(2025, 3, 2, tzinfo=dt.UTC)
    for offset in range(7):
        store.consume(ConsumedPosition(TOPIC, 0, offset), us_command(version=offset + 1),
                      ack_for(offset + 1))
    store.dead_letter(ConsumedPosition(TOPIC, 0, 7), DeadLetterRecord(None, "bad_json", "{}"))
    answers = store.unpublished(100)
    acks = [entry for entry in answers if entry.kind is OutboxKind.ACKNOWLEDGEMENT]
    store.mark_published([acks[0], acks[1], acks[3], acks[4],
                          *(e for e in answers if e.kind is OutboxKind.DEAD_LETTER)], early)
    store.mark_published([acks[5]], cutoff)  # at the cutoff: kept, and the scan stops there
    store.mark_published([acks[6]], early)  # after it in seq order: not reached, kept
    assert store.purge_published(cutoff, chunk=2) == 4
    assert store.unpublished(100) == [acks[2]]
    with store.engine.connect() as connection:
        left = [(row.source_offset, row.published_at is not None) for row in connection.execute(
            select(acknowledgements).order_by(acknowledgements.c.seq))]
        letters = connection.execute(select(dead_letters)).all()
    assert left == [(2, False), (5, True), (6, True)]
    assert len(letters) == 1
    before = store.get_us("SA-1")
    again = store.consume(ConsumedPosition(TOPIC, 0, 0), us_command(version=1), ack_for(1))
    assert again is not None
    assert again.decision is not None
    assert again.decision.outcome is Outcome.DUPLICATE
    assert store.get_us("SA-1") == before
    assert store.purge_published(cutoff, chunk=2) == 0


def test_answers_are_marked_published_by_kind_and_source_position(store: MdmStore) -> None:
    """Only the rows of the answers given: the same offset of another partition, or of the
    other kind's outbox, stays unpublished."""
    for partition in (0, 1):
        for offset in range(3):
            store.consume(ConsumedPosition(TOPIC, partition, offset), us_command(version=1),
                          ack_for(1))
        store.dead_letter(ConsumedPosition(TOPIC, partition, 3),
                          DeadLetterRecord(None, "bad_json", "{}"))
    pending = store.unpublished(100)
    at = dt.datetime(2025, 3, 1, 12, tzinfo=dt.UTC)
    chosen = [e for e in pending if (e.source.partition, e.source.offset) in {(0, 0), (0, 2),
                                                                              (1, 3)}]
    store.mark_published(chosen, at)
    assert store.unpublished(100) == [e for e in pending if e not in chosen]
    store.mark_published([], at)
    with store.engine.connect() as connection:
        marked = {(row.source_partition, row.source_offset, row.published_at)
                  for table in (acknowledgements, dead_letters)
                  for row in connection.execute(select(table).where(
                      table.c.published_at.is_not(None)))}
    assert {(p, o) for p, o, _ in marked} == {(0, 0), (0, 2), (1, 3)}
    assert {when.replace(tzinfo=dt.UTC) if when.tzinfo is None else when
            for _, _, when in marked} == {at}


def test_two_consumers_of_one_position_apply_it_once(store: MdmStore) -> None:
    position = ConsumedPosition(TOPIC, 0, 11)
    barrier = threading.Barrier(3)
    results: list[object] = []

    def run(version: int) -> None:
        barrier.wait()
        results.append(store.consume(position, us_command(version=version), ack_for(version)))

    threads = [threading.Thread(target=run, args=(v,)) for v in (1, 2, 3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(result is None for result in results) == [False, True, True]
    assert len(dump(store, positions=True)["mdm_acknowledgements"]) == 1


def test_ping_reports_an_unreachable_store(tmp_path: Any) -> None:
    unreachable = MdmStore(f"sqlite:///{tmp_path}/missing/dir/mdm.db", ADMIN)
    with pytest.raises(Exception, match="unable to open database file"):
        unreachable.ping()
    unreachable.dispose()
