"""To Do work (steps 6.0–6.4 of the stop process): raise, take, log, complete, worklists."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sync.ccb.changes import Changes
from sync.ccb.errors import CcbError, InvalidCommand, NotFound
from sync.ccb.memory import InMemoryCcb
from sync.ccb.model import DrillKey, ToDoEntry, ToDoStatus
from sync.ccb.ports import CcbView, IdSource
from sync.ccb.todo import (
    RaisedToDo,
    add_todo_log,
    complete_todo,
    list_todos,
    raise_todo,
    take_todo,
)
from sync.config.admin import load_admin_config

ADMIN = load_admin_config()
NOW = dt.datetime(2024, 5, 2, 9, 30, tzinfo=dt.UTC)
LATER = NOW + dt.timedelta(hours=2)
SA_1 = DrillKey(kind="sa", id="SA-1")


def _raise(store: InMemoryCcb, purpose: str = "sa_activation", key: DrillKey = SA_1,
           message: str = "stop FA E-OFF has no read", role: str | None = None) -> RaisedToDo:
    raised: list[RaisedToDo] = []

    def command(view: CcbView, ids: IdSource) -> Changes:
        result = raise_todo(view, ids, ADMIN, purpose, key, message, NOW, role=role)
        raised.append(result)
        return result.changes

    store.execute(command)
    return raised[0]


def test_step_6_0_one_unit_of_work_raises_an_entry_once_per_key_among_thousands() -> None:
    """A unit that raises many entries (a timeout of every unanswered request) finds the ones
    it raised already, by type and key, and not a completed one."""
    store = InMemoryCcb()
    keys = [DrillKey(kind="sa", id=f"SA-{n}") for n in range(2000)]
    outcomes: list[bool] = []

    def command(view: CcbView, ids: IdSource) -> Changes:
        changes = Changes()
        for key in [*keys, *keys[:10]]:  # the first ten a second time
            outcomes.append(raise_todo(view, ids, ADMIN, "sa_activation", key, "no read", NOW,
                                       changes=changes).created)
        first = changes.open_todo("TD-SAACT", "sa", "SA-0")
        assert first is not None
        changes.put_todo(first.model_copy(update={"status": ToDoStatus.COMPLETE}))
        assert changes.open_todo("TD-SAACT", "sa", "SA-0") is None
        assert changes.open_todo("TD-SAACT", "sa", "SA-1") is not None
        assert changes.open_todo("TD-OTHER", "sa", "SA-1") is None
        outcomes.append(raise_todo(view, ids, ADMIN, "sa_activation", keys[0], "no read", NOW,
                                   changes=changes).created)
        return changes

    written = store.execute(command)
    assert outcomes == [True] * 2000 + [False] * 10 + [True]
    assert len(written.todos) == 2001
    assert store.open_todo("TD-SAACT", keys[0]) is not None  # the one raised again


def _stored(store: InMemoryCcb, todo_id: str) -> ToDoEntry:
    entry = store.todo(todo_id)
    assert entry is not None
    return entry


# --- raising (6.0) --------------------------------------------------------------------------


def test_step_6_0_a_process_purpose_raises_an_open_entry_of_its_type_for_the_default_role() -> None:
    store = InMemoryCcb()
    raised = _raise(store)
    assert raised.created
    entry = _stored(store, raised.entry.id)
    assert (entry.todo_type, entry.role, entry.status) == ("TD-SAACT", "CSR", ToDoStatus.OPEN)
    assert entry.drill_key == SA_1
    assert entry.message == "stop FA E-OFF has no read"
    assert entry.created_at == NOW
    assert entry.assigned_user is None
    assert [line.comment for line in entry.log] == ["created for role CSR"]


def test_step_6_0_raising_again_for_the_same_type_and_key_returns_the_open_entry() -> None:
    store = InMemoryCcb()
    first = _raise(store)
    again = _raise(store, message="still no read")
    assert not again.created
    assert again.entry.id == first.entry.id
    assert again.changes.todos == {}
    assert len(store.state()["todos"]) == 1


def test_a_different_type_or_key_gets_its_own_entry() -> None:
    store = InMemoryCcb()
    first = _raise(store)
    other_type = _raise(store, purpose="old_pending")
    other_key = _raise(store, key=DrillKey(kind="sa", id="SA-2"))
    assert len({first.entry.id, other_type.entry.id, other_key.entry.id}) == 3
    assert other_type.entry.todo_type == "TD-SSFTL"


def test_a_completed_entry_does_not_block_a_new_one() -> None:
    store = InMemoryCcb()
    first = _raise(store)
    store.execute(lambda v, i: complete_todo(v, ADMIN, first.entry.id, "csr1", LATER))
    second = _raise(store)
    assert second.created
    assert second.entry.id != first.entry.id


def test_one_unit_of_work_raising_twice_for_the_same_key_creates_one_entry() -> None:
    store = InMemoryCcb()

    def batch(view: CcbView, ids: IdSource) -> Changes:
        changes = Changes()
        first = raise_todo(view, ids, ADMIN, "sa_activation", SA_1, "one", NOW, changes=changes)
        second = raise_todo(view, ids, ADMIN, "TD-SAACT", SA_1, "two", NOW, changes=changes)
        assert second.entry == first.entry
        assert not second.created
        return changes

    changes = store.execute(batch)
    assert len(changes.todos) == 1


def test_a_type_code_and_a_role_override_are_accepted() -> None:
    store = InMemoryCcb()
    raised = _raise(store, purpose="TD-FANR", role="BILLING")
    assert (raised.entry.todo_type, raised.entry.role) == ("TD-FANR", "BILLING")


@pytest.mark.parametrize(
    ("purpose", "key", "message", "role", "field"),
    [
        ("no_such_purpose", SA_1, "m", None, "todo_type"),
        ("sa_activation", DrillKey(kind="planet", id="X"), "m", None, "kind"),
        ("sa_activation", SA_1, "  ", None, "message"),
        ("sa_activation", SA_1, "m", "NOBODY", "role"),
    ],
)
def test_bad_raise_input_is_refused_naming_the_field(
    purpose: str, key: DrillKey, message: str, role: str | None, field: str
) -> None:
    store = InMemoryCcb()
    with pytest.raises(InvalidCommand) as caught:
        _raise(store, purpose=purpose, key=key, message=message, role=role)
    assert caught.value.field == field
    assert store.state()["todos"] == {}


# --- working (6.1–6.4) -----------------------------------------------------------------------


def test_steps_6_1_to_6_4_take_log_and_complete_a_todo() -> None:
    store = InMemoryCcb()
    todo_id = _raise(store).entry.id

    store.execute(lambda v, i: take_todo(v, ADMIN, todo_id, "csr1", NOW))  # 6.1
    taken = _stored(store, todo_id)
    assert (taken.status, taken.assigned_user, taken.version) == (
        ToDoStatus.BEING_WORKED, "csr1", 2)

    store.execute(lambda v, i: add_todo_log(v, ADMIN, todo_id, "csr1",  # 6.2
                                            "read entered from the customer's photo", LATER))
    store.execute(lambda v, i: complete_todo(v, ADMIN, todo_id, "csr1", LATER,  # 6.3
                                             comment="SA stopped manually"))
    done = _stored(store, todo_id)  # 6.4
    assert done.status is ToDoStatus.COMPLETE
    assert done.assigned_user == "csr1"
    assert done.version == 4
    assert [(line.user, line.comment) for line in done.log] == [
        ("SYSTEM", "created for role CSR"),
        ("csr1", "taken by csr1"),
        ("csr1", "read entered from the customer's photo"),
        ("csr1", "completed by csr1: SA stopped manually"),
    ]


def test_step_6_3_an_open_entry_can_be_completed_directly_by_a_role_member() -> None:
    store = InMemoryCcb()
    todo_id = _raise(store).entry.id
    store.execute(lambda v, i: complete_todo(v, ADMIN, todo_id, "csr2", NOW))
    done = _stored(store, todo_id)
    assert (done.status, done.assigned_user) == (ToDoStatus.COMPLETE, "csr2")


def test_step_6_1_a_user_outside_the_role_cannot_take_the_entry() -> None:
    store = InMemoryCcb()
    todo_id = _raise(store).entry.id
    before = store.state()
    with pytest.raises(InvalidCommand, match="user 'billing1' is not in role CSR") as caught:
        store.execute(lambda v, i: take_todo(v, ADMIN, todo_id, "billing1", NOW))
    assert caught.value.entity_id == todo_id
    assert store.state() == before


def test_an_entry_being_worked_cannot_be_taken_again_or_completed_by_someone_else() -> None:
    store = InMemoryCcb()
    todo_id = _raise(store).entry.id
    store.execute(lambda v, i: take_todo(v, ADMIN, todo_id, "csr1", NOW))
    before = store.state()
    with pytest.raises(InvalidCommand, match="already being worked by csr1"):
        store.execute(lambda v, i: take_todo(v, ADMIN, todo_id, "csr2", NOW))
    with pytest.raises(InvalidCommand, match="only that user may complete it"):
        store.execute(lambda v, i: complete_todo(v, ADMIN, todo_id, "csr2", NOW))
    assert store.state() == before


def test_a_complete_entry_is_final() -> None:
    store = InMemoryCcb()
    todo_id = _raise(store).entry.id
    store.execute(lambda v, i: complete_todo(v, ADMIN, todo_id, "csr1", NOW))
    before = store.state()
    for command in (
        lambda v, i: take_todo(v, ADMIN, todo_id, "csr1", LATER),
        lambda v, i: add_todo_log(v, ADMIN, todo_id, "csr1", "more", LATER),
        lambda v, i: complete_todo(v, ADMIN, todo_id, "csr1", LATER),
    ):
        with pytest.raises(InvalidCommand, match="is complete") as caught:
            store.execute(command)
        assert caught.value.field == "status"
    assert store.state() == before


def test_unknown_todo_ids_and_blank_comments_are_refused() -> None:
    store = InMemoryCcb()
    todo_id = _raise(store).entry.id
    before = store.state()
    with pytest.raises(NotFound, match="To Do 'TODO-99' not found"):
        store.execute(lambda v, i: take_todo(v, ADMIN, "TODO-99", "csr1", NOW))
    with pytest.raises(InvalidCommand, match="comment: must not be blank"):
        store.execute(lambda v, i: add_todo_log(v, ADMIN, todo_id, "csr1", " ", NOW))
    with pytest.raises(InvalidCommand, match="not in role"):
        store.execute(lambda v, i: add_todo_log(v, ADMIN, todo_id, "integ1", "hi", NOW))
    assert store.state() == before


# --- worklists -------------------------------------------------------------------------------


def _entry(todo_id: str, todo_type: str, role: str, status: ToDoStatus, minutes: int,
           user: str | None = None) -> ToDoEntry:
    return ToDoEntry(id=todo_id, todo_type=todo_type, role=role, status=status, message="m",
                     drill_key=DrillKey(kind="sa", id=todo_id),
                     created_at=NOW + dt.timedelta(minutes=minutes), assigned_user=user)


ENTRIES = [
    _entry("T-1", "TD-SSFTL", "CSR", ToDoStatus.OPEN, 0),   # priority 40
    _entry("T-2", "TD-SAACT", "CSR", ToDoStatus.OPEN, 5),   # priority 30
    _entry("T-3", "TD-SAACT", "CSR", ToDoStatus.BEING_WORKED, 1, "csr1"),
    _entry("T-4", "TD-SYNCER", "SYNC", ToDoStatus.OPEN, 2),  # priority 20
    _entry("T-5", "TD-SAACT", "CSR", ToDoStatus.COMPLETE, 3, "csr2"),
]


def test_step_6_1_the_worklist_of_a_role_is_ordered_by_priority_then_age() -> None:
    csr = list_todos(ENTRIES, ADMIN, role="CSR")
    assert [e.id for e in csr] == ["T-3", "T-5", "T-2", "T-1"]
    assert [e.id for e in list_todos(ENTRIES, ADMIN)] == ["T-4", "T-3", "T-5", "T-2", "T-1"]


def test_worklists_filter_by_type_status_and_user() -> None:
    assert [e.id for e in list_todos(ENTRIES, ADMIN, todo_type="TD-SAACT",
                                     status=ToDoStatus.OPEN)] == ["T-2"]
    assert [e.id for e in list_todos(ENTRIES, ADMIN, assigned_user="csr1")] == ["T-3"]
    assert list_todos(ENTRIES, ADMIN, role="BILLING") == []


ACTIONS = st.lists(
    st.tuples(st.sampled_from(["take", "log", "complete"]),
              st.sampled_from(["csr1", "csr2", "billing1"])),
    max_size=8,
)


@settings(max_examples=60, deadline=None)
@given(actions=ACTIONS)
def test_any_sequence_of_work_keeps_the_entry_consistent(actions: list[tuple[str, str]]) -> None:
    """Whatever users try: status only moves forward, a refused action changes nothing, a
    being-worked or complete entry always has its user, and the version counts the changes."""
    store = InMemoryCcb()
    todo_id = _raise(store).entry.id
    order = [ToDoStatus.OPEN, ToDoStatus.BEING_WORKED, ToDoStatus.COMPLETE]
    applied = 0
    for action, user in actions:
        before = store.state()
        status_before = _stored(store, todo_id).status
        command = {
            "take": lambda v, i, u=user: take_todo(v, ADMIN, todo_id, u, NOW),
            "log": lambda v, i, u=user: add_todo_log(v, ADMIN, todo_id, u, "note", NOW),
            "complete": lambda v, i, u=user: complete_todo(v, ADMIN, todo_id, u, NOW),
        }[action]
        try:
            store.execute(command)
            applied += 1
        except CcbError:
            assert store.state() == before
            continue
        entry = _stored(store, todo_id)
        assert order.index(entry.status) >= order.index(status_before)
        if entry.status is not ToDoStatus.OPEN:
            assert entry.assigned_user in ADMIN.todo_roles["CSR"].users
    entry = _stored(store, todo_id)
    assert entry.version == 1 + applied
    assert len(entry.log) == 1 + applied
