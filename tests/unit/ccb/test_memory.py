"""The in-memory store: atomic execute, optimistic versions, outbox hook, ids."""

from __future__ import annotations

import datetime as dt

import pytest

from sync.ccb.changes import Changes
from sync.ccb.errors import ConcurrentUpdateError
from sync.ccb.memory import InMemoryCcb
from sync.ccb.model import Person, SaStatus, ServiceAgreement
from sync.ccb.ports import CcbView, IdSource

SA = ServiceAgreement(id="SA-1", account_id="A-1", sa_type="E-RES", status=SaStatus.ACTIVE,
                      start_date=dt.date(2025, 1, 1))


def test_changes_are_applied_and_recorded_for_the_outbox() -> None:
    store = InMemoryCcb()
    store.add(SA)

    def rename(view: CcbView, ids: IdSource) -> Changes:
        changes = Changes()
        changes.put_sa(SA.model_copy(update={"version": 2, "end_date": dt.date(2025, 2, 1)}))
        changes.put_person(Person(id="P-1", name="SMITH,ANN"))
        return changes

    store.execute(rename)
    assert store.sa("SA-1") == SA.model_copy(update={"version": 2,
                                                     "end_date": dt.date(2025, 2, 1)})
    assert store.entity_changes == [("SA", "SA-1"), ("PERSON", "P-1")]


def test_a_stale_version_is_refused_and_nothing_is_applied() -> None:
    store = InMemoryCcb()
    store.add(SA.model_copy(update={"version": 3}))

    def stale(view: CcbView, ids: IdSource) -> Changes:
        changes = Changes()
        changes.put_person(Person(id="P-1", name="SMITH,ANN"))
        changes.put_sa(SA.model_copy(update={"version": 3}))  # read 2, but 3 is stored
        return changes

    with pytest.raises(ConcurrentUpdateError, match="SA 'SA-1': version: changed concurrently"):
        store.execute(stale)
    assert store.person("P-1") is None
    assert store.entity_changes == []


def test_a_new_entity_whose_id_exists_is_refused() -> None:
    store = InMemoryCcb()
    store.add(SA)

    def clash(view: CcbView, ids: IdSource) -> Changes:
        changes = Changes()
        changes.put_sa(SA)
        return changes

    with pytest.raises(ConcurrentUpdateError):
        store.execute(clash)


def test_ids_skip_the_ones_already_in_use() -> None:
    store = InMemoryCcb()
    store.add(SA)
    assert store.next_id("SA") == "SA-2"
    assert store.next_id("SA") == "SA-3"
    assert store.next_id("FA") == "FA-1"


def test_merge_keeps_each_changed_entity_once_in_first_order() -> None:
    first, second = Changes(), Changes()
    first.put_sa(SA)
    second.put_person(Person(id="P-1", name="X,Y"))
    second.put_sa(SA.model_copy(update={"version": 2}))
    second.note("done")
    first.merge(second)
    assert first.changed == [("SA", "SA-1"), ("PERSON", "P-1")]
    assert first.sas["SA-1"].version == 2
    assert first.notes == ["done"]
