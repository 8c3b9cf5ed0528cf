"""Customer contacts (seed 002): main, log, characteristics, reminders, letters, case files."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sync.ccb.contacts import (
    AddCharacteristic,
    AddContact,
    AddContactLog,
    AddReminder,
    CloseContact,
    add_characteristic,
    add_contact,
    add_contact_log,
    add_reminder,
    close_contact,
    contact_for_account,
    due_reminders,
    mark_reminders_sent,
)
from sync.ccb.errors import InvalidCommand, NotFound
from sync.ccb.memory import InMemoryCcb
from sync.ccb.model import (
    Account,
    Address,
    ContactCharacteristic,
    ContactReminder,
    CustomerContact,
    Person,
    Premise,
)
from sync.config.admin import load_admin_config

ADMIN = load_admin_config()
NOW = dt.datetime(2024, 5, 2, 9, 30, tzinfo=dt.UTC)
TODAY = NOW.date()


@pytest.fixture
def store() -> InMemoryCcb:
    ccb = InMemoryCcb()
    ccb.add(
        Person(id="P-1", name="SMITH,JOHN"),
        Person(id="P-2", name="DOE,JANE"),
        Account(id="A-1", main_person_id="P-1", other_person_ids=("P-2",)),
        Account(id="A-2", main_person_id="P-2"),
        Premise(id="PR-1", address=Address(line1="12 Oak St", city="Springfield", state="IL",
                                           postal_code="62701")),
    )
    return ccb


def _add(store: InMemoryCcb, command: AddContact) -> CustomerContact:
    changes = store.execute(lambda v, i: add_contact(v, i, ADMIN, command, NOW))
    (contact,) = changes.contacts.values()
    stored = store.contact(contact.id)
    assert stored == contact
    return contact


def test_seed_002_main_a_contact_records_who_when_why_and_how(store: InMemoryCcb) -> None:
    contact = _add(store, AddContact(person_id="P-1", contact_type="INQUIRY", user="csr1",
                                     method="email", account_id="A-1", premise_id="PR-1",
                                     comments="asked about the due date"))
    assert contact.person_id == "P-1"
    assert (contact.account_id, contact.premise_id) == ("A-1", "PR-1")
    assert (contact.contact_class, contact.contact_type) == ("RES", "INQUIRY")
    assert (contact.contacted_at, contact.method, contact.user) == (NOW, "email", "csr1")
    assert contact.comments == "asked about the due date"
    assert not contact.open
    assert (contact.letter_template, contact.letter_queued) == (None, False)
    assert contact.version == 1


def test_seed_002_a_contact_needs_only_a_person(store: InMemoryCcb) -> None:
    contact = _add(store, AddContact(person_id="P-2", contact_type="INQUIRY", user="csr1"))
    assert (contact.account_id, contact.premise_id) == (None, None)


def test_seed_002_a_contact_type_with_a_letter_template_queues_the_letter(
    store: InMemoryCcb,
) -> None:
    contact = _add(store, AddContact(person_id="P-1", contact_type="STOPSVC", user="csr1"))
    assert (contact.letter_template, contact.letter_queued) == ("STOP-CONFIRM", True)
    landlord = _add(store, AddContact(person_id="P-2", contact_type="LLREV", user="csr1"))
    assert (landlord.contact_class, landlord.letter_template) == ("LL", "LL-REVERSION")


def test_a_service_change_records_its_contact_on_the_accounts_main_person(
    store: InMemoryCcb,
) -> None:
    contact = contact_for_account(store, store, ADMIN, account_id="A-1", contact_type="STOPSVC",
                                  method="phone", user="csr1", now=NOW, premise_id="PR-1",
                                  comments="stop requested")
    assert (contact.person_id, contact.account_id, contact.premise_id) == ("P-1", "A-1", "PR-1")
    assert contact.letter_queued
    with pytest.raises(NotFound, match="account 'A-9' not found"):
        contact_for_account(store, store, ADMIN, account_id="A-9", contact_type="STOPSVC",
                            method="phone", user="csr1", now=NOW)


@pytest.mark.parametrize(
    ("command", "error", "fragment"),
    [
        (AddContact(person_id="", contact_type="INQUIRY", user="csr1"), InvalidCommand,
         "person_id: a contact needs a person"),
        (AddContact(person_id="P-9", contact_type="INQUIRY", user="csr1"), NotFound,
         "person 'P-9' not found (person_id)"),
        (AddContact(person_id="P-1", contact_type="INQUIRY", user="csr1", account_id="A-9"),
         NotFound, "account 'A-9' not found (account_id)"),
        (AddContact(person_id="P-1", contact_type="INQUIRY", user="csr1", account_id="A-2"),
         InvalidCommand, "account 'A-2': person_id: does not list person 'P-1'"),
        (AddContact(person_id="P-1", contact_type="INQUIRY", user="csr1", premise_id="PR-9"),
         NotFound, "premise 'PR-9' not found (premise_id)"),
        (AddContact(person_id="P-1", contact_type="GOSSIP", user="csr1"), InvalidCommand,
         "contact type 'GOSSIP': contact_type: unknown"),
        (AddContact(person_id="P-1", contact_type="INQUIRY", user="csr1", method="pigeon"),
         InvalidCommand, "method: unknown method 'pigeon'"),
        (AddContact(person_id="P-1", contact_type="INQUIRY", user=" "), InvalidCommand,
         "user: must not be blank"),
    ],
)
def test_bad_contacts_are_refused_and_nothing_is_recorded(
    store: InMemoryCcb, command: AddContact, error: type[Exception], fragment: str
) -> None:
    before = store.state()
    with pytest.raises(error) as caught:
        store.execute(lambda v, i: add_contact(v, i, ADMIN, command, NOW))
    assert fragment in str(caught.value)
    assert store.state() == before


def test_other_persons_of_an_account_may_be_the_contact_person(store: InMemoryCcb) -> None:
    contact = _add(store, AddContact(person_id="P-2", contact_type="INQUIRY", user="csr2",
                                     account_id="A-1"))
    assert (contact.person_id, contact.account_id) == ("P-2", "A-1")


# --- log, characteristics, case files ---------------------------------------------------------


def test_seed_002_log_entries_accumulate_on_the_contact(store: InMemoryCcb) -> None:
    contact = _add(store, AddContact(person_id="P-1", contact_type="INQUIRY", user="csr1"))
    later = NOW + dt.timedelta(days=1)
    store.execute(lambda v, i: add_contact_log(
        v, AddContactLog(contact.id, "csr2", "called back, left a message"), later))
    store.execute(lambda v, i: add_contact_log(
        v, AddContactLog(contact.id, "csr1", "customer confirmed"), later))
    stored = store.contact(contact.id)
    assert stored is not None
    assert [(e.at, e.user, e.comment) for e in stored.log] == [
        (later, "csr2", "called back, left a message"),
        (later, "csr1", "customer confirmed"),
    ]
    assert stored.version == 3


def test_seed_002_characteristics_are_kept_and_an_exact_duplicate_is_refused(
    store: InMemoryCcb,
) -> None:
    contact = _add(store, AddContact(person_id="P-1", contact_type="INQUIRY", user="csr1"))
    store.execute(lambda v, i: add_characteristic(v, AddCharacteristic(contact.id, "REASON",
                                                                       "HIGH-BILL")))
    store.execute(lambda v, i: add_characteristic(v, AddCharacteristic(contact.id, "REASON",
                                                                       "MOVE")))
    before = store.state()
    with pytest.raises(InvalidCommand, match="already has REASON='MOVE'"):
        store.execute(lambda v, i: add_characteristic(v, AddCharacteristic(contact.id, "REASON",
                                                                           "MOVE")))
    with pytest.raises(InvalidCommand, match="value: must not be blank"):
        store.execute(lambda v, i: add_characteristic(v, AddCharacteristic(contact.id, "REASON",
                                                                           "")))
    assert store.state() == before
    stored = store.contact(contact.id)
    assert stored is not None
    assert stored.characteristics == (ContactCharacteristic(type="REASON", value="HIGH-BILL"),
                                      ContactCharacteristic(type="REASON", value="MOVE"))


def test_seed_002_an_open_contact_is_a_case_file_until_closed(store: InMemoryCcb) -> None:
    contact = _add(store, AddContact(person_id="P-1", contact_type="INQUIRY", user="csr1",
                                     open=True))
    assert contact.open
    store.execute(lambda v, i: close_contact(v, CloseContact(contact.id, "csr1", "resolved"),
                                             NOW))
    closed = store.contact(contact.id)
    assert closed is not None
    assert not closed.open
    assert closed.log[-1].comment == "closed: resolved"
    before = store.state()
    with pytest.raises(InvalidCommand, match="open: is not open"):
        store.execute(lambda v, i: close_contact(v, CloseContact(contact.id, "csr1"), NOW))
    assert store.state() == before


def test_maintaining_an_unknown_contact_is_refused(store: InMemoryCcb) -> None:
    before = store.state()
    for command in (
        lambda v, i: add_contact_log(v, AddContactLog("CONTACT-9", "csr1", "x"), NOW),
        lambda v, i: add_characteristic(v, AddCharacteristic("CONTACT-9", "REASON", "X")),
        lambda v, i: add_reminder(v, ADMIN, AddReminder("CONTACT-9", TODAY, user="csr1")),
        lambda v, i: close_contact(v, CloseContact("CONTACT-9", "csr1"), NOW),
    ):
        with pytest.raises(NotFound, match="contact 'CONTACT-9' not found"):
            store.execute(command)
    assert store.state() == before


# --- reminders -------------------------------------------------------------------------------


def test_seed_002_reminders_go_to_a_user_or_a_role(store: InMemoryCcb) -> None:
    contact = _add(store, AddContact(person_id="P-1", contact_type="INQUIRY", user="csr1"))
    in_a_week = TODAY + dt.timedelta(days=7)
    store.execute(lambda v, i: add_reminder(v, ADMIN, AddReminder(contact.id, in_a_week,
                                                                  user="csr2")))
    store.execute(lambda v, i: add_reminder(v, ADMIN, AddReminder(contact.id, in_a_week,
                                                                  role="BILLING")))
    store.execute(lambda v, i: add_reminder(v, ADMIN, AddReminder(contact.id, TODAY,
                                                                  user="csr1", role="CSR")))
    stored = store.contact(contact.id)
    assert stored is not None
    assert stored.reminders == (
        ContactReminder(trigger_date=in_a_week, user="csr2"),
        ContactReminder(trigger_date=in_a_week, role="BILLING"),
        ContactReminder(trigger_date=TODAY, user="csr1", role="CSR"),
    )


@pytest.mark.parametrize(
    ("reminder", "fragment"),
    [
        (AddReminder("", TODAY), "reminder: a reminder needs a user or a role"),
        (AddReminder("", TODAY, role="NOBODY"), "role: unknown To Do role 'NOBODY'"),
        (AddReminder("", TODAY, user="billing1", role="CSR"),
         "user: user 'billing1' is not in role CSR"),
        (AddReminder("", TODAY, user="stranger"), "user: user 'stranger' is in no To Do role"),
        (AddReminder("", TODAY - dt.timedelta(days=1), user="csr1"),
         "trigger_date: 2024-05-01 is before the contact date 2024-05-02"),
    ],
)
def test_bad_reminders_are_refused(store: InMemoryCcb, reminder: AddReminder,
                                   fragment: str) -> None:
    contact = _add(store, AddContact(person_id="P-1", contact_type="INQUIRY", user="csr1"))
    command = AddReminder(contact.id, reminder.trigger_date, reminder.user, reminder.role)
    before = store.state()
    with pytest.raises(InvalidCommand) as caught:
        store.execute(lambda v, i: add_reminder(v, ADMIN, command))
    assert f"contact '{contact.id}': {fragment}" in str(caught.value)
    assert store.state() == before


def _contact(contact_id: str, *reminders: ContactReminder) -> CustomerContact:
    return CustomerContact(id=contact_id, person_id="P-1", contact_class="RES",
                           contact_type="INQUIRY", contacted_at=NOW, user="csr1",
                           reminders=reminders)


def test_seed_002_due_reminders_are_those_not_sent_and_triggered_by_the_business_date() -> None:
    day = dt.timedelta(days=1)
    first = _contact("C-1", ContactReminder(trigger_date=TODAY + day, user="csr1"),
                     ContactReminder(trigger_date=TODAY, role="CSR", sent=True),
                     ContactReminder(trigger_date=TODAY - day, role="CSR"))
    second = _contact("C-2", ContactReminder(trigger_date=TODAY, user="csr2"))
    due = due_reminders([first, second], TODAY)
    assert [(d.contact.id, d.index) for d in due] == [("C-1", 2), ("C-2", 0)]
    assert [(d.contact.id, d.index) for d in due_reminders([first, second], TODAY + day)] == [
        ("C-1", 2), ("C-2", 0), ("C-1", 0)]
    assert due_reminders([first, second], TODAY - 2 * day) == []


def test_a_reminder_marked_sent_is_no_longer_due() -> None:
    contact = _contact("C-1", ContactReminder(trigger_date=TODAY, user="csr1"),
                       ContactReminder(trigger_date=TODAY, role="CSR"))
    sent = mark_reminders_sent(contact, [0, 1])
    assert sent.version == contact.version  # the unit of work sets the next one
    assert due_reminders([sent], TODAY) == []
    with pytest.raises(InvalidCommand, match=r"reminders\[5\]: no such reminder"):
        mark_reminders_sent(contact, [5])


@given(
    offsets=st.lists(st.tuples(st.integers(-10, 10), st.booleans()), max_size=6),
    business_offset=st.integers(-10, 10),
)
def test_due_reminders_are_exactly_the_unsent_ones_on_or_before_the_date(
    offsets: list[tuple[int, bool]], business_offset: int
) -> None:
    reminders = [ContactReminder(trigger_date=TODAY + dt.timedelta(days=d), role="CSR", sent=s)
                 for d, s in offsets]
    contact = _contact("C-1", *reminders)
    business_date = TODAY + dt.timedelta(days=business_offset)
    due = {d.index for d in due_reminders([contact], business_date)}
    assert due == {i for i, r in enumerate(reminders)
                   if not r.sent and r.trigger_date <= business_date}
