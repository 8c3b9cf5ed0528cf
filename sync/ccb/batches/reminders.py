"""``TD-CCCB``: customer contact reminders whose trigger date has come (seed 002).

Every reminder not yet sent whose trigger date is on or before the business date becomes a
``contact_reminder`` To Do on the contact, for the reminder's role (else the To Do type's
default role) and, when the reminder names a user, assigned to that user. One To Do is open per
contact: a reminder falling due while it is still open is added to its log instead. The
reminders are then marked sent, so a second run raises nothing.
"""

from __future__ import annotations

from sync.ccb.batches.common import ItemOutcome, Result
from sync.ccb.contacts import due_reminders, mark_reminders_sent
from sync.ccb.errors import NotFound
from sync.ccb.model import ContactReminder, CustomerContact, DrillKey, ToDoLogEntry
from sync.ccb.todo import SYSTEM_USER, raise_todo
from sync.ccb.work import Work

CODE = "TD-CCCB"


def _role_for(work: Work, reminder: ContactReminder) -> str | None:
    """The reminder's role; for a user alone, the first role listing the user (None: the To
    Do type's default role)."""
    if reminder.role is not None:
        return reminder.role
    if reminder.user is not None:
        for code, role in sorted(work.admin.todo_roles.items()):
            if reminder.user in role.users:
                return code
    return None


def _message(contact: CustomerContact, reminder: ContactReminder) -> str:
    who = reminder.user or reminder.role or "the default role"
    about = f": {contact.comments}" if contact.comments else ""
    return (f"reminder of {reminder.trigger_date.isoformat()} for {who}: contact {contact.id}"
            f" ({contact.contact_type}) with person {contact.person_id}{about}")


def raise_due_reminders(work: Work, contact_id: str) -> ItemOutcome:
    contact = work.contact(contact_id)
    if contact is None:
        raise NotFound("contact", contact_id, "contact_id")
    due = due_reminders([contact], work.today)
    if not due:
        return ItemOutcome("contact", contact.id, Result.UNCHANGED, "no reminder due")
    created = 0
    for item in due:
        raised = raise_todo(work, work.ids, work.admin, "contact_reminder",
                            DrillKey(kind="contact", id=contact.id),
                            _message(contact, item.reminder), work.now,
                            role=_role_for(work, item.reminder), changes=work.changes)
        entry = raised.entry
        if raised.created:
            created += 1
            if item.reminder.user is not None:
                entry = entry.model_copy(update={"assigned_user": item.reminder.user})
                work.changes.put_todo(entry)
        else:
            log = (*entry.log, ToDoLogEntry(at=work.now, user=SYSTEM_USER,
                                            comment=_message(contact, item.reminder)))
            version = entry.version if entry.id in work.changes.todos else entry.version + 1
            work.changes.put_todo(entry.model_copy(update={"log": log, "version": version}))
    work.save_contact(mark_reminders_sent(contact, [item.index for item in due]))
    return ItemOutcome("contact", contact.id, Result.TODO if created else Result.CHANGED,
                       f"{len(due)} reminder(s) due")
