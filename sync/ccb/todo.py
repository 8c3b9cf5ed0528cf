"""To Do entries: raising them, and the work a user does on them (steps 6.0–6.4).

Processes raise To Do entries for exceptions they cannot resolve (SAACT, TD-SSFTL, sync errors,
contact reminders, ...). An entry has a type (admin ``todo_types``) and a role (the type's
default role unless the process names another); its *drill key* is what it points at. At most
one entry of a type is open per drill key: raising it again returns the open one.

Life of an entry::

    open --take--> being worked --complete--> complete
      \\_____________complete_______________/

A user works an entry only if the entry's role lists the user (admin ``todo_roles``). Completing
an *open* entry directly is allowed: step 6.3 has the user mark the entry complete once the issue
is resolved, without requiring that it was taken first; the completing user becomes the
assigned user. An entry being worked can be completed only by the user working it. A complete
entry is final. Every action is written to the entry's log with the user and the time, so the
log reads as the entry's history; comments entered by users go to the same log.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

from sync.ccb.changes import Changes
from sync.ccb.errors import InvalidCommand, NotFound
from sync.ccb.model import DrillKey, ToDoEntry, ToDoLogEntry, ToDoStatus
from sync.ccb.ports import CcbView, IdSource
from sync.config.admin import AdminConfig

SYSTEM_USER = "SYSTEM"

DRILL_KEY_KINDS = ("sa", "fa", "sync_request", "contact", "account")


class ToDoListView(Protocol):
    """Worklist query (not part of the shared ``CcbView`` port; the store implements it).

    Every entry matching all the filters given (None = any), in any order; ``unfinished``:
    only those not complete (the worklist: completed entries are the history, which grows).
    """

    def todos(self, *, role: str | None = None, todo_type: str | None = None,
              status: ToDoStatus | None = None, unfinished: bool = False) -> list[ToDoEntry]:
        ...


@dataclass(frozen=True)
class RaisedToDo:
    """The open entry for a type and drill key, and whether this call created it."""

    entry: ToDoEntry
    created: bool
    changes: Changes


def todo_type_code(admin: AdminConfig, purpose_or_type: str) -> str:
    """A process purpose (``todo_for`` key, e.g. ``"sa_activation"``) or a To Do type code."""
    if purpose_or_type in admin.todo_for:
        return admin.todo_type_for(purpose_or_type)
    if purpose_or_type in admin.todo_types:
        return purpose_or_type
    raise InvalidCommand(
        "To Do type", purpose_or_type, "todo_type",
        "neither a To Do type (todo_types) nor a process purpose (todo_for)",
    )


def raise_todo(
    view: CcbView,
    ids: IdSource,
    admin: AdminConfig,
    purpose_or_type: str,
    drill_key: DrillKey,
    message: str,
    now: dt.datetime,
    *,
    role: str | None = None,
    changes: Changes | None = None,
) -> RaisedToDo:
    """Open a To Do entry unless one of the same type is already open for ``drill_key``.

    ``changes`` lets a command raise several entries in one unit of work: entries already in it
    count as open (so a batch never raises two for the same key), and a new entry is put into
    it. ``role`` overrides the type's default role.
    """
    changes = changes if changes is not None else Changes()
    todo_type = todo_type_code(admin, purpose_or_type)
    if drill_key.kind not in DRILL_KEY_KINDS:
        raise InvalidCommand("To Do drill key", drill_key.id, "kind",
                             f"unknown kind {drill_key.kind!r} (known: "
                             f"{', '.join(DRILL_KEY_KINDS)})")
    if not message.strip():
        raise InvalidCommand("To Do type", todo_type, "message", "must not be blank")
    role = role if role is not None else admin.todo_types[todo_type].default_role
    if role not in admin.todo_roles:
        raise InvalidCommand("To Do type", todo_type, "role", f"unknown To Do role {role!r}")
    existing = (changes.open_todo(todo_type, drill_key.kind, drill_key.id)
                or view.open_todo(todo_type, drill_key))
    if existing is not None and existing.id in changes.todos:
        # The stored open entry may already be completed earlier in this unit of work.
        existing = changes.todos[existing.id]
    if existing is not None and existing.status is not ToDoStatus.COMPLETE:
        return RaisedToDo(existing, created=False, changes=changes)
    entry = ToDoEntry(
        id=ids.next_id("TODO"),
        todo_type=todo_type,
        role=role,
        message=message,
        drill_key=drill_key,
        created_at=now,
        log=(ToDoLogEntry(at=now, user=SYSTEM_USER, comment=f"created for role {role}"),),
    )
    changes.put_todo(entry)
    changes.note(f"To Do {entry.id} ({todo_type}, role {role}) raised for "
                 f"{drill_key.kind} {drill_key.id}: {message}")
    return RaisedToDo(entry, created=True, changes=changes)


# --- working an entry (steps 6.1–6.4) ------------------------------------------------------


def _entry(view: CcbView, todo_id: str) -> ToDoEntry:
    entry = view.todo(todo_id)
    if entry is None:
        raise NotFound("To Do", todo_id, "todo_id")
    return entry


def _check_member(admin: AdminConfig, entry: ToDoEntry, user: str) -> None:
    role = admin.todo_roles.get(entry.role)
    if role is None:
        raise InvalidCommand("To Do", entry.id, "role",
                             f"role {entry.role!r} is no longer configured (todo_roles)")
    if user not in role.users:
        raise InvalidCommand("To Do", entry.id, "user",
                             f"user {user!r} is not in role {entry.role} "
                             f"(members: {', '.join(role.users) or 'none'})")


def _refuse_complete(entry: ToDoEntry, action: str) -> None:
    if entry.status is ToDoStatus.COMPLETE:
        raise InvalidCommand("To Do", entry.id, "status",
                             f"is complete; cannot {action} a complete entry")


def _updated(entry: ToDoEntry, now: dt.datetime, user: str, comment: str,
             **fields: object) -> ToDoEntry:
    log = (*entry.log, ToDoLogEntry(at=now, user=user, comment=comment))
    return entry.model_copy(update={**fields, "log": log, "version": entry.version + 1})


def take_todo(view: CcbView, admin: AdminConfig, todo_id: str, user: str,
              now: dt.datetime) -> Changes:
    """Step 6.1: the user takes an open entry to work it (open → being worked)."""
    entry = _entry(view, todo_id)
    _refuse_complete(entry, "take")
    if entry.status is ToDoStatus.BEING_WORKED:
        raise InvalidCommand("To Do", entry.id, "status",
                             f"is already being worked by {entry.assigned_user}")
    _check_member(admin, entry, user)
    taken = _updated(entry, now, user, f"taken by {user}",
                     status=ToDoStatus.BEING_WORKED, assigned_user=user)
    changes = Changes()
    changes.put_todo(taken)
    changes.note(f"To Do {entry.id} is being worked by {user}")
    return changes


def add_todo_log(view: CcbView, admin: AdminConfig, todo_id: str, user: str, comment: str,
                 now: dt.datetime) -> Changes:
    """Steps 6.2–6.3: a comment for future reference, by a member of the entry's role."""
    entry = _entry(view, todo_id)
    _refuse_complete(entry, "add a log entry to")
    if not comment.strip():
        raise InvalidCommand("To Do", entry.id, "comment", "must not be blank")
    _check_member(admin, entry, user)
    changes = Changes()
    changes.put_todo(_updated(entry, now, user, comment))
    changes.note(f"To Do {entry.id}: log entry added by {user}")
    return changes


def complete_todo(view: CcbView, admin: AdminConfig, todo_id: str, user: str,
                  now: dt.datetime, comment: str | None = None) -> Changes:
    """Steps 6.3–6.4: the issue is resolved; the entry becomes complete.

    An entry being worked is completed by the user working it; an open one by any member of its
    role. ``comment`` (optional) is logged with the completion.
    """
    entry = _entry(view, todo_id)
    _refuse_complete(entry, "complete")
    _check_member(admin, entry, user)
    if entry.status is ToDoStatus.BEING_WORKED and entry.assigned_user != user:
        raise InvalidCommand("To Do", entry.id, "assigned_user",
                             f"is being worked by {entry.assigned_user}; only that user may "
                             "complete it")
    text = f"completed by {user}" + (f": {comment.strip()}" if comment and comment.strip()
                                     else "")
    done = _updated(entry, now, user, text, status=ToDoStatus.COMPLETE, assigned_user=user)
    changes = Changes()
    changes.put_todo(done)
    changes.note(f"To Do {entry.id} completed by {user}")
    return changes


# --- worklists -----------------------------------------------------------------------------


def list_todos(
    entries: Iterable[ToDoEntry],
    admin: AdminConfig,
    *,
    role: str | None = None,
    todo_type: str | None = None,
    status: ToDoStatus | None = None,
    assigned_user: str | None = None,
) -> list[ToDoEntry]:
    """Entries matching every filter given, most urgent first (:func:`urgency`)."""
    return sorted(
        (
            entry for entry in entries
            if (role is None or entry.role == role)
            and (todo_type is None or entry.todo_type == todo_type)
            and (status is None or entry.status is status)
            and (assigned_user is None or entry.assigned_user == assigned_user)
        ),
        key=lambda entry: urgency(entry, admin),
    )


def urgency(entry: ToDoEntry, admin: AdminConfig) -> tuple[int, dt.datetime, str]:
    """Where ``entry`` stands in a worklist: the type's priority (1 = most urgent; unknown
    types last), then oldest first, then id, which is how a role's worklist is worked. It
    does not change while the entry is worked, so a page of the list can start after it."""
    todo_type_config = admin.todo_types.get(entry.todo_type)
    priority = todo_type_config.priority if todo_type_config is not None else 101
    return (priority, entry.created_at, entry.id)
