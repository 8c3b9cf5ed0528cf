"""Reviewing a pending stop and changing details that leave its dates alone (steps 2.0–2.3).

* :func:`pending_stop_impact` (2.0–2.1) is a read-only query: what a change to a pending stop
  would touch (the SA tied to it, the next customer's start, pending field activities).
* :class:`ChangePersonDetails` and :class:`ChangeAccountDetails` (2.2) change a person's or an
  account's contact details; no date moves. Each records an INQUIRY customer contact so the
  call leaves a trace on the customer.
* :class:`UpdatePendingStop` (2.3) sets or clears the forwarding mailing address of a pending
  stop; the address becomes the account's when the SA stops
  (:func:`sync.ccb.consequences.apply_forwarding_address`).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sync.ccb.changes import Changes
from sync.ccb.commands import DEFAULT_USER
from sync.ccb.contacts import new_contact
from sync.ccb.errors import InvalidCommand, InvalidTransition, NotFound
from sync.ccb.info import check_person_name
from sync.ccb.model import (
    Address,
    AuditEntry,
    FaStatus,
    FieldActivity,
    Person,
    Phone,
    SaStatus,
    ServiceAgreement,
)
from sync.ccb.ports import CcbView, IdSource
from sync.ccb.stop_start import finish, record_contact, require_account, require_sa
from sync.ccb.work import Work
from sync.config.admin import AdminConfig

# Detail changes are inquiries: no installation ships a more specific contact type for them.
DETAILS_CONTACT_TYPE = "INQUIRY"
UPDATE_PENDING_STOP = "update pending stop"

# --- 2.0–2.1: the impact of changing a pending stop -----------------------------------------


@dataclass(frozen=True)
class PendingStopImpact:
    """What a change to the pending stop of ``sa`` would touch."""

    sa: ServiceAgreement
    stop_date: dt.date
    # The SA whose start stopped this one (a landlord's stop tied to the new tenant's start),
    # or the SA this one was started for (a landlord reversion after a tenant's stop).
    reciprocal: ServiceAgreement | None
    # Who takes over: the earliest pending start at the same SPs on or after the stop date.
    next_start: ServiceAgreement | None
    pending_field_activities: tuple[FieldActivity, ...]
    # Pending starts that begin on the stop date (back-to-back): a date change moves them.
    moved_by_date_change: tuple[ServiceAgreement, ...]

    @property
    def date_change_moves_others(self) -> bool:
        return bool(self.moved_by_date_change)


def pending_stop_impact(view: CcbView, sa_id: str) -> PendingStopImpact:
    sa = view.sa(sa_id)
    if sa is None:
        raise NotFound("SA", sa_id, "sa_id")
    if sa.end_date is None or sa.status not in (SaStatus.PENDING_STOP, SaStatus.PENDING_START):
        raise InvalidCommand("SA", sa.id, "status",
                             f"has no pending stop (status {sa.status.value}"
                             f" {sa.status.label})")
    stop_date = sa.end_date
    reciprocal_id = ((sa.stopped_by.reciprocal_sa_id if sa.stopped_by else None)
                     or sa.created_by.reciprocal_sa_id)
    reciprocal = view.sa(reciprocal_id) if reciprocal_id is not None else None
    others: dict[str, ServiceAgreement] = {}
    for link in view.links_of_sa(sa.id):
        for other_link in view.links_at_sp(link.sp_id):
            other = view.sa(other_link.sa_id)
            if other is not None and other.id != sa.id:
                others[other.id] = other
    starts = sorted((other for other in others.values()
                     if other.status is SaStatus.PENDING_START
                     and other.start_date >= stop_date),
                    key=lambda other: (other.start_date, other.id))
    fas = tuple(fa for fa in view.field_activities_of_sa(sa.id)
                if fa.status is FaStatus.PENDING)
    return PendingStopImpact(
        sa=sa, stop_date=stop_date, reciprocal=reciprocal,
        next_start=starts[0] if starts else None, pending_field_activities=fas,
        moved_by_date_change=tuple(s for s in starts if s.start_date == stop_date))


# --- 2.2: person and account details -------------------------------------------------------


@dataclass(frozen=True)
class ChangePersonDetails:
    """Step 2.2: a person's name, email, phones (replacing the list) or mailing address."""

    person_id: str
    name: str | None = None
    email: str | None = None
    phones: tuple[Phone, ...] | None = None
    mailing_address: Address | None = None
    contact_method: str = "phone"
    user: str = DEFAULT_USER


@dataclass(frozen=True)
class ChangeAccountDetails:
    """Step 2.2: where the account's mail goes (a premise or an address) and its bill cycle."""

    account_id: str
    mailing_premise_id: str | None = None
    mailing_address: Address | None = None
    bill_cycle: str | None = None
    contact_method: str = "phone"
    user: str = DEFAULT_USER


@dataclass(frozen=True)
class UpdatePendingStop:
    """Step 2.3: set (or with None clear) the forwarding address of a pending stop."""

    sa_id: str
    forwarding_address: Address | None
    contact_method: str = "phone"
    user: str = DEFAULT_USER


DetailsCommand = ChangePersonDetails | ChangeAccountDetails | UpdatePendingStop


def _check_email(person_id: str, email: str) -> None:
    local, at, domain = email.partition("@")
    if not (local and at and "." in domain.strip(".")) or any(c.isspace() for c in email):
        raise InvalidCommand("person", person_id, "email", f"{email!r} is not an email address")


def _check_phones(person_id: str, phones: tuple[Phone, ...]) -> None:
    for index, phone in enumerate(phones):
        if not phone.type.strip() or not any(c.isdigit() for c in phone.number):
            raise InvalidCommand("person", person_id, f"phones[{index}]",
                                 f"{phone.type}:{phone.number} needs a type and a number")


def change_person_details(view: CcbView, ids: IdSource, admin: AdminConfig,
                          command: ChangePersonDetails, today: dt.date,
                          now: dt.datetime) -> Changes:
    work = Work(view, ids, admin, today, now, command.user)
    person = work.person(command.person_id)
    if person is None:
        raise NotFound("person", command.person_id, "person_id")
    updates: dict[str, object] = {}
    if command.name is not None:
        check_person_name(admin, person.id, command.name, person.is_business)
        updates["name"] = command.name
    if command.email is not None:
        _check_email(person.id, command.email)
        updates["email"] = command.email
    if command.phones is not None:
        _check_phones(person.id, command.phones)
        updates["phones"] = command.phones
    if command.mailing_address is not None:
        updates["mailing_address"] = command.mailing_address
    changed = {key: value for key, value in updates.items() if getattr(person, key) != value}
    if not changed:
        raise InvalidCommand("person", person.id, "details", "nothing to change")
    saved: Person = work.save_person(person.model_copy(update=changed))
    work.note(f"person {saved.id}: {', '.join(sorted(changed))} changed")
    if DETAILS_CONTACT_TYPE in admin.contact_types:
        work.save_contact(new_contact(
            work, ids, admin, person_id=person.id, contact_type=DETAILS_CONTACT_TYPE,
            method=command.contact_method, user=command.user, now=now,
            comments=f"person details changed: {', '.join(sorted(changed))}"))
    return finish(work)


def change_account_details(view: CcbView, ids: IdSource, admin: AdminConfig,
                           command: ChangeAccountDetails, today: dt.date,
                           now: dt.datetime) -> Changes:
    work = Work(view, ids, admin, today, now, command.user)
    account = require_account(work, command.account_id)
    updates: dict[str, object] = {}
    if command.mailing_premise_id is not None and command.mailing_address is not None:
        raise InvalidCommand("account", account.id, "mailing_address",
                             "name a mailing premise or a mailing address, not both")
    if command.mailing_premise_id is not None:
        if work.premise(command.mailing_premise_id) is None:
            raise NotFound("premise", command.mailing_premise_id, "mailing_premise_id")
        # The mailing premise is the default source; an explicit address would override it.
        updates.update(mailing_premise_id=command.mailing_premise_id, mailing_address=None)
    if command.mailing_address is not None:
        updates.update(mailing_address=command.mailing_address, mailing_premise_id=None)
    if command.bill_cycle is not None:
        if not command.bill_cycle.strip() or command.bill_cycle != command.bill_cycle.strip():
            raise InvalidCommand("account", account.id, "bill_cycle",
                                 f"{command.bill_cycle!r} is not a bill cycle code")
        updates["bill_cycle"] = command.bill_cycle
    changed = {key: value for key, value in updates.items() if getattr(account, key) != value}
    if not changed:
        raise InvalidCommand("account", account.id, "details", "nothing to change")
    work.save_account(account.model_copy(update=changed))
    work.note(f"account {account.id}: {', '.join(sorted(changed))} changed")
    record_contact(work, account.id, DETAILS_CONTACT_TYPE, command.contact_method, None,
                   f"account details changed: {', '.join(sorted(changed))}")
    return finish(work)


# --- 2.3: the pending stop itself ----------------------------------------------------------


def update_pending_stop(view: CcbView, ids: IdSource, admin: AdminConfig,
                        command: UpdatePendingStop, today: dt.date,
                        now: dt.datetime) -> Changes:
    work = Work(view, ids, admin, today, now, command.user)
    sa = require_sa(work, command.sa_id)
    if sa.status is not SaStatus.PENDING_STOP:
        raise InvalidTransition(sa.id, sa.status, UPDATE_PENDING_STOP,
                                "only a pending stop (30) carries a forwarding address")
    if sa.forwarding_address == command.forwarding_address:
        raise InvalidCommand("SA", sa.id, "forwarding_address", "nothing to change")
    address = command.forwarding_address
    details = (f"forwarding address {address.one_line()}" if address is not None
               else "forwarding address cleared")
    # Same status on both sides: dates and status stay, the audit log still shows the change.
    entry = AuditEntry(at=now, user=command.user, action=UPDATE_PENDING_STOP,
                       from_status=sa.status, to_status=sa.status, details=details)
    work.save_sa(sa.model_copy(update={"forwarding_address": address,
                                       "audit": (*sa.audit, entry)}))
    work.note(f"SA {sa.id}: {details}")
    record_contact(work, sa.account_id, DETAILS_CONTACT_TYPE, command.contact_method,
                   sa.premise_id, f"SA {sa.id} pending stop: {details}")
    return finish(work)
