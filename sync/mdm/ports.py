"""The MDM store port, the read view that applying a command gathers its context from, and the
consumer's port: consume a message and keep its answer in one transaction (an outbox)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from sync.mdm.commands import MdmCommand
from sync.mdm.decision import ApplyDecision
from sync.mdm.model import Contact, ServicePointCopy, UsageSubscription, UsStatus


@dataclass(frozen=True, order=True)
class ConsumedPosition:
    """Where a message was read: ``offset`` is the message's own offset, so consumption resumes
    at ``offset + 1``."""

    topic: str
    partition: int
    offset: int


class MdmView(Protocol):
    """Reads inside the transaction that applies one command. An adapter with concurrent
    writers must make these reads stay true until commit (locks or serializable isolation)."""

    def usage_subscription(self, external_id: str) -> UsageSubscription | None: ...

    def service_points(self, sp_ids: Collection[str]) -> dict[str, ServicePointCopy]: ...

    def service_point(self, sp_id: str) -> ServicePointCopy | None: ...

    def contact(self, contact_id: str) -> Contact | None: ...

    def count_active_subs(self, master_external_id: str, excluding: str) -> int:
        """Non-inactive USs naming ``master_external_id`` as master, other than ``excluding``."""
        ...

    def sharing_service_points(self, sp_ids: Collection[str], us_type: str,
                               excluding: str) -> list[UsageSubscription]:
        """Non-inactive USs of ``us_type`` other than ``excluding`` linking any of ``sp_ids``."""
        ...


class MdmStorePort(Protocol):
    def apply(self, command: MdmCommand,
              position: ConsumedPosition | None = None) -> ApplyDecision:
        """Validate and apply one command; state and position commit together (the position
        is recorded for duplicates and rejections too: the message was consumed)."""
        ...

    def last_positions(self, topic: str) -> dict[int, int]:
        """Offset of the last consumed message per partition of ``topic``."""
        ...

    def get_us(self, external_id: str) -> UsageSubscription | None: ...

    def list_us(self, *, status: UsStatus | None = None,
                sp_id: str | None = None) -> list[UsageSubscription]: ...

    def get_service_point(self, sp_id: str) -> ServicePointCopy | None: ...

    def get_contact(self, contact_id: str) -> Contact | None: ...


# --- the consumer's outbox ---------------------------------------------------------------------


@dataclass(frozen=True)
class AckRecord:
    """An acknowledgement as the ack outbox keeps it: the fields it is looked up by, and the
    document that is published (JSON text). The store does not read the document."""

    sync_request_id: str
    entity_type: str
    entity_id: str
    version: int
    outcome: str
    document: str

    @property
    def key(self) -> str:
        return f"{self.entity_type}:{self.entity_id}"


@dataclass(frozen=True)
class DeadLetterRecord:
    """A message that could not be consumed: its key as read (the dead letter's key), the
    failure kind, and the document that is published (JSON text)."""

    source_key: bytes | None
    failure: str
    document: str


class OutboxKind(StrEnum):
    ACKNOWLEDGEMENT = "acknowledgement"
    DEAD_LETTER = "dead_letter"


@dataclass(frozen=True, slots=True)
class OutboxEntry:
    """An answer to publish: an acknowledgement or a dead letter of the source record at
    ``source`` (its position is the entry's key in its kind's outbox), as read back from the
    outboxes or as a batch has just stored it."""

    kind: OutboxKind
    key: bytes | None
    value: bytes
    source: ConsumedPosition


@dataclass(frozen=True)
class Consumed:
    """What consuming one message did: the decision (None when there was no command) and the
    acknowledgement stored for it."""

    decision: ApplyDecision | None
    ack: AckRecord


Acknowledge = Callable[[ApplyDecision | None], AckRecord]


@dataclass(frozen=True)
class ConsumeItem:
    """One record of a batch to consume: apply ``command`` (if any) and acknowledge."""

    position: ConsumedPosition
    command: MdmCommand | None
    acknowledge: Acknowledge


@dataclass(frozen=True)
class DeadLetterItem:
    """One record of a batch that could not be consumed: keep it as a dead letter."""

    position: ConsumedPosition
    record: DeadLetterRecord


BatchItem = ConsumeItem | DeadLetterItem
# Per item, as the single calls answer: Consumed (acknowledged) or None (consumed before) for
# a ConsumeItem, True (dead-lettered) or False (consumed before) for a DeadLetterItem.
BatchResult = Consumed | bool | None


class ConsumerStorePort(Protocol):
    """What the MDM worker needs from the store. Every consuming call is one transaction that
    also records the position, and does nothing when the position was consumed before."""

    def consume(self, position: ConsumedPosition, command: MdmCommand | None,
                acknowledge: Acknowledge) -> Consumed | None:
        """Apply ``command`` (if any), record ``position`` and store ``acknowledge(decision)``
        in the ack outbox; None, changing nothing, when ``position`` was already consumed."""
        ...

    def dead_letter(self, position: ConsumedPosition, record: DeadLetterRecord) -> bool:
        """Record ``position`` with ``record`` in the dead-letter outbox; False, changing
        nothing, when ``position`` was already consumed."""
        ...

    def consume_batch(self, items: Sequence[BatchItem]) -> list[BatchResult]:
        """Consume ``items`` in order in one transaction, each exactly as :meth:`consume` or
        :meth:`dead_letter` would; an error in any item rolls back the whole batch."""
        ...

    def last_positions(self, topic: str) -> dict[int, int]: ...

    def unpublished(self, limit: int) -> list[OutboxEntry]:
        """Unpublished acknowledgements and dead letters, each kind in consumption order."""
        ...

    def mark_published(self, entries: Sequence[OutboxEntry], at: dt.datetime) -> None:
        """Set the publication time of the stored answers at ``entries``' source positions
        (each in its kind's outbox)."""
        ...

    def purge_history(self, business_date: dt.date) -> int:
        """Remove the acknowledgements published more than ``installation.sync_history_days``
        before ``business_date`` (never an unpublished one, nor a dead letter); how many were
        removed."""
        ...

    def ping(self) -> None:
        """Raise when the store cannot be reached."""
        ...
