"""What a usage subscription's validations may look at besides the candidate itself.

The store gathers it (with locks, so that what was checked is still true at commit); the
validations only read it. Keeping it explicit makes each algorithm a pure function of
``(candidate, context)``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from sync.config.admin import AdminConfig, UsType
from sync.mdm.model import ServicePointCopy, UsageSubscription


@dataclass(frozen=True)
class ValidationContext:
    admin: AdminConfig
    # MDM's copies of the service points the candidate links, by SP id (unknown ones missing).
    service_points: Mapping[str, ServicePointCopy] = field(default_factory=dict)
    # The candidate's master US when it names one and MDM has it.
    master: UsageSubscription | None = None
    # How many non-inactive subs the master has besides the candidate.
    master_other_subs: int = 0
    # The other non-inactive USs of the candidate's US type linking any of its SPs.
    sharing: tuple[UsageSubscription, ...] = ()

    def us_type(self, code: str) -> UsType | None:
        return self.admin.us_types.get(code)
