"""Opening the stores the way every entry point (CLI, workers, API, demo, benchmarks) must:
the CCB store always with its sync outbox, so no change can escape synchronization."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import make_url

from sync.clock import Clock
from sync.config.admin import AdminConfig
from sync.storage.ccb import SqlCcbStore
from sync.storage.common import DatabaseFileError
from sync.storage.mdm import MdmStore
from sync.storage.outbox import SqlOutbox


def ensure_sqlite_folder(url: str) -> None:
    """A SQLite file URL's folder is created when missing (``sqlite:///var/ccb.db``);
    :class:`~sync.storage.common.DatabaseFileError` when it cannot be."""
    parsed = make_url(url)
    database = parsed.database or ""
    if parsed.get_backend_name() == "sqlite" and database not in ("", ":memory:") \
            and not database.startswith("file:"):
        folder = Path(database).parent
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as error:  # a file where a folder should be, no permission
            raise DatabaseFileError(f"database URL {url!r}: cannot create folder {folder}: "
                                    f"{error.strerror or error}") from None


def open_outbox(url: str, admin: AdminConfig, clock: Clock) -> SqlOutbox:
    """The CCB store at ``url`` with its outbox attached and every table created."""
    ensure_sqlite_folder(url)
    store = SqlCcbStore(url, clock=clock)
    store.create_schema()
    return SqlOutbox(store, admin)


def open_mdm_store(url: str, admin: AdminConfig) -> MdmStore:
    ensure_sqlite_folder(url)
    store = MdmStore(url, admin)
    store.create_schema()
    return store

