"""Info strings and person name validation (plug-in points of SPEC.md sections 1 and 2).

The source system shows a one-line summary next to every person, account and SA id; which
algorithm formats it is an installation choice (``algorithms.person_info`` and friends in the
admin data). The functions bound here are the shipped algorithms; :func:`describe_person`,
:func:`describe_account` and :func:`describe_sa` run whichever one the installation names.

Person names (``C2M-PERNMVAL``):

* a person is ``LAST,FIRST``: exactly one comma, no spaces around it, both parts non-empty;
  each part is letters with inner single spaces, hyphens, apostrophes and periods
  ("O'BRIEN", "VAN DER BERG", "SMITH-JONES,MARY ANN", "KING JR.,MARTIN") and holds a letter;
* a business name is free form but not blank;
* no name starts or ends with whitespace, and none is longer than 254 characters.

Capitalization is *not* validated: names are stored as entered ("McDonald,Ann" and
"MCDONALD,ANN" are both valid) because mixed-case surnames ("de la Cruz", "MacLeod") cannot be
forced into one rule without rejecting real names. Everything that compares names (Control
Central search) ignores case instead.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Protocol, cast

from sync.algorithms import Spot, registry
from sync.ccb.errors import InvalidCommand
from sync.ccb.model import Account, Person, Phone, Premise, ServiceAgreement
from sync.config.admin import AdminConfig, SaType

MAX_NAME_LENGTH = 254

# One part of a person's name: words of letters (any script), joined by single spaces,
# hyphens or apostrophes, optionally ending in a period ("JR.", "ST. JOHN").
_LETTERS = r"[^\W\d_]"
_NAME_PART = re.compile(
    rf"{_LETTERS}+\.?(?:(?: |-|'|’|\. ?){_LETTERS}+\.?)*", re.UNICODE
)

PersonInfo = Callable[[Person], str]
AccountInfo = Callable[[Account, Person | None], str]
SaInfo = Callable[[ServiceAgreement, SaType | None, Premise | None], str]
PersonNameValidation = Callable[[str, bool], tuple[str, ...]]


class InfoView(Protocol):
    """The reads info strings need; every ``CcbView`` provides them."""

    def person(self, person_id: str) -> Person | None: ...

    def premise(self, premise_id: str) -> Premise | None: ...


# --- person name validation ----------------------------------------------------------------


@registry.implements(Spot.PERSON_NAME_VALIDATION, "C2M-PERNMVAL")
def validate_person_name(name: str, is_business: bool) -> tuple[str, ...]:
    """Every problem with ``name``; empty when it is valid."""
    if not name.strip():
        return ("must not be blank",)
    problems: list[str] = []
    if name != name.strip():
        problems.append("must not start or end with spaces")
    if len(name) > MAX_NAME_LENGTH:
        problems.append(f"must be at most {MAX_NAME_LENGTH} characters (got {len(name)})")
    if is_business:
        return tuple(problems)
    if name.count(",") != 1:
        problems.append(
            f"a person's name must be LAST,FIRST with exactly one comma (got {name.count(',')})"
        )
        return tuple(problems)
    last, first = name.split(",")
    if last != last.rstrip() or first != first.lstrip():
        problems.append("no spaces are allowed around the comma of LAST,FIRST")
    for label, part in (("last", last.strip()), ("first", first.strip())):
        if not part:
            problems.append(f"the {label} name part of LAST,FIRST is empty")
        elif _NAME_PART.fullmatch(part) is None:
            problems.append(
                f"the {label} name {part!r} may hold only letters, single inner spaces, "
                "hyphens, apostrophes and periods"
            )
    return tuple(problems)


def check_person_name(admin: AdminConfig, person_id: str, name: str, is_business: bool) -> None:
    """Run the installation's name validation; raise :class:`InvalidCommand` on a bad name.

    With ``algorithms.person_name_validation`` switched off (None) every name is accepted.
    """
    code = admin.algorithms.person_name_validation
    if code is None:
        return
    validate = cast(PersonNameValidation, registry.get(Spot.PERSON_NAME_VALIDATION, code))
    problems = validate(name, is_business)
    if problems:
        raise InvalidCommand(
            "person", person_id, "name", f"{name!r} is invalid ({code}): " + "; ".join(problems)
        )


# --- info strings --------------------------------------------------------------------------


def primary_phone(person: Person) -> Phone | None:
    """The phone flagged primary, else the first one listed."""
    for phone in person.phones:
        if phone.primary:
            return phone
    return person.phones[0] if person.phones else None


@registry.implements(Spot.PERSON_INFO, "C2MPERS-INFO")
def person_info(person: Person) -> str:
    phone = primary_phone(person)
    if phone is None:
        return person.name
    return f"{person.name} - {phone.type} {phone.number}"


@registry.implements(Spot.ACCOUNT_INFO, "C1-ACCT-INFO")
def account_info(account: Account, main_person: Person | None) -> str:
    person = main_person.name if main_person is not None else f"{account.main_person_id} (missing)"
    return (
        f"Account {account.id} - {account.customer_class} - {person}"
        f" - bill cycle {account.bill_cycle}"
    )


@registry.implements(Spot.SA_TYPE_INFO, "C2M-SAT-INFO")
def sa_info(sa: ServiceAgreement, sa_type: SaType | None, premise: Premise | None) -> str:
    description = sa_type.description if sa_type is not None else sa.sa_type
    period = (
        f"{sa.start_date.isoformat()} to {sa.end_date.isoformat()}"
        if sa.end_date is not None
        else f"from {sa.start_date.isoformat()}"
    )
    parts = [description, sa.status.label, period]
    if premise is not None:
        parts.append(premise.address.one_line())
    elif sa.premise_id is not None:
        parts.append(f"premise {sa.premise_id} (missing)")
    return " - ".join(parts)


def describe_person(admin: AdminConfig, person: Person) -> str:
    function = cast(PersonInfo, registry.get(Spot.PERSON_INFO, admin.algorithms.person_info))
    return function(person)


def describe_account(admin: AdminConfig, view: InfoView, account: Account) -> str:
    function = cast(AccountInfo, registry.get(Spot.ACCOUNT_INFO, admin.algorithms.account_info))
    return function(account, view.person(account.main_person_id))


def describe_sa(admin: AdminConfig, view: InfoView, sa: ServiceAgreement) -> str:
    function = cast(SaInfo, registry.get(Spot.SA_TYPE_INFO, admin.algorithms.sa_type_info))
    premise = view.premise(sa.premise_id) if sa.premise_id is not None else None
    return function(sa, admin.sa_types.get(sa.sa_type), premise)
