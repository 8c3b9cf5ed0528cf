"""Control Central search and account view (steps 1.0 and 4.6)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sync.ccb.alerts import LandlordIndicator, PendingStartAlert, PendingStopAlert
from sync.ccb.errors import InvalidCommand
from sync.ccb.memory import InMemoryCcb
from sync.ccb.model import (
    Account,
    Address,
    Entity,
    LandlordAgreement,
    Person,
    Phone,
    Premise,
    SaStatus,
    SeasonalPreference,
    ServiceAgreement,
)
from sync.ccb.ports import CcbView
from sync.ccb.search import (
    MAX_QUERY_LENGTH,
    SearchBy,
    address_matches,
    name_matches,
    normalize_name_query,
    phone_digits,
    phone_matches,
    search,
)
from sync.config.admin import load_admin_config

ADMIN = load_admin_config()
TODAY = dt.date(2024, 5, 2)


class ListSearchView(InMemoryCcb):
    """The search lookups over plain lists, on top of the in-memory CCB view."""

    def __init__(self) -> None:
        super().__init__()
        self.persons: list[Person] = []
        self.premises: list[Premise] = []
        self.accounts: list[Account] = []

    def add(self, *entities: Entity) -> None:
        super().add(*entities)
        for entity in entities:
            if isinstance(entity, Person):
                self.persons.append(entity)
            elif isinstance(entity, Premise):
                self.premises.append(entity)
            elif isinstance(entity, Account):
                self.accounts.append(entity)

    def persons_by_name_prefix(self, prefix: str, limit: int) -> list[Person]:
        return [p for p in self.persons if name_matches(p, prefix)][:limit]

    def persons_by_phone(self, digits: str, limit: int) -> list[Person]:
        return [p for p in self.persons if phone_matches(p, digits)][:limit]

    def premises_by_address(self, fragment: str, limit: int) -> list[Premise]:
        return [p for p in self.premises if address_matches(p.address, fragment)][:limit]

    def accounts_of_person(self, person_id: str) -> list[Account]:
        return [a for a in self.accounts
                if a.main_person_id == person_id or person_id in a.other_person_ids]


def _address(line1: str) -> Address:
    return Address(line1=line1, city="Springfield", state="IL", postal_code="62701")


@pytest.fixture
def ccb() -> ListSearchView:
    view = ListSearchView()
    view.add(
        Person(id="P-LL", name="Oakwood Rentals LLC", is_business=True,
               phones=(Phone(type="business", number="(312) 555-0100", primary=True),)),
        Person(id="P-T1", name="SMITH,JOHN", phones=(Phone(number="312.555.0199"),)),
        Person(id="P-T2", name="Smithers,Anna"),
        Person(id="P-T3", name="JONES,MARY"),
        Account(id="A-LL", main_person_id="P-LL", customer_class="COM", bill_cycle="BC02"),
        Account(id="A-T1", main_person_id="P-T1", other_person_ids=("P-T3",)),
        Account(id="A-T2", main_person_id="P-T2"),
        LandlordAgreement(id="LA-1", landlord_person_id="P-LL", landlord_account_id="A-LL",
                          preferences=(SeasonalPreference(service_type="E"),)),
        Premise(id="PR-1", address=_address("12 Oak St Apt 1"), landlord_agreement_id="LA-1"),
        Premise(id="PR-2", address=_address("12 Oak St Apt 2")),
        Premise(id="PR-9", address=_address("9 Elm Ave")),
        ServiceAgreement(id="SA-T1", account_id="A-T1", sa_type="E-RES",
                         status=SaStatus.PENDING_STOP, start_date=dt.date(2023, 1, 1),
                         end_date=dt.date(2024, 5, 31), premise_id="PR-1"),
        ServiceAgreement(id="SA-LL1", account_id="A-LL", sa_type="E-RES",
                         status=SaStatus.PENDING_START, start_date=dt.date(2024, 5, 31),
                         premise_id="PR-1"),
        ServiceAgreement(id="SA-LL0", account_id="A-LL", sa_type="G-RES",
                         status=SaStatus.ACTIVE, start_date=dt.date(2022, 3, 1),
                         premise_id="PR-2"),
        ServiceAgreement(id="SA-T2", account_id="A-T2", sa_type="W-RES",
                         status=SaStatus.ACTIVE, start_date=dt.date(2021, 6, 1),
                         premise_id="PR-9"),
    )
    return view


def pending_alerts(view: CcbView, account: Account, today: dt.date) -> Sequence[str]:
    """Another alert derivation, to show that the caller may choose it."""
    return [f"{sa.status.label}: {sa.id}" for sa in view.sas_of_account(account.id)
            if sa.status in (SaStatus.PENDING_START, SaStatus.PENDING_STOP)]


def test_step_1_0_search_for_the_landlord_by_name_shows_pending_starts(
    ccb: ListSearchView,
) -> None:
    result = search(ccb, ADMIN, SearchBy.NAME, "oakwood", TODAY)
    (hit,) = result.hits
    assert hit.person_id == "P-LL"
    assert hit.info == "Oakwood Rentals LLC - business (312) 555-0100"
    (account,) = hit.accounts
    assert account.account_id == "A-LL"
    assert account.info == "Account A-LL - COM - Oakwood Rentals LLC - bill cycle BC02"
    assert [(line.sa_id, line.status) for line in account.sas] == [
        ("SA-LL0", SaStatus.ACTIVE), ("SA-LL1", SaStatus.PENDING_START)]
    assert account.sas[1].info == (
        "Residential electric - pending start - from 2024-05-31"
        " - 12 Oak St Apt 1, Springfield, IL 62701"
    )
    assert account.alerts == (
        PendingStartAlert("SA-LL1", "E-RES", dt.date(2024, 5, 31), "PR-1"),
        LandlordIndicator("PR-1", "LA-1", "A-LL", is_landlord=True),
    )


def test_step_4_6_search_for_the_tenant_shows_the_pending_stop_alert(
    ccb: ListSearchView,
) -> None:
    result = search(ccb, ADMIN, SearchBy.NAME, "Smith, John", TODAY)
    (hit,) = result.hits
    assert hit.person_id == "P-T1"
    assert [a.account_id for a in hit.accounts] == ["A-T1"]
    assert hit.accounts[0].alerts == (
        PendingStopAlert("SA-T1", "E-RES", dt.date(2024, 5, 31), "PR-1"),
        LandlordIndicator("PR-1", "LA-1", "A-LL", is_landlord=False),
    )
    assert "2023-01-01 to 2024-05-31" in hit.accounts[0].sas[0].info


def test_the_caller_may_supply_its_own_alert_derivation(ccb: ListSearchView) -> None:
    result = search(ccb, ADMIN, SearchBy.ACCOUNT, "A-T1", TODAY, alerts=pending_alerts)
    assert result.hits[0].accounts[0].alerts == ("pending stop: SA-T1",)


def test_step_4_6_a_last_name_prefix_finds_every_person_whose_name_starts_with_it(
    ccb: ListSearchView,
) -> None:
    result = search(ccb, ADMIN, SearchBy.NAME, "SMITH", TODAY)
    assert [h.person_id for h in result.hits] == ["P-T1", "P-T2"]
    assert not result.truncated


def test_a_name_search_lists_accounts_where_the_person_is_another_person(
    ccb: ListSearchView,
) -> None:
    (hit,) = search(ccb, ADMIN, SearchBy.NAME, "jones", TODAY).hits
    assert [a.account_id for a in hit.accounts] == ["A-T1"]


def test_step_1_0_phone_search_compares_digits_only(ccb: ListSearchView) -> None:
    result = search(ccb, ADMIN, SearchBy.PHONE, "312-555-0100", TODAY)
    assert [h.person_id for h in result.hits] == ["P-LL"]
    result = search(ccb, ADMIN, SearchBy.PHONE, "(312) 5550199", TODAY)
    assert [h.person_id for h in result.hits] == ["P-T1"]
    assert search(ccb, ADMIN, SearchBy.PHONE, "5550199", TODAY).hits == ()


def test_account_and_sa_search_show_that_account_under_its_main_person(
    ccb: ListSearchView,
) -> None:
    by_account = search(ccb, ADMIN, SearchBy.ACCOUNT, "A-T1", TODAY)
    assert [(h.person_id, [a.account_id for a in h.accounts]) for h in by_account.hits] == [
        ("P-T1", ["A-T1"])]
    by_sa = search(ccb, ADMIN, SearchBy.SA, "SA-LL1", TODAY)
    assert [(h.person_id, [a.account_id for a in h.accounts]) for h in by_sa.hits] == [
        ("P-LL", ["A-LL"])]


def test_address_search_finds_the_accounts_served_at_matching_premises(
    ccb: ListSearchView,
) -> None:
    result = search(ccb, ADMIN, SearchBy.ADDRESS, "oak st", TODAY)
    assert [(h.person_id, [a.account_id for a in h.accounts]) for h in result.hits] == [
        ("P-LL", ["A-LL"]), ("P-T1", ["A-T1"])]
    only_unit_2 = search(ccb, ADMIN, SearchBy.ADDRESS, "APT 2", TODAY)
    assert [h.person_id for h in only_unit_2.hits] == ["P-LL"]


def test_searches_that_match_nothing_return_no_hits(ccb: ListSearchView) -> None:
    for by, query in [(SearchBy.NAME, "zzz"), (SearchBy.ACCOUNT, "A-404"),
                      (SearchBy.SA, "SA-404"), (SearchBy.ADDRESS, "Main St")]:
        assert search(ccb, ADMIN, by, query, TODAY).hits == ()


def test_blank_or_digitless_queries_are_refused(ccb: ListSearchView) -> None:
    with pytest.raises(InvalidCommand, match="search 'name': query: must not be blank"):
        search(ccb, ADMIN, SearchBy.NAME, "  ", TODAY)
    with pytest.raises(InvalidCommand, match="a phone search needs digits"):
        search(ccb, ADMIN, SearchBy.PHONE, "call me", TODAY)


@pytest.mark.parametrize("by", list(SearchBy))
def test_step_1_0_a_query_longer_than_the_bound_is_refused(ccb: ListSearchView,
                                                         by: SearchBy) -> None:
    # Every entry point (CLI, console, API) goes through here; the SQL store would turn a long
    # name or address query into a LIKE pattern SQLite refuses as too complex.
    assert MAX_QUERY_LENGTH == 200
    with pytest.raises(InvalidCommand) as raised:
        search(ccb, ADMIN, by, "5" * 60_000, TODAY)
    assert str(raised.value) == (f"search {by.value!r}: query: 60000 characters long; at most"
                                 " 200 allowed")
    assert search(ccb, ADMIN, by, "5" * MAX_QUERY_LENGTH, TODAY).hits == ()


def test_too_many_candidates_are_cut_at_the_limit_and_flagged(ccb: ListSearchView) -> None:
    result = search(ccb, ADMIN, SearchBy.NAME, "s", TODAY, max_hits=1)
    assert [h.person_id for h in result.hits] == ["P-T1"]
    assert result.truncated


def test_query_normalization() -> None:
    assert normalize_name_query("  Smith ,  John ") == "smith,john"
    assert normalize_name_query("Van  Der Berg") == "van der berg"
    assert phone_digits("+1 (312) 555-0100") == "13125550100"


@given(last=st.from_regex(r"[A-Za-z]{1,8}", fullmatch=True),
       first=st.from_regex(r"[A-Za-z]{1,8}", fullmatch=True),
       cut=st.integers(min_value=1, max_value=17),
       upper=st.booleans())
def test_any_prefix_of_a_name_in_any_case_finds_the_person(
    last: str, first: str, cut: int, upper: bool
) -> None:
    person = Person(id="P-1", name=f"{last},{first}")
    typed = person.name[:cut]
    typed = typed.upper() if upper else typed.lower()
    assert name_matches(person, normalize_name_query(typed.replace(",", " , ")))
