"""To Do work (steps 6.1-6.4) and customer contacts (seed 002): the worklist, taking, logging
and completing an entry; a person's contacts, recording one, its log, characteristics,
reminders and closing it (``c2m-sync ccb todo ...``, ``c2m-sync ccb contact ...``)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Query, Response, status
from pydantic import Field

from sync.api.deps import RuntimeDep, read, run_unit
from sync.api.models import (
    DEFAULT_LIST_LIMIT,
    BusinessDate,
    ChangesOut,
    Code,
    Id,
    ListAfter,
    ListLimit,
    ListOffset,
    PageKey,
    PathId,
    Text,
    User,
    page,
)
from sync.api.models import Body as RequestBody
from sync.api.problems import responses
from sync.api.security import Read, Write
from sync.ccb import contacts, todo
from sync.ccb.changes import Changes
from sync.ccb.errors import NotFound
from sync.ccb.model import CustomerContact, ToDoEntry, ToDoStatus
from sync.ccb.ports import CcbView, IdSource
from sync.storage.ccb_view import SqlCcbView

router = APIRouter(prefix="/api", responses=responses(401, 404, 409, 422))

Comment = Annotated[str, Field(min_length=1, max_length=4000, pattern=r"^[^\x00]*$")]
FilterCode = Annotated[str | None, Query(min_length=1, max_length=100,
                                         pattern=r"^[^\x00-\x1f\x7f]+$")]


# --- To Do work -------------------------------------------------------------------------------


class TakeToDoIn(RequestBody):
    user: User


class ToDoLogIn(RequestBody):
    user: User
    comment: Comment


class CompleteToDoIn(RequestBody):
    user: User
    comment: Text | None = None


@router.get("/todos", tags=["To Do"], dependencies=[Read],
            summary="The worklist, most urgent first (6.1)")
def todo_list(runtime: RuntimeDep, response: Response, role: FilterCode = None,
              todo_type: FilterCode = None,
              todo_status: Annotated[ToDoStatus | None, Query(alias="status")] = None,
              unfinished: Annotated[bool, Query(description=(
                  "only open and being worked entries (the worklist), read without the "
                  "completed history"))] = False,
              assigned_user: FilterCode = None,
              limit: ListLimit = DEFAULT_LIST_LIMIT, offset: ListOffset = 0,
              after: ListAfter = None) -> list[ToDoEntry]:
    admin = runtime.admin
    entries = todo.list_todos(read(runtime, lambda view: view.todos(
        role=role, todo_type=todo_type, status=todo_status, unfinished=unfinished)),
        admin, assigned_user=assigned_user)
    return page(entries, response, offset, limit, after=after,
                key=lambda entry: worklist_place(todo.urgency(entry, admin)))


def worklist_place(urgency: tuple[int, dt.datetime, str]) -> PageKey:
    """A To Do's urgency as a cursor's place: the creation time as UTC text of one width,
    which sorts as the times do."""
    priority, created_at, todo_id = urgency
    return (priority, created_at.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f"), todo_id)


@router.get("/todos/{todo_id}", tags=["To Do"], dependencies=[Read],
            summary="One To Do entry with its log")
def todo_entry(todo_id: PathId, runtime: RuntimeDep) -> ToDoEntry:
    entry = read(runtime, lambda view: view.todo(todo_id))
    if entry is None:
        raise NotFound("To Do", todo_id, "todo_id")
    return entry


@router.post("/todos/{todo_id}/take", tags=["To Do"], dependencies=[Write],
             summary="Take an entry to work it (6.1)")
def take_todo(todo_id: PathId, body: TakeToDoIn, runtime: RuntimeDep) -> ChangesOut:
    now = runtime.clock.now()
    return run_unit(runtime, lambda view, ids: todo.take_todo(view, runtime.admin, todo_id,
                                                              body.user, now))


@router.post("/todos/{todo_id}/log", tags=["To Do"], dependencies=[Write],
             summary="Add a log comment (6.2-6.3)")
def log_todo(todo_id: PathId, body: ToDoLogIn, runtime: RuntimeDep) -> ChangesOut:
    now = runtime.clock.now()
    return run_unit(runtime, lambda view, ids: todo.add_todo_log(
        view, runtime.admin, todo_id, body.user, body.comment, now))


@router.post("/todos/{todo_id}/complete", tags=["To Do"], dependencies=[Write],
             summary="Complete an entry (6.3-6.4)")
def complete_todo(todo_id: PathId, body: CompleteToDoIn, runtime: RuntimeDep) -> ChangesOut:
    now = runtime.clock.now()
    return run_unit(runtime, lambda view, ids: todo.complete_todo(
        view, runtime.admin, todo_id, body.user, now, body.comment))


# --- customer contacts ------------------------------------------------------------------------


class AddContactIn(RequestBody):
    contact_type: Code = Field(description="contact type (admin contact_types)")
    method: Code = "phone"
    account_id: Id | None = None
    premise_id: Id | None = None
    comments: Text = ""
    open: bool = Field(default=False, description="keep it open as a case file")
    user: User


class ContactLogIn(RequestBody):
    user: User
    comment: Comment


class CharacteristicIn(RequestBody):
    characteristic_type: Code
    value: Annotated[str, Field(min_length=1, max_length=200, pattern=r"^[^\x00]*$")]


class ReminderIn(RequestBody):
    trigger_date: BusinessDate
    user: Id | None = Field(default=None, description="remind this user")
    role: Id | None = Field(default=None, description="remind this role")


class CloseContactIn(RequestBody):
    user: User
    comment: Text = ""


@router.get("/persons/{person_id}/contacts", tags=["customer contacts"], dependencies=[Read],
            summary="A person's contacts, newest first")
def contact_list(person_id: PathId, runtime: RuntimeDep) -> list[CustomerContact]:
    def contacts_of(view: SqlCcbView) -> list[CustomerContact]:
        if view.person(person_id) is None:
            raise NotFound("person", person_id, "person_id")
        return view.contacts_of_person(person_id)

    return read(runtime, contacts_of)


@router.post("/persons/{person_id}/contacts", tags=["customer contacts"],
             dependencies=[Write], status_code=status.HTTP_201_CREATED,
             summary="Record a customer contact on a person (seed 002)")
def add_contact(person_id: PathId, body: AddContactIn, runtime: RuntimeDep) -> ChangesOut:
    now = runtime.clock.now()

    def unit(view: CcbView, ids: IdSource) -> Changes:
        return contacts.add_contact(view, ids, runtime.admin, contacts.AddContact(
            person_id=person_id, contact_type=body.contact_type, user=body.user,
            method=body.method, account_id=body.account_id, premise_id=body.premise_id,
            comments=body.comments, open=body.open), now)

    return run_unit(runtime, unit)


@router.get("/contacts/{contact_id}", tags=["customer contacts"], dependencies=[Read],
            summary="One customer contact with its log, characteristics and reminders")
def contact_entry(contact_id: PathId, runtime: RuntimeDep) -> CustomerContact:
    found = read(runtime, lambda view: view.contact(contact_id))
    if found is None:
        raise NotFound("contact", contact_id, "contact_id")
    return found


@router.post("/contacts/{contact_id}/log", tags=["customer contacts"], dependencies=[Write],
             summary="Add a log entry to a contact")
def log_contact(contact_id: PathId, body: ContactLogIn, runtime: RuntimeDep) -> ChangesOut:
    now = runtime.clock.now()
    return run_unit(runtime, lambda view, ids: contacts.add_contact_log(
        view, contacts.AddContactLog(contact_id=contact_id, user=body.user,
                                     comment=body.comment), now))


@router.post("/contacts/{contact_id}/characteristics", tags=["customer contacts"],
             dependencies=[Write], summary="Add a characteristic to a contact")
def add_characteristic(contact_id: PathId, body: CharacteristicIn,
                       runtime: RuntimeDep) -> ChangesOut:
    return run_unit(runtime, lambda view, ids: contacts.add_characteristic(
        view, contacts.AddCharacteristic(contact_id=contact_id,
                                         characteristic_type=body.characteristic_type,
                                         value=body.value)))


@router.post("/contacts/{contact_id}/reminders", tags=["customer contacts"],
             dependencies=[Write], summary="Add a reminder (TD-CCCB raises it as a To Do)")
def add_reminder(contact_id: PathId, body: ReminderIn, runtime: RuntimeDep) -> ChangesOut:
    return run_unit(runtime, lambda view, ids: contacts.add_reminder(
        view, runtime.admin, contacts.AddReminder(contact_id=contact_id,
                                                  trigger_date=body.trigger_date,
                                                  user=body.user, role=body.role)))


@router.post("/contacts/{contact_id}/close", tags=["customer contacts"], dependencies=[Write],
             summary="Close an open contact")
def close_contact(contact_id: PathId, body: CloseContactIn, runtime: RuntimeDep) -> ChangesOut:
    now = runtime.clock.now()
    return run_unit(runtime, lambda view, ids: contacts.close_contact(
        view, contacts.CloseContact(contact_id=contact_id, user=body.user,
                                    comment=body.comment), now))

