"""The CCB store contract: the in-memory store and the SQL store (SQLite and PostgreSQL) pass
the same tests."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest

from sync.ccb.changes import Changes
from sync.ccb.errors import ConcurrentUpdateError, InvalidCommand
from sync.ccb.model import (
    DrillKey,
    Person,
    SaStatus,
    ServiceAgreement,
    ToDoEntry,
    ToDoStatus,
)
from sync.ccb.ports import CcbView, IdSource
from tests.contract.ccb_store_support import (
    NOW,
    StoreUnderTest,
    entities_of,
    every_entity,
    store_of_kind,
)


@pytest.fixture(params=["memory", "sqlite",
                        pytest.param("postgresql", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest) -> Iterator[StoreUnderTest]:
    yield from store_of_kind(request, request.param)


@pytest.fixture(params=["memory", pytest.param("postgresql", marks=pytest.mark.postgres)])
def interleaving_store(request: pytest.FixtureRequest) -> Iterator[StoreUnderTest]:
    """Stores where one unit of work can commit while another is between read and write.
    SQLite runs writing units one at a time (BEGIN IMMEDIATE), so there the second unit waits
    for the first instead; the stale-version test covers its version check."""
    yield from store_of_kind(request, request.param)


def _stop_date_moved(sa: ServiceAgreement, end: dt.date) -> ServiceAgreement:
    return sa.model_copy(update={"end_date": end, "version": sa.version + 1})


def test_every_entity_reads_back_as_written(store: StoreUnderTest) -> None:
    written = every_entity()
    store.seed(written)

    def read_all(view: CcbView) -> dict[str, dict[str, object]]:
        lookups = {"persons": view.person, "accounts": view.account, "premises": view.premise,
                   "service_points": view.service_point,
                   "landlord_agreements": view.landlord_agreement, "sas": view.sa,
                   "field_activities": view.field_activity, "todos": view.todo,
                   "contacts": view.contact}
        found: dict[str, dict[str, object]] = {
            name: {key: lookup(key) for key in getattr(written, name)}
            for name, lookup in lookups.items()}
        found["links"] = {link.id: link for link in view.links_of_sa("SA-1")
                          + view.links_of_sa("SA-2")}
        found["reads"] = {read.id: read for read in view.reads_of_sp("SP-1E")}
        found["financial_transactions"] = {
            ft.id: ft for ft in view.financial_transactions_of_sa("SA-1")}
        found["budgets"] = {b.id: b for b in view.budgets_of_account("A-2")}
        found["collection_processes"] = {
            p.id: p for p in view.collection_processes_of_account("A-2")}
        found["severance_processes"] = {
            p.id: p for p in view.severance_processes_of_sa("SA-1")}
        return found

    assert store.read(read_all) == entities_of(written)


def test_the_view_answers_the_relationship_queries(store: StoreUnderTest) -> None:
    store.seed(every_entity())

    def ids(entities: list[object]) -> list[str]:
        return sorted(str(getattr(entity, "id")) for entity in entities)  # noqa: B009

    answers = store.read(lambda view: {
        "children": ids(view.child_premises("PR-1")),
        "sps": ids(view.service_points_at("PR-1-1")),
        "sas_of_account": ids(view.sas_of_account("A-2")),
        "sas_at_premise": ids(view.sas_at_premise("PR-1-1")),
        "subs": ids(view.sub_sas("SA-1")),
        "links_at_sp": ids(view.links_at_sp("SP-1E")),
        "fas": ids(view.field_activities_of_sa("SA-2")),
        "reads_in_time_order": [read.id for read in view.reads_of_sp("SP-1E")],
        "open_todo": view.open_todo("TD-SAACT", DrillKey(kind="sa", id="SA-1")),
        "no_todo": view.open_todo("TD-SAACT", DrillKey(kind="sa", id="SA-2")),
        "missing": (view.sa("SA-9"), view.person("P-9"), view.todo("TD-9"),
                    view.financial_transaction("FT-9")),
        "fts_of_sa": ids(view.financial_transactions_of_sa("SA-1")),
        "fts_of_other_sa": ids(view.financial_transactions_of_sa("SA-2")),
        "ft": view.financial_transaction("FT-1"),
        "by_id": (view.budget("BU-2"), view.collection_process("CP-1"),
                  view.severance_process("SEV-1"), view.budget("CP-1")),
        "budgets_of_other_account": ids(view.budgets_of_account("A-1")),
        "collection_of_other_account": ids(view.collection_processes_of_account("A-1")),
        "severance_of_other_sa": ids(view.severance_processes_of_sa("SA-2")),
    })
    assert answers["children"] == ["PR-1-1", "PR-1-2"]
    assert answers["sps"] == ["SP-1E", "SP-1G"]
    assert answers["sas_of_account"] == ["SA-1"]
    assert answers["sas_at_premise"] == ["SA-1", "SA-2"]
    assert answers["subs"] == ["SA-2"]
    assert answers["links_at_sp"] == ["L-1", "L-2"]
    assert answers["fas"] == ["FA-2"]
    assert answers["reads_in_time_order"] == ["R-1", "R-2"]
    open_todo = answers["open_todo"]
    assert isinstance(open_todo, ToDoEntry)
    assert open_todo.id == "TD-1"
    assert answers["no_todo"] is None
    assert answers["missing"] == (None, None, None, None)
    assert answers["fts_of_sa"] == ["FT-1", "FT-2"]
    assert answers["ft"] == every_entity().financial_transactions["FT-1"]
    written = every_entity()
    assert answers["by_id"] == (written.budgets["BU-2"], written.collection_processes["CP-1"],
                                written.severance_processes["SEV-1"], None)
    assert answers["fts_of_other_sa"] == answers["budgets_of_other_account"] == []
    assert answers["collection_of_other_account"] == answers["severance_of_other_sa"] == []


def test_an_update_carrying_the_next_version_is_written(store: StoreUnderTest) -> None:
    store.seed(every_entity())

    def move_stop(view: CcbView, ids: IdSource) -> Changes:
        sa = view.sa("SA-1")
        assert sa is not None
        changes = Changes()
        changes.put_sa(_stop_date_moved(sa, dt.date(2025, 4, 15)))
        return changes

    store.execute(move_stop)
    stored = store.read(lambda view: view.sa("SA-1"))
    assert stored is not None
    assert (stored.version, stored.end_date) == (2, dt.date(2025, 4, 15))


def test_a_stale_version_is_refused_and_nothing_of_the_unit_is_written(
        store: StoreUnderTest) -> None:
    store.seed(every_entity())
    read_earlier = store.read(lambda view: view.sa("SA-1"))
    assert read_earlier is not None

    def winner(view: CcbView, ids: IdSource) -> Changes:
        sa = view.sa("SA-1")
        assert sa is not None
        changes = Changes()
        changes.put_sa(_stop_date_moved(sa, dt.date(2025, 4, 1)))
        return changes

    store.execute(winner)
    before = store.dump()

    def loser(view: CcbView, ids: IdSource) -> Changes:
        changes = Changes()
        changes.put_person(Person(id="P-NEW", name="ALVAREZ,SOFIA"))
        changes.put_sa(_stop_date_moved(read_earlier, dt.date(2025, 5, 1)))
        return changes

    with pytest.raises(ConcurrentUpdateError) as refused:
        store.execute(loser)
    assert refused.value.entity_id == "SA-1"
    assert refused.value.version_read == 1
    assert store.dump() == before
    assert store.read(lambda view: view.person("P-NEW")) is None


def test_two_units_that_read_the_same_sa_cannot_both_win(
    interleaving_store: StoreUnderTest,
) -> None:
    """Unit A reads SA-1, unit B reads and writes it and commits, then A writes: A loses."""
    store = interleaving_store
    store.seed(every_entity())

    def unit(end: dt.date, before_writing: object = None) -> object:
        def run(view: CcbView, ids: IdSource) -> Changes:
            sa = view.sa("SA-1")
            assert sa is not None
            if callable(before_writing):
                before_writing()
            changes = Changes()
            changes.put_sa(_stop_date_moved(sa, end))
            return changes
        return run

    inner = unit(dt.date(2025, 4, 2))
    outer = unit(dt.date(2025, 4, 3), before_writing=lambda: store.execute(inner))  # type: ignore[arg-type]
    with pytest.raises(ConcurrentUpdateError):
        store.execute(outer)  # type: ignore[arg-type]
    stored = store.read(lambda view: view.sa("SA-1"))
    assert stored is not None
    assert (stored.version, stored.end_date) == (2, dt.date(2025, 4, 2))


def test_creating_an_entity_whose_id_exists_is_a_conflict(store: StoreUnderTest) -> None:
    store.seed(every_entity())
    before = store.dump()

    def create_again(view: CcbView, ids: IdSource) -> Changes:
        changes = Changes()
        changes.put_person(Person(id="P-2", name="OKAFOR,NNAMDI"))
        return changes

    with pytest.raises(ConcurrentUpdateError):
        store.execute(create_again)
    assert store.dump() == before


def test_an_exception_in_the_command_leaves_the_store_unchanged(store: StoreUnderTest) -> None:
    store.seed(every_entity())
    before = store.dump()

    def failing(view: CcbView, ids: IdSource) -> Changes:
        ids.next_id("SA")
        raise InvalidCommand("SA", "SA-1", "stop_date", "before the start date")

    with pytest.raises(InvalidCommand):
        store.execute(failing)
    assert store.dump() == before


def test_a_conflict_late_in_the_unit_rolls_back_what_was_written_before_it(
        store: StoreUnderTest) -> None:
    store.seed(every_entity())
    before = store.dump()
    stale_todo = store.read(lambda view: view.todo("TD-1"))
    assert stale_todo is not None

    def many_writes(view: CcbView, ids: IdSource) -> Changes:
        sa = view.sa("SA-1")
        assert sa is not None
        changes = Changes()
        changes.put_person(Person(id="P-NEW", name="ALVAREZ,SOFIA"))
        changes.put_sa(_stop_date_moved(sa, dt.date(2025, 4, 9)))
        # Written last by both stores: a To Do carrying a version nobody has stored.
        changes.put_todo(stale_todo.model_copy(update={"version": 5}))
        return changes

    with pytest.raises(ConcurrentUpdateError):
        store.execute(many_writes)
    assert store.dump() == before


def test_every_changed_entry_is_recorded_in_order_with_the_unit(store: StoreUnderTest) -> None:
    seeded = every_entity()
    store.seed(seeded)
    assert store.entity_changes() == seeded.changed

    def stop_and_rename(view: CcbView, ids: IdSource) -> Changes:
        sa = view.sa("SA-1")
        person = view.person("P-2")
        assert sa is not None
        assert person is not None
        changes = Changes()
        changes.put_sa(sa.model_copy(update={"status": SaStatus.STOPPED,
                                             "version": sa.version + 1}))
        changes.put_person(person.model_copy(update={"name": "OKAFOR,CHIDI E",
                                                     "version": person.version + 1}))
        return changes

    store.execute(stop_and_rename)
    assert store.entity_changes()[len(seeded.changed):] == [("SA", "SA-1"), ("PERSON", "P-2")]


def test_a_failed_unit_records_no_change(store: StoreUnderTest) -> None:
    store.seed(every_entity())
    recorded = store.entity_changes()

    def failing(view: CcbView, ids: IdSource) -> Changes:
        changes = Changes()
        changes.put_person(Person(id="P-1", name="BRENNAN,MEG", version=7))
        return changes

    with pytest.raises(ConcurrentUpdateError):
        store.execute(failing)
    assert store.entity_changes() == recorded


def test_generated_ids_are_new_and_skip_ids_already_taken(store: StoreUnderTest) -> None:
    store.seed(every_entity())
    taken = Changes()
    taken.put_todo(ToDoEntry(id="TODO-1", todo_type="TD-SAACT", role="CSR", message="m",
                             drill_key=DrillKey(kind="sa", id="SA-2"), created_at=NOW,
                             status=ToDoStatus.COMPLETE))
    store.seed(taken)
    first = store.execute(lambda view, ids: _note_ids(ids, "TODO", 2))
    second = store.execute(lambda view, ids: _note_ids(ids, "TODO", 1))
    generated = first.notes + second.notes
    assert "TODO-1" not in generated
    assert len(set(generated)) == 3
    assert all(note.startswith("TODO-") for note in generated)


def _note_ids(ids: IdSource, kind: str, count: int) -> Changes:
    changes = Changes()
    for _ in range(count):
        changes.note(ids.next_id(kind))
    return changes
