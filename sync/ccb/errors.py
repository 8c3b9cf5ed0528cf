"""Errors raised by CCB commands and stores.

Every message names the entity, its id and, where one field is at fault, the field, so that a
CSR (or a script) can see at once what to fix. A command that raises changes nothing: the unit of
work that ran it is rolled back (or, in memory, never applied).
"""

from __future__ import annotations

from sync.ccb.model import SaStatus


class CcbError(Exception):
    """Base class of every CCB domain error."""


class NotFound(CcbError):  # noqa: N818 - the contract's name
    """A referenced entity does not exist, e.g. ``account 'A-9' not found (account_id)``."""

    def __init__(self, entity: str, entity_id: str, field: str | None = None) -> None:
        self.entity = entity
        self.entity_id = entity_id
        self.field = field
        where = f" ({field})" if field else ""
        super().__init__(f"{entity} {entity_id!r} not found{where}")


class InvalidTransition(CcbError):  # noqa: N818 - the contract's name
    """The SA lifecycle has no transition for this action from the SA's current status."""

    def __init__(
        self, sa_id: str, status: SaStatus, action: str, reason: str | None = None
    ) -> None:
        self.sa_id = sa_id
        self.status = status
        self.action = action
        self.reason = reason
        because = f": {reason}" if reason else ""
        super().__init__(
            f"SA {sa_id!r} in status {status.value} ({status.label}) cannot {action}{because}"
        )


class InvalidCommand(CcbError):  # noqa: N818 - the contract's name
    """A command whose input is wrong for the entity it names, e.g.
    ``SA 'SA-1': stop_date: 2024-01-01 is before the start date 2024-02-01``."""

    def __init__(self, entity: str, entity_id: str, field: str, reason: str) -> None:
        self.entity = entity
        self.entity_id = entity_id
        self.field = field
        self.reason = reason
        super().__init__(f"{entity} {entity_id!r}: {field}: {reason}")


class ConcurrentUpdateError(CcbError):
    """Another unit of work changed the entity since this one read it; nothing was written."""

    def __init__(self, entity_id: str, entity: str = "SA", version_read: int | None = None) -> None:
        self.entity_id = entity_id
        self.entity = entity
        self.version_read = version_read
        read = f" (version {version_read} read)" if version_read is not None else ""
        super().__init__(
            f"{entity} {entity_id!r}: version: changed concurrently{read}; retry the command"
        )
