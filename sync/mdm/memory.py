"""An in-memory MDM store: the port's semantics without a database, for tests and replays that
need no durability. Not thread-safe; one writer at a time."""

from __future__ import annotations

from collections.abc import Collection

from sync.config.admin import AdminConfig
from sync.mdm.apply import decide_contact, decide_service_point, decide_with
from sync.mdm.commands import MdmCommand, UpsertContact, UpsertServicePoint
from sync.mdm.decision import ApplyDecision
from sync.mdm.model import Contact, ServicePointCopy, UsageSubscription, UsStatus
from sync.mdm.ports import ConsumedPosition


class InMemoryMdmStore:
    def __init__(self, admin: AdminConfig) -> None:
        self.admin = admin
        self._subscriptions: dict[str, UsageSubscription] = {}
        self._service_points: dict[str, ServicePointCopy] = {}
        self._contacts: dict[str, Contact] = {}
        self._positions: dict[tuple[str, int], int] = {}

    # --- MdmView ---------------------------------------------------------------------------

    def usage_subscription(self, external_id: str) -> UsageSubscription | None:
        return self._subscriptions.get(external_id)

    def service_points(self, sp_ids: Collection[str]) -> dict[str, ServicePointCopy]:
        return {sp_id: self._service_points[sp_id] for sp_id in sp_ids
                if sp_id in self._service_points}

    def service_point(self, sp_id: str) -> ServicePointCopy | None:
        return self._service_points.get(sp_id)

    def contact(self, contact_id: str) -> Contact | None:
        return self._contacts.get(contact_id)

    def count_active_subs(self, master_external_id: str, excluding: str) -> int:
        return sum(1 for us in self._subscriptions.values()
                   if us.master_external_id == master_external_id
                   and us.external_id != excluding and not us.is_inactive)

    def sharing_service_points(self, sp_ids: Collection[str], us_type: str,
                               excluding: str) -> list[UsageSubscription]:
        wanted = set(sp_ids)
        return [us for us in self._subscriptions.values()
                if us.us_type == us_type and us.external_id != excluding
                and not us.is_inactive and wanted & set(us.sp_ids())]

    # --- MdmStorePort ----------------------------------------------------------------------

    def apply(self, command: MdmCommand,
              position: ConsumedPosition | None = None) -> ApplyDecision:
        if isinstance(command, UpsertContact):
            decision = decide_contact(command, self._contacts.get(command.contact_id))
        elif isinstance(command, UpsertServicePoint):
            decision = decide_service_point(command, self._service_points.get(command.sp_id),
                                            self.admin)
        else:
            decision = decide_with(self, command, self.admin)
        if decision.applied:
            for sp in decision.service_points:
                self._service_points[sp.sp_id] = sp
            if decision.contact is not None:
                self._contacts[decision.contact.contact_id] = decision.contact
            if decision.usage_subscription is not None:
                us = decision.usage_subscription
                self._subscriptions[us.external_id] = us
        if position is not None:
            key = (position.topic, position.partition)
            self._positions[key] = max(position.offset, self._positions.get(key, -1))
        return decision

    def last_positions(self, topic: str) -> dict[int, int]:
        return {partition: offset for (name, partition), offset in sorted(self._positions.items())
                if name == topic}

    def get_us(self, external_id: str) -> UsageSubscription | None:
        return self._subscriptions.get(external_id)

    def list_us(self, *, status: UsStatus | None = None,
                sp_id: str | None = None) -> list[UsageSubscription]:
        return [us for _, us in sorted(self._subscriptions.items())
                if (status is None or us.status is status)
                and (sp_id is None or sp_id in us.sp_ids())]

    def get_service_point(self, sp_id: str) -> ServicePointCopy | None:
        return self._service_points.get(sp_id)

    def get_contact(self, contact_id: str) -> Contact | None:
        return self._contacts.get(contact_id)
