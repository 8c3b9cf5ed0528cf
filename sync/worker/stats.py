"""What the worker has done so far, for the health endpoint and for tests.

Counters are written by the one task that processes records and read by the health endpoint;
each update is a single assignment, so a reader sees a consistent enough picture without a lock.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class Verdict(StrEnum):
    """What became of one consumed record."""

    APPLIED = "applied"
    REJECTED = "rejected"
    DUPLICATE = "duplicate"
    SYNCHRONIZED = "synchronized"  # nothing for MDM to hold (no command), acknowledged as such
    DEAD_LETTERED = "dead_lettered"
    ALREADY_CONSUMED = "already_consumed"  # read again; its answer was stored before


class WorkerStatus(StrEnum):
    STARTING = "starting"
    OK = "ok"
    FAILING = "failing"


@dataclass
class WorkerStats:
    status: WorkerStatus = WorkerStatus.STARTING
    counts: dict[Verdict, int] = field(default_factory=lambda: dict.fromkeys(Verdict, 0))
    # (topic, partition) -> offset of the last record processed
    last_offsets: dict[tuple[str, int], int] = field(default_factory=dict)
    # (topic, partition) -> end offset last seen (the offset the next record will get)
    end_offsets: dict[tuple[str, int], int] = field(default_factory=dict)
    acks_published: int = 0
    dead_letters_published: int = 0
    last_error: str | None = None
    last_error_at: dt.datetime | None = None

    def count(self, verdict: Verdict) -> None:
        self.counts[verdict] += 1

    def processed(self, topic: str, partition: int, offset: int) -> None:
        self.last_offsets[(topic, partition)] = offset

    def failed(self, error: str, at: dt.datetime) -> None:
        self.status = WorkerStatus.FAILING
        self.last_error, self.last_error_at = error, at

    def recovered(self) -> None:
        self.status = WorkerStatus.OK

    def lag(self) -> dict[tuple[str, int], int]:
        """Records behind the last seen end offset, per partition with a known end."""
        return {tp: max(0, end - self.last_offsets.get(tp, -1) - 1)
                for tp, end in self.end_offsets.items()}

    def snapshot(self) -> dict[str, Any]:
        """The JSON form the health endpoint answers with."""
        return {
            "status": self.status.value,
            "counts": {verdict.value: count for verdict, count in self.counts.items()},
            "published": {"acknowledgements": self.acks_published,
                          "deadLetters": self.dead_letters_published},
            "lastOffsets": _by_topic(self.last_offsets),
            "lag": _by_topic(self.lag()),
            "lastError": self.last_error,
            "lastErrorAt": None if self.last_error_at is None else self.last_error_at.isoformat(),
        }


def _by_topic(values: dict[tuple[str, int], int]) -> dict[str, dict[str, int]]:
    grouped: dict[str, dict[str, int]] = {}
    for (topic, partition), value in sorted(values.items()):
        grouped.setdefault(topic, {})[str(partition)] = value
    return grouped
