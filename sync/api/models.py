"""Request and response bodies shared by every part of the API, and the constrained types of
its input (ids, free text, business dates, users).

Input types are narrower than the domain's on purpose: the API refuses, with a 422 naming the
field, what would otherwise reach the database as text it cannot store (a NUL character on
PostgreSQL) or a date the date arithmetic of the rules cannot handle (year 1, year 9999).
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, TypeVar

from fastapi import Path, Query, Response
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

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
    "skip this many items first: the next page starts at offset + limit"))]
TOTAL_COUNT = "X-Total-Count"


def page(items: list[_Item], response: Response, offset: int, limit: int) -> list[_Item]:
    """The items ``offset`` to ``offset + limit`` of the list, with how many there are in
    ``X-Total-Count``."""
    response.headers[TOTAL_COUNT] = str(len(items))
    return items[offset:offset + limit]
