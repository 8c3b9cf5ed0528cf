"""What applying a command decided: applied (with the new state), rejected (with every error),
or a duplicate (nothing to do)."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict

from sync.mdm.model import Contact, ServicePointCopy, UsageSubscription, UsStatus, ValidationError


class Outcome(StrEnum):
    APPLIED = "APPLIED"
    REJECTED = "REJECTED"
    DUPLICATE = "DUPLICATE"


class EntityType(StrEnum):
    USAGE_SUBSCRIPTION = "usage_subscription"
    SERVICE_POINT = "service_point"
    CONTACT = "contact"


class ApplyDecision(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    outcome: Outcome
    entity_type: EntityType
    entity_id: str
    version: int  # the command's version
    stored_version: int | None = None  # the version applied before, if any
    errors: tuple[ValidationError, ...] = ()
    # The new state to store (APPLIED only).
    usage_subscription: UsageSubscription | None = None
    service_points: tuple[ServicePointCopy, ...] = ()
    contact: Contact | None = None
    previous_status: UsStatus | None = None

    @property
    def applied(self) -> bool:
        return self.outcome is Outcome.APPLIED

    def summary(self) -> str:
        what = f"{self.entity_type.value} {self.entity_id} version {self.version}"
        if self.outcome is Outcome.DUPLICATE:
            return f"{what}: duplicate (version {self.stored_version} already applied)"
        if self.outcome is Outcome.REJECTED:
            return f"{what}: rejected: " + "; ".join(str(error) for error in self.errors)
        if self.usage_subscription is not None:
            status = self.usage_subscription.status.value
            change = (f"{self.previous_status.value} -> {status}"
                      if self.previous_status is not None and self.previous_status != status
                      else status)
            return f"{what}: applied ({change})"
        return f"{what}: applied"
