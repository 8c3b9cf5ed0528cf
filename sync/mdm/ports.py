"""The MDM store port, and the read view that applying a command gathers its context from."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
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
