"""What a batch run reports: counts, and one line per item it could not process."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from sync.ccb.batches.common import ItemOutcome, Result


@dataclass(frozen=True)
class ItemError:
    """An item the run could not process; nothing was changed for it."""

    entity: str
    entity_id: str
    reason: str

    def line(self) -> str:
        return f"{self.entity} {self.entity_id}: {self.reason}"


@dataclass
class BatchReport:
    code: str
    business_date: dt.date
    examined: int = 0
    changed: int = 0
    todos_raised: int = 0
    errors: list[ItemError] = field(default_factory=list)
    seconds: float = 0.0
    # One line per item that changed or raised a To Do, for ``--json`` and the docs' examples;
    # capped so that a million-SA run does not keep a million strings.
    details: list[str] = field(default_factory=list)
    max_details: int = 1000
    # Set when the run was asked to stop (SIGTERM, an operator's cancel) and ended between two
    # units of work before its selection was done: what it counted is applied, the rest is
    # left for the next run (every job is idempotent).
    stopped: bool = False

    @property
    def nothing_to_do(self) -> bool:
        return self.changed == 0 and self.todos_raised == 0 and not self.errors

    def count(self, outcomes: tuple[ItemOutcome, ...], todos_created: int) -> None:
        self.examined += len(outcomes)
        self.todos_raised += todos_created
        for outcome in outcomes:
            if outcome.result is Result.CHANGED:
                self.changed += 1
            self.changed += len(outcome.also_changed)
            if outcome.result is not Result.UNCHANGED and len(self.details) < self.max_details:
                self.details.append(f"{outcome.entity} {outcome.entity_id}: {outcome.detail}")

    def fail(self, entity: str, entity_id: str, reason: str, examined: bool = True) -> None:
        if examined:
            self.examined += 1
        self.errors.append(ItemError(entity, entity_id, reason))

    def merge(self, other: BatchReport) -> None:
        self.examined += other.examined
        self.changed += other.changed
        self.todos_raised += other.todos_raised
        self.errors.extend(other.errors)
        room = self.max_details - len(self.details)
        self.details.extend(other.details[:max(room, 0)])

    def summary(self) -> str:
        counts = (f"examined {self.examined}, changed {self.changed}, To Dos raised"
                  f" {self.todos_raised}, errors {len(self.errors)}")
        tail = " - nothing to do" if self.nothing_to_do else ""
        if self.stopped:
            tail += " - stopped on request before the end (run it again for the rest)"
        return f"{self.code} on {self.business_date.isoformat()}: {counts}{tail}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "business_date": self.business_date.isoformat(),
            "examined": self.examined,
            "changed": self.changed,
            "todos_raised": self.todos_raised,
            "errors": [{"entity": e.entity, "entity_id": e.entity_id, "reason": e.reason}
                       for e in self.errors],
            "nothing_to_do": self.nothing_to_do,
            "stopped": self.stopped,
            "seconds": round(self.seconds, 3),
            "details": self.details,
        }
