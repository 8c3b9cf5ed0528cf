"""What a running server holds: settings, admin data, the clock and the opened stores.

Stores are opened once per server (connection pools are per store) and disposed on shutdown.
The CCB store is always opened with its sync outbox (:func:`sync.pipeline.stores.open_outbox`),
so a command entered through the API or the console is synchronized like any other.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

from sync.clock import Clock, clock_for
from sync.config.admin import AdminConfig
from sync.config.settings import Settings
from sync.pipeline.stores import open_mdm_store, open_outbox
from sync.storage.ccb import SqlCcbStore
from sync.storage.mdm import MdmStore
from sync.storage.outbox import SqlOutbox


@dataclass(frozen=True)
class AccessPolicy:
    """Who may do what: every write needs one of ``tokens``; reads need one too unless
    ``open_reads``. No tokens at all means writes are refused (a server is never open for
    writes by accident)."""

    tokens: frozenset[str] = frozenset()
    open_reads: bool = True


@dataclass
class Runtime:
    settings: Settings
    admin: AdminConfig
    access: AccessPolicy = field(default_factory=AccessPolicy)

    @property
    def clock(self) -> Clock:
        return clock_for(self.settings.business_date, self.admin.installation.base_time_zone)

    @cached_property
    def outbox(self) -> SqlOutbox:
        return open_outbox(self.settings.ccb_db_url, self.admin, self.clock)

    @property
    def ccb(self) -> SqlCcbStore:
        return self.outbox.store

    @cached_property
    def mdm(self) -> MdmStore:
        return open_mdm_store(self.settings.mdm_db_url, self.admin)

    def close(self) -> None:
        if "outbox" in self.__dict__:
            self.outbox.store.dispose()
        if "mdm" in self.__dict__:
            self.mdm.dispose()
