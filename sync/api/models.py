"""Request and response bodies shared by every part of the API, and the constrained types of
its input (ids, free text, business dates, users).

Input types are narrower than the domain's on purpose: the API refuses, with a 422 naming the
field, what would otherwise reach the database as text it cannot store (a NUL character on
PostgreSQL) or a date the date arithmetic of the rules cannot handle (year 1, year 9999).
"""

from __future__ import annotations

import base64
import bisect
import datetime as dt
import json
from collections.abc import Callable
from typing import Annotated, TypeVar

from fastapi import Path, Query, Response
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from sync.api.problems import FieldProblem, ProblemError
from sync.ccb.changes import Changes
from sync.ccb.model import SaStatus

# No control characters in ids; free text may hold line breaks and tabs, never NUL.
ID_PATTERN = r"^[^\x00-\x1f\x7f]+$"
TEXT_PATTERN = r"^[^\x00]*$"
EARLIEST = dt.date(1900, 1, 1)
LATEST = dt.date(2999, 12, 31)

Id = Annotated[str, StringConstraints(min_length=1, max_length=100, pattern=ID_PATTERN)]
Text = Annotated[str, StringConstraints(max_length=4000, pattern=TEXT_PATTERN)]
Code = Annotated[str, StringConstraints(min_length=1, max_length=100, pattern=ID_PATTERN)]
PathId = Annotated[str, Path(min_length=1, max_length=100, pattern=ID_PATTERN)]
User = Annotated[str, StringConstraints(min_length=1, max_length=100, pattern=ID_PATTERN),
                 Field(description="who does it: written to the audit log, To Do log or "
                                   "contact")]


def _business_range(value: dt.date) -> dt.date:
    if not EARLIEST <= value <= LATEST:
        raise ValueError(f"must be between {EARLIEST.isoformat()} and {LATEST.isoformat()}")
    return value


BusinessDate = Annotated[dt.date, AfterValidator(_business_range)]


class Body(BaseModel):
    """A request body: unknown fields are refused (a misspelt option never passes silently)."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class ChangedEntity(BaseModel):
    entity_type: str
    entity_id: str


class SaChange(BaseModel):
    status: SaStatus
    start_date: dt.date
    end_date: dt.date | None
    version: int


class ChangesOut(BaseModel):
    """What one command changed (the CLI's ``--json`` answer of every command)."""

    notes: list[str] = Field(description="one line per effect, in the business's words")
    changed: list[ChangedEntity] = Field(
        description="entities whose change is synchronized (the outbox hears of each)")
    sas: dict[str, SaChange] = Field(description="every SA the command wrote, by id")
    todos: list[str]
    contacts: list[str]
    field_activities: list[str]
    financial_transactions: list[str]

    @classmethod
    def of(cls, changes: Changes) -> ChangesOut:
        return cls(
            notes=list(changes.notes),
            changed=[ChangedEntity(entity_type=kind, entity_id=entity_id)
                     for kind, entity_id in changes.changed],
            sas={sa_id: SaChange(status=sa.status, start_date=sa.start_date,
                                 end_date=sa.end_date, version=sa.version)
                 for sa_id, sa in changes.sas.items()},
            todos=sorted(changes.todos), contacts=sorted(changes.contacts),
            field_activities=sorted(changes.field_activities),
            financial_transactions=sorted(changes.financial_transactions))

# How many items a list answers at most, unless asked for fewer or more: a worklist after a
# wave of errors, or the pending SAs of a large batch, run to hundreds of thousands. The
# ``X-Total-Count`` header says how many matched.
ListLimit = Annotated[int, Query(ge=1, le=10_000, description=(
    "at most this many items (the header X-Total-Count says how many matched)"))]
DEFAULT_LIST_LIMIT = 1000
_Item = TypeVar("_Item")
ListOffset = Annotated[int, Query(ge=0, description=(
    "skip this many items first: the next page starts at offset + limit (items that leave or "
    "join the list meanwhile shift it; see after)"))]
ListAfter = Annotated[str | None, Query(
    min_length=1, max_length=2000, pattern=r"^[A-Za-z0-9_-]+$", description=(
        "the page after the last item of a page before: the X-Next-After header that page "
        "came with. It starts at that item's place in the order, so items that left or "
        "joined the list meanwhile do not shift it (not with offset)"))]
TOTAL_COUNT = "X-Total-Count"
NEXT_AFTER = "X-Next-After"

# An item's place in its list's order as plain values that sort the same way (numbers, and
# texts compared as texts): what an ``after`` cursor carries.
PageKey = tuple[int | str, ...]


def page(items: list[_Item], response: Response, offset: int, limit: int, *,
         key: Callable[[_Item], PageKey], after: str | None = None) -> list[_Item]:
    """The ``limit`` items from ``offset`` of the list (sorted by ``key``), or right after the
    place ``after`` names; how many there are in ``X-Total-Count``, and, when more follow,
    the cursor of this page's last item in ``X-Next-After``."""
    response.headers[TOTAL_COUNT] = str(len(items))
    keys = [key(item) for item in items]
    start = offset
    if after is not None:
        if offset:
            raise _after_problem("after and offset cannot be combined: after says where the "
                                 "page starts")
        start = bisect.bisect_right(keys, _place(after, keys[0] if keys else None))
    end = start + limit
    if end < len(items):
        response.headers[NEXT_AFTER] = _cursor(keys[end - 1])
    return items[start:end]


def _cursor(place: PageKey) -> str:
    text = json.dumps(list(place), separators=(",", ":"), ensure_ascii=False)
    return base64.urlsafe_b64encode(text.encode("utf-8")).decode("ascii").rstrip("=")


def _place(cursor: str, like: PageKey | None) -> PageKey:
    """The place ``cursor`` names, checked against a key of the list (``like``)."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        place = json.loads(raw.decode("utf-8"))
    except (ValueError, RecursionError) as error:  # bad base64, UTF-8 or JSON; nested deep
        raise _after_problem(f"not a cursor of this list: {error}") from error
    if not isinstance(place, list) or not all(
            isinstance(part, int | str) and not isinstance(part, bool) for part in place):
        raise _after_problem("not a cursor of this list: it holds no place in it")
    if like is not None and [type(part) for part in place] != [type(part) for part in like]:
        raise _after_problem("not a cursor of this list: it is a place in another list")
    return tuple(place)


def _after_problem(message: str) -> ProblemError:
    return ProblemError("validation", f"query parameter after: {message}",
                        errors=[FieldProblem(field="query.after", message=message)])
