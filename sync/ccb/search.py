"""Control Central search (steps 1.0 and 4.6): find the customer, show the account view.

A CSR searches by one criterion:

* ``name``    — case-insensitive prefix of the person's name. Person names are ``LAST,FIRST``,
  so "smi" finds "SMITH,JOHN" by the last-name part and "smith,jo" narrows on the first name;
  spaces typed around the comma are ignored. Business names match on their beginning.
* ``phone``   — digits only on both sides: "(312) 555-0100" finds "312.555.0100".
* ``account`` / ``sa`` — the id, exactly.
* ``address`` — case-insensitive substring of the premise's one-line address.

The answer is person-centred, like the source system's Control Central: each hit is a person
(info string ``C2MPERS-INFO``) with the accounts that made it match (``C1-ACCT-INFO``), each with
its SAs (``C2M-SAT-INFO``) and its dashboard alerts (:mod:`sync.ccb.alerts`). A name or
phone hit lists all the person's accounts; an account or SA search lists that account under its
main person; an address search lists the accounts with SAs at the matching premises under their
main persons. A search that finds nothing is an empty result, not an error; a blank query, or
one longer than :data:`MAX_QUERY_LENGTH` characters, is an error.

Candidate lookups need reads the shared ``CcbView`` does not have; :class:`SearchView` adds them
(the SQL store implements them with indexed queries).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Generic, Protocol, TypeVar, overload

from sync.ccb.alerts import Alert, dashboard_alerts
from sync.ccb.errors import InvalidCommand
from sync.ccb.info import describe_account, describe_person, describe_sa
from sync.ccb.model import Account, Address, Person, Premise, SaStatus
from sync.ccb.ports import CcbView
from sync.config.admin import AdminConfig

DEFAULT_MAX_HITS = 50
# Longer than any name, phone number, id or address a CSR types. A bound is needed because a
# long name or address query becomes a LIKE pattern that SQLite refuses as too complex (and
# that no database should be asked to match).
MAX_QUERY_LENGTH = 200


class SearchView(CcbView, Protocol):
    """``CcbView`` plus the candidate lookups of Control Central search.

    Each lookup returns at most ``limit`` entities, in any order.
    """

    def persons_by_name_prefix(self, prefix: str, limit: int) -> list[Person]:
        """Persons whose name, lower-cased, starts with ``prefix`` (already lower-cased and
        normalized by :func:`normalize_name_query`)."""
        ...

    def persons_by_phone(self, digits: str, limit: int) -> list[Person]:
        """Persons with a phone whose number, stripped of every non-digit, equals ``digits``."""
        ...

    def premises_by_address(self, fragment: str, limit: int) -> list[Premise]:
        """Premises whose :meth:`Address.one_line`, lower-cased, contains ``fragment``
        (already lower-cased)."""
        ...

    def accounts_of_person(self, person_id: str) -> list[Account]:
        """Accounts naming the person as main or other person."""
        ...


class SearchBy(StrEnum):
    NAME = "name"
    PHONE = "phone"
    ACCOUNT = "account"
    SA = "sa"
    ADDRESS = "address"


AlertT = TypeVar("AlertT")
AccountAlerts = Callable[[CcbView, Account, dt.date], Sequence[AlertT]]
"""Derives the dashboard alerts of an account on a business date."""


@dataclass(frozen=True)
class SaLine:
    sa_id: str
    status: SaStatus
    info: str


@dataclass(frozen=True)
class AccountLine(Generic[AlertT]):
    account_id: str
    info: str
    sas: tuple[SaLine, ...]
    alerts: tuple[AlertT, ...]


@dataclass(frozen=True)
class PersonHit(Generic[AlertT]):
    person_id: str
    info: str
    accounts: tuple[AccountLine[AlertT], ...]


@dataclass(frozen=True)
class SearchResult(Generic[AlertT]):
    by: SearchBy
    query: str
    hits: tuple[PersonHit[AlertT], ...]
    # More candidates matched than the limit: the CSR should narrow the query.
    truncated: bool = False


# --- matching rules (shared with the in-memory and SQL lookups) ------------------------------


def normalize_name_query(query: str) -> str:
    """Lower-cased, outer spaces dropped, inner runs of spaces single, none around the comma."""
    collapsed = re.sub(r"\s+", " ", query.strip().lower())
    return re.sub(r" ?, ?", ",", collapsed)


def phone_digits(number: str) -> str:
    return "".join(ch for ch in number if ch.isdigit())


def name_matches(person: Person, prefix: str) -> bool:
    return person.name.lower().startswith(prefix)


def phone_matches(person: Person, digits: str) -> bool:
    return any(phone_digits(phone.number) == digits for phone in person.phones)


def address_matches(address: Address, fragment: str) -> bool:
    return fragment in address.one_line().lower()


# --- search ----------------------------------------------------------------------------------


@overload
def search(view: SearchView, admin: AdminConfig, by: SearchBy, query: str, today: dt.date, *,
           max_hits: int = ...) -> SearchResult[Alert]: ...


@overload
def search(view: SearchView, admin: AdminConfig, by: SearchBy, query: str, today: dt.date,
           alerts: AccountAlerts[AlertT], max_hits: int = ...) -> SearchResult[AlertT]: ...


def search(
    view: SearchView,
    admin: AdminConfig,
    by: SearchBy,
    query: str,
    today: dt.date,
    alerts: AccountAlerts[Any] | None = None,
    max_hits: int = DEFAULT_MAX_HITS,
) -> SearchResult[Any]:
    """Steps 1.0 / 4.6: the persons matching ``query``, with their account views.

    ``alerts`` derives each account's dashboard alerts; by default
    :func:`~sync.ccb.alerts.dashboard_alerts` with ``admin``'s To Do types.
    """
    if alerts is None:
        def alerts(view: CcbView, account: Account, _today: dt.date) -> Sequence[Alert]:
            return dashboard_alerts(view, admin, account.id)

    if not query.strip():
        raise InvalidCommand("search", by.value, "query", "must not be blank")
    if len(query) > MAX_QUERY_LENGTH:
        raise InvalidCommand("search", by.value, "query",
                             f"{len(query)} characters long; at most {MAX_QUERY_LENGTH} allowed")
    matches, truncated = _matches(view, by, query, max_hits)
    hits = tuple(
        PersonHit(
            person_id=person.id,
            info=describe_person(admin, person),
            accounts=tuple(_account_line(view, admin, account, today, alerts)
                           for account in sorted(accounts, key=lambda a: a.id)),
        )
        for person, accounts in sorted(matches, key=lambda m: (m[0].name.lower(), m[0].id))
    )
    return SearchResult(by=by, query=query, hits=hits, truncated=truncated)


Match = tuple[Person, list[Account]]


def _matches(view: SearchView, by: SearchBy, query: str,
             max_hits: int) -> tuple[list[Match], bool]:
    if by in (SearchBy.NAME, SearchBy.PHONE):
        if by is SearchBy.NAME:
            persons = view.persons_by_name_prefix(normalize_name_query(query), max_hits + 1)
        else:
            digits = phone_digits(query)
            if not digits:
                raise InvalidCommand("search", by.value, "query",
                                     f"a phone search needs digits (got {query!r})")
            persons = view.persons_by_phone(digits, max_hits + 1)
        persons = sorted(persons, key=lambda p: (p.name.lower(), p.id))
        return ([(p, view.accounts_of_person(p.id)) for p in persons[:max_hits]],
                len(persons) > max_hits)
    if by is SearchBy.ACCOUNT:
        account = view.account(query.strip())
        return _under_main_persons(view, [account] if account else []), False
    if by is SearchBy.SA:
        sa = view.sa(query.strip())
        account = view.account(sa.account_id) if sa is not None else None
        return _under_main_persons(view, [account] if account else []), False
    premises = view.premises_by_address(query.strip().lower(), max_hits + 1)
    truncated = len(premises) > max_hits
    accounts: dict[str, Account] = {}
    for premise in sorted(premises, key=lambda p: p.id)[:max_hits]:
        for sa in view.sas_at_premise(premise.id):
            account = view.account(sa.account_id)
            if account is not None:
                accounts[account.id] = account
    return _under_main_persons(view, list(accounts.values())), truncated


def _under_main_persons(view: CcbView, accounts: list[Account]) -> list[Match]:
    grouped: dict[str, Match] = {}
    for account in accounts:
        person = view.person(account.main_person_id)
        if person is None:
            # An account without its main person cannot be shown person-centred; loading
            # validates the reference, so this is only reachable with inconsistent data.
            continue
        grouped.setdefault(person.id, (person, []))[1].append(account)
    return list(grouped.values())


def _account_line(view: CcbView, admin: AdminConfig, account: Account, today: dt.date,
                  alerts: AccountAlerts[AlertT]) -> AccountLine[AlertT]:
    sas = sorted(view.sas_of_account(account.id), key=lambda sa: (sa.start_date, sa.id))
    return AccountLine(
        account_id=account.id,
        info=describe_account(admin, view, account),
        sas=tuple(SaLine(sa.id, sa.status, describe_sa(admin, view, sa)) for sa in sas),
        alerts=tuple(alerts(view, account, today)),
    )
