"""Customer contacts (seed 002): when and why a customer contacted the utility.

A contact belongs to a **person** (required); the account and premise are optional context, and
an account given must list the person (main or other person), because a contact about an
account the person has nothing to do with is a data-entry mistake. The contact type (admin
``contact_types``) fixes the contact class and, when the type has a letter template, queues a
letter on creation. A contact created *open* is a case file: it collects log entries until it
is closed. Log entries, characteristics and reminders may be added to any contact; only an
open contact can be closed.

Reminders name a user, a role, or both (then the user must be in the role); the ``TD-CCCB``
batch turns every reminder due on the business date into a To Do (:func:`due_reminders`).

Every CSR command that changes service records a contact on the account's main person through
:func:`contact_for_account`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

from sync.ccb.changes import Changes
from sync.ccb.errors import InvalidCommand, NotFound
from sync.ccb.model import (
    ContactCharacteristic,
    ContactLogEntry,
    ContactReminder,
    CustomerContact,
)
from sync.ccb.ports import CcbView, IdSource
from sync.config.admin import AdminConfig, ContactType

CONTACT_METHODS = ("phone", "email", "letter", "in_person", "web", "fax")


class ReminderView(Protocol):
    """Query for the TD-CCCB batch (not part of the shared ``CcbView`` port; the store
    implements it)."""

    def contacts_with_reminders_due(self, business_date: dt.date) -> list[CustomerContact]:
        """Contacts holding at least one reminder not yet sent whose trigger date is on or
        before ``business_date``; :func:`due_reminders` picks the reminders themselves."""
        ...


@dataclass(frozen=True)
class AddContact:
    person_id: str
    contact_type: str
    user: str
    method: str = "phone"
    account_id: str | None = None
    premise_id: str | None = None
    comments: str = ""
    open: bool = False


@dataclass(frozen=True)
class AddContactLog:
    contact_id: str
    user: str
    comment: str


@dataclass(frozen=True)
class AddCharacteristic:
    contact_id: str
    characteristic_type: str
    value: str


@dataclass(frozen=True)
class AddReminder:
    contact_id: str
    trigger_date: dt.date
    user: str | None = None
    role: str | None = None


@dataclass(frozen=True)
class CloseContact:
    contact_id: str
    user: str
    comment: str = ""


@dataclass(frozen=True)
class DueReminder:
    """A reminder whose trigger date has come; ``index`` is its position on the contact."""

    contact: CustomerContact
    index: int
    reminder: ContactReminder


# --- creating contacts ---------------------------------------------------------------------


def new_contact(
    view: CcbView,
    ids: IdSource,
    admin: AdminConfig,
    *,
    person_id: str,
    contact_type: str,
    method: str,
    user: str,
    now: dt.datetime,
    account_id: str | None = None,
    premise_id: str | None = None,
    comments: str = "",
    open: bool = False,
) -> CustomerContact:
    """A validated new contact (not yet in any :class:`Changes`); other commands call this."""
    if not person_id:
        raise InvalidCommand("contact", "(new)", "person_id", "a contact needs a person")
    if view.person(person_id) is None:
        raise NotFound("person", person_id, "person_id")
    if account_id is not None:
        account = view.account(account_id)
        if account is None:
            raise NotFound("account", account_id, "account_id")
        if person_id != account.main_person_id and person_id not in account.other_person_ids:
            raise InvalidCommand("account", account_id, "person_id",
                                 f"does not list person {person_id!r}")
    if premise_id is not None and view.premise(premise_id) is None:
        raise NotFound("premise", premise_id, "premise_id")
    type_config = admin.contact_types.get(contact_type)
    if type_config is None:
        raise InvalidCommand("contact type", contact_type, "contact_type",
                             f"unknown (known: {', '.join(sorted(admin.contact_types))})")
    if method not in CONTACT_METHODS:
        raise InvalidCommand("contact", "(new)", "method",
                             f"unknown method {method!r} (known: {', '.join(CONTACT_METHODS)})")
    if not user.strip():
        raise InvalidCommand("contact", "(new)", "user", "must not be blank")
    return checked_contact(ids, type_config, person_id=person_id, contact_type=contact_type,
                           method=method, user=user, now=now, account_id=account_id,
                           premise_id=premise_id, comments=comments, open=open)


def checked_contact(ids: IdSource, type_config: ContactType, *, person_id: str,
                    contact_type: str, method: str, user: str, now: dt.datetime,
                    account_id: str | None, premise_id: str | None, comments: str,
                    open: bool = False) -> CustomerContact:
    """The new contact once everything :func:`new_contact` checks holds (a set-based path
    that checked the same from its rows builds it here too)."""
    return CustomerContact(
        id=ids.next_id("CONTACT"),
        person_id=person_id,
        account_id=account_id,
        premise_id=premise_id,
        contact_class=type_config.contact_class,
        contact_type=contact_type,
        contacted_at=now,
        method=method,
        user=user,
        comments=comments,
        open=open,
        letter_template=type_config.letter_template,
        letter_queued=type_config.letter_template is not None,
    )


def contact_for_account(
    view: CcbView,
    ids: IdSource,
    admin: AdminConfig,
    *,
    account_id: str,
    contact_type: str,
    method: str,
    user: str,
    now: dt.datetime,
    premise_id: str | None = None,
    comments: str = "",
) -> CustomerContact:
    """The contact a service-changing CSR command records, on the account's main person."""
    account = view.account(account_id)
    if account is None:
        raise NotFound("account", account_id, "account_id")
    return new_contact(view, ids, admin, person_id=account.main_person_id,
                       contact_type=contact_type, method=method, user=user, now=now,
                       account_id=account_id, premise_id=premise_id, comments=comments)


def add_contact(view: CcbView, ids: IdSource, admin: AdminConfig, command: AddContact,
                now: dt.datetime) -> Changes:
    contact = new_contact(
        view, ids, admin, person_id=command.person_id, contact_type=command.contact_type,
        method=command.method, user=command.user, now=now, account_id=command.account_id,
        premise_id=command.premise_id, comments=command.comments, open=command.open,
    )
    changes = Changes()
    changes.put_contact(contact)
    changes.note(f"contact {contact.id} ({contact.contact_class}/{contact.contact_type}) "
                 f"recorded for person {contact.person_id}"
                 + (f"; letter {contact.letter_template} queued" if contact.letter_queued
                    else ""))
    return changes


# --- maintaining contacts ------------------------------------------------------------------


def _contact(view: CcbView, contact_id: str) -> CustomerContact:
    contact = view.contact(contact_id)
    if contact is None:
        raise NotFound("contact", contact_id, "contact_id")
    return contact


def _saved(contact: CustomerContact, note: str, **fields: object) -> Changes:
    changes = Changes()
    changes.put_contact(contact.model_copy(update={**fields, "version": contact.version + 1}))
    changes.note(note)
    return changes


def add_contact_log(view: CcbView, command: AddContactLog, now: dt.datetime) -> Changes:
    contact = _contact(view, command.contact_id)
    if not command.comment.strip():
        raise InvalidCommand("contact", contact.id, "comment", "must not be blank")
    if not command.user.strip():
        raise InvalidCommand("contact", contact.id, "user", "must not be blank")
    entry = ContactLogEntry(at=now, user=command.user, comment=command.comment)
    return _saved(contact, f"contact {contact.id}: log entry added by {command.user}",
                  log=(*contact.log, entry))


def add_characteristic(view: CcbView, command: AddCharacteristic) -> Changes:
    """A characteristic (type/value) for statistics; the same pair twice is refused."""
    contact = _contact(view, command.contact_id)
    if not command.characteristic_type.strip():
        raise InvalidCommand("contact", contact.id, "characteristic_type", "must not be blank")
    if not command.value.strip():
        raise InvalidCommand("contact", contact.id, "value", "must not be blank")
    characteristic = ContactCharacteristic(type=command.characteristic_type, value=command.value)
    if characteristic in contact.characteristics:
        raise InvalidCommand("contact", contact.id, "characteristics",
                             f"already has {command.characteristic_type}={command.value!r}")
    return _saved(contact, f"contact {contact.id}: characteristic "
                           f"{command.characteristic_type}={command.value!r} added",
                  characteristics=(*contact.characteristics, characteristic))


def add_reminder(view: CcbView, admin: AdminConfig, command: AddReminder) -> Changes:
    contact = _contact(view, command.contact_id)
    if command.user is None and command.role is None:
        raise InvalidCommand("contact", contact.id, "reminder",
                             "a reminder needs a user or a role")
    if command.role is not None:
        role = admin.todo_roles.get(command.role)
        if role is None:
            raise InvalidCommand("contact", contact.id, "role",
                                 f"unknown To Do role {command.role!r}")
        if command.user is not None and command.user not in role.users:
            raise InvalidCommand("contact", contact.id, "user",
                                 f"user {command.user!r} is not in role {command.role}")
    elif command.user is not None and not any(
        command.user in role.users for role in admin.todo_roles.values()
    ):
        # The reminder becomes a To Do, which only a user listed in some role can work.
        raise InvalidCommand("contact", contact.id, "user",
                             f"user {command.user!r} is in no To Do role")
    if command.trigger_date < contact.contacted_at.date():
        raise InvalidCommand("contact", contact.id, "trigger_date",
                             f"{command.trigger_date} is before the contact date "
                             f"{contact.contacted_at.date()}")
    reminder = ContactReminder(trigger_date=command.trigger_date, user=command.user,
                               role=command.role)
    target = command.user or command.role
    return _saved(contact, f"contact {contact.id}: reminder on {command.trigger_date} "
                           f"for {target}",
                  reminders=(*contact.reminders, reminder))


def close_contact(view: CcbView, command: CloseContact, now: dt.datetime) -> Changes:
    """Close a case file (an open contact); the closing is logged."""
    contact = _contact(view, command.contact_id)
    if not contact.open:
        raise InvalidCommand("contact", contact.id, "open", "is not open; nothing to close")
    if not command.user.strip():
        raise InvalidCommand("contact", contact.id, "user", "must not be blank")
    text = "closed" + (f": {command.comment.strip()}" if command.comment.strip() else "")
    entry = ContactLogEntry(at=now, user=command.user, comment=text)
    return _saved(contact, f"contact {contact.id} closed by {command.user}",
                  open=False, log=(*contact.log, entry))


# --- reminders for TD-CCCB -----------------------------------------------------------------


def due_reminders(contacts: Iterable[CustomerContact],
                  business_date: dt.date) -> list[DueReminder]:
    """Reminders not yet sent whose trigger date is on or before ``business_date``,
    oldest trigger first."""
    due = [
        DueReminder(contact, index, reminder)
        for contact in contacts
        for index, reminder in enumerate(contact.reminders)
        if not reminder.sent and reminder.trigger_date <= business_date
    ]
    return sorted(due, key=lambda d: (d.reminder.trigger_date, d.contact.id, d.index))


def mark_reminders_sent(contact: CustomerContact, indexes: Iterable[int]) -> CustomerContact:
    """The contact (as read) with the reminders at ``indexes`` marked sent, so that TD-CCCB
    raises each reminder once. The version is left as read: saving it through the unit of work
    gives it the next one."""
    reminders = list(contact.reminders)
    for index in indexes:
        if not 0 <= index < len(reminders):
            raise InvalidCommand("contact", contact.id, f"reminders[{index}]", "no such reminder")
        reminders[index] = reminders[index].model_copy(update={"sent": True})
    return contact.model_copy(update={"reminders": tuple(reminders)})
