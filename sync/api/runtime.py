"""What a running server holds: settings, admin data, the clock and the opened stores.

Stores are opened once per server (connection pools are per store) and disposed on shutdown.
The CCB store is always opened with its sync outbox (:func:`sync.pipeline.stores.open_outbox`),
so a command entered through the API or the console is synchronized like any other.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from sync.clock import Clock, clock_for
from sync.config.admin import AdminConfig
from sync.config.settings import Settings
from sync.pipeline.stores import open_mdm_store, open_outbox
from sync.storage.ccb import SqlCcbStore
from sync.storage.common import is_sqlite_url
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
    _outbox: SqlOutbox | None = field(default=None, init=False, repr=False)
    _mdm: MdmStore | None = field(default=None, init=False, repr=False)
    # Requests run in worker threads: two first requests at once must not open two engines.
    _opening: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    @property
    def clock(self) -> Clock:
        return clock_for(self.settings.business_date, self.admin.installation.base_time_zone)

    @property
    def outbox(self) -> SqlOutbox:
        with self._opening:
            if self._outbox is None:
                self._outbox = open_outbox(self.settings.ccb_db_url, self.admin, self.clock)
            return self._outbox

    @property
    def ccb(self) -> SqlCcbStore:
        return self.outbox.store

    @property
    def mdm(self) -> MdmStore:
        with self._opening:
            if self._mdm is None:
                self._mdm = open_mdm_store(self.settings.mdm_db_url, self.admin)
            return self._mdm

    def open_embedded_stores(self) -> None:
        """Open the stores that are SQLite files now, so that a wrong path or a file that is
        not a database stops the server as it starts, named
        (:class:`~sync.storage.common.DatabaseFileError`), instead of failing every request. A
        PostgreSQL store is still opened by the first request that needs it: its server may
        come up after the API, and a request after an outage opens it again."""
        if is_sqlite_url(self.settings.ccb_db_url):
            _ = self.outbox
        if is_sqlite_url(self.settings.mdm_db_url):
            _ = self.mdm

    def close(self) -> None:
        with self._opening:
            if self._outbox is not None:
                self._outbox.store.dispose()
                self._outbox = None
            if self._mdm is not None:
                self._mdm.dispose()
                self._mdm = None
