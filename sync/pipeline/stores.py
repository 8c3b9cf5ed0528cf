"""Opening the stores the way every entry point (CLI, workers, API, demo, benchmarks) must:
the CCB store always with its sync outbox, so no change can escape synchronization."""

from __future__ import annotations

from pathlib import Path

from sync.clock import Clock
from sync.config.admin import AdminConfig
from sync.storage.ccb import SqlCcbStore
from sync.storage.mdm import MdmStore
from sync.storage.outbox import SqlOutbox


def ensure_sqlite_folder(url: str) -> None:
    """A SQLite file URL's folder is created when missing (``sqlite:///var/ccb.db``)."""
    if url.startswith("sqlite:///") and ":memory:" not in url:
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)


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

