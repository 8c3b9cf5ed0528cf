"""Info strings (C2MPERS-INFO, C1-ACCT-INFO, C2M-SAT-INFO) and person name validation
(C2M-PERNMVAL), steps 1.0 and 4.6 of the stop process."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sync.algorithms import Spot, registry
from sync.ccb.errors import InvalidCommand
from sync.ccb.info import (
    account_info,
    check_person_name,
    describe_account,
    describe_person,
    describe_sa,
    person_info,
    sa_info,
    validate_person_name,
)
from sync.ccb.model import (
    Account,
    Address,
    Person,
    Phone,
    Premise,
    SaStatus,
    ServiceAgreement,
)
from sync.config.admin import AdminConfig, Algorithms, load_admin_config

ADMIN = load_admin_config()
ADDRESS = Address(line1="12 Oak St", city="Springfield", state="IL", postal_code="62701")


class _View:
    def __init__(self, persons: list[Person], premises: list[Premise]) -> None:
        self._persons = {p.id: p for p in persons}
        self._premises = {p.id: p for p in premises}

    def person(self, person_id: str) -> Person | None:
        return self._persons.get(person_id)

    def premise(self, premise_id: str) -> Premise | None:
        return self._premises.get(premise_id)


# --- C2M-PERNMVAL ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    ["SMITH,JOHN", "Smith,John", "O'BRIEN,SEAN", "VAN DER BERG,ANNA MARIE",
     "SMITH-JONES,MARY", "KING JR.,MARTIN", "ST. JOHN,ALICE", "MÜLLER,JÜRGEN", "de la Cruz,José"],
)
def test_step_1_0_person_names_last_comma_first_are_valid(name: str) -> None:
    assert validate_person_name(name, is_business=False) == ()


@pytest.mark.parametrize(
    ("name", "fragment"),
    [
        ("JOHN SMITH", "exactly one comma (got 0)"),
        ("SMITH,JOHN,JR", "exactly one comma (got 2)"),
        ("SMITH, JOHN", "no spaces are allowed around the comma"),
        ("SMITH ,JOHN", "no spaces are allowed around the comma"),
        (",JOHN", "the last name part of LAST,FIRST is empty"),
        ("SMITH,", "the first name part of LAST,FIRST is empty"),
        ("SMITH2,JOHN", "the last name 'SMITH2' may hold only letters"),
        ("SMITH,JO  HN", "the first name 'JO  HN' may hold only letters"),
        (" SMITH,JOHN", "must not start or end with spaces"),
        ("   ", "must not be blank"),
        ("", "must not be blank"),
    ],
)
def test_step_1_0_bad_person_names_are_rejected_with_the_reason(name: str, fragment: str) -> None:
    problems = validate_person_name(name, is_business=False)
    assert any(fragment in problem for problem in problems), problems


def test_business_names_are_free_form_but_not_blank() -> None:
    assert validate_person_name("Acme Property Mgmt, LLC #2", is_business=True) == ()
    assert validate_person_name("  ", is_business=True) == ("must not be blank",)
    assert validate_person_name("A" * 255, is_business=True) == (
        "must be at most 254 characters (got 255)",
    )


@given(
    last=st.from_regex(r"[A-Z]{1,8}([ '-][A-Z]{1,8}){0,2}", fullmatch=True),
    first=st.from_regex(r"[A-Z]{1,10}( [A-Z]{1,10})?", fullmatch=True),
)
def test_any_well_formed_last_first_is_valid(last: str, first: str) -> None:
    assert validate_person_name(f"{last},{first}", is_business=False) == ()


@given(name=st.text(max_size=30).filter(lambda n: n.count(",") != 1 and n.strip() != ""))
def test_a_person_name_without_exactly_one_comma_is_never_valid(name: str) -> None:
    assert validate_person_name(name, is_business=False) != ()


def test_check_person_name_raises_naming_the_person_and_the_field() -> None:
    with pytest.raises(InvalidCommand) as caught:
        check_person_name(ADMIN, "P-7", "JOHN SMITH", is_business=False)
    assert caught.value.entity_id == "P-7"
    assert caught.value.field == "name"
    assert "C2M-PERNMVAL" in str(caught.value)
    check_person_name(ADMIN, "P-7", "SMITH,JOHN", is_business=False)


def test_name_validation_switched_off_accepts_any_name() -> None:
    data = ADMIN.model_dump()
    data["algorithms"] = Algorithms(person_name_validation=None).model_dump()
    admin = AdminConfig.model_validate(data)
    check_person_name(admin, "P-7", "JOHN SMITH", is_business=False)


# --- info strings ---------------------------------------------------------------------------


def test_the_info_algorithms_are_bound_to_their_catalogue_codes() -> None:
    assert registry.get(Spot.PERSON_INFO, "C2MPERS-INFO") is person_info
    assert registry.get(Spot.ACCOUNT_INFO, "C1-ACCT-INFO") is account_info
    assert registry.get(Spot.SA_TYPE_INFO, "C2M-SAT-INFO") is sa_info
    assert registry.get(Spot.PERSON_NAME_VALIDATION, "C2M-PERNMVAL") is validate_person_name


def test_step_1_0_person_info_is_name_and_primary_phone() -> None:
    person = Person(id="P-1", name="SMITH,JOHN", phones=(
        Phone(type="work", number="312-555-0199"),
        Phone(type="cell", number="312-555-0100", primary=True),
    ))
    assert describe_person(ADMIN, person) == "SMITH,JOHN - cell 312-555-0100"


def test_person_info_without_a_primary_phone_uses_the_first_and_without_phones_the_name() -> None:
    first = Person(id="P-1", name="SMITH,JOHN", phones=(Phone(type="home", number="555-0001"),
                                                        Phone(type="work", number="555-0002")))
    assert person_info(first) == "SMITH,JOHN - home 555-0001"
    assert person_info(Person(id="P-2", name="DOE,JANE")) == "DOE,JANE"


def test_step_4_6_account_info_names_class_main_person_and_bill_cycle() -> None:
    view = _View([Person(id="P-1", name="SMITH,JOHN")], [])
    account = Account(id="A-1", main_person_id="P-1", customer_class="RES", bill_cycle="BC07")
    assert describe_account(ADMIN, view, account) == (
        "Account A-1 - RES - SMITH,JOHN - bill cycle BC07"
    )
    orphan = account.model_copy(update={"main_person_id": "P-9"})
    assert "P-9 (missing)" in describe_account(ADMIN, view, orphan)


def test_step_4_6_sa_info_shows_type_status_dates_and_premise_address() -> None:
    view = _View([], [Premise(id="PR-1", address=ADDRESS)])
    sa = ServiceAgreement(id="SA-1", account_id="A-1", sa_type="E-RES",
                          status=SaStatus.PENDING_STOP, start_date=dt.date(2024, 1, 1),
                          end_date=dt.date(2024, 6, 30), premise_id="PR-1")
    assert describe_sa(ADMIN, view, sa) == (
        "Residential electric - pending stop - 2024-01-01 to 2024-06-30"
        " - 12 Oak St, Springfield, IL 62701"
    )


def test_sa_info_of_an_open_ended_non_premise_sa_of_unknown_type() -> None:
    view = _View([], [])
    sa = ServiceAgreement(id="SA-2", account_id="A-1", sa_type="X-NEW",
                          status=SaStatus.ACTIVE, start_date=dt.date(2024, 3, 1))
    assert describe_sa(ADMIN, view, sa) == "X-NEW - active - from 2024-03-01"
