"""Opening the stores the way every entry point (CLI, workers, API, demo, benchmarks) must:
the CCB store always with its sync outbox, so no change can escape synchronization."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import make_url

from sync.clock import Clock
from sync.config.admin import AdminConfig
from sync.config.settings import Settings
from sync.storage.ccb import SqlCcbStore
from sync.storage.common import DatabaseFileError, is_sqlite_url
from sync.storage.mdm import MdmStore
from sync.storage.outbox import SqlOutbox


def _sqlite_folder(url: str) -> Path | None:
    """The folder of a SQLite file URL's database; None for any other URL."""
    parsed = make_url(url)
    database = parsed.database or ""
    if not is_sqlite_url(parsed) or database in ("", ":memory:") \
            or database.startswith("file:"):
        return None
    return Path(database).parent


# The folders of the embedded default databases (``./var``, relative to the working
# directory): made on first use. Any other missing folder is refused: in an explicit URL it is
# far more often a typing error than a wish for a new folder, and made silently it would leave
# a worker running on a new, empty database while the real one waits.
DEFAULT_DATABASE_FOLDERS = frozenset(
    folder for field in ("ccb_db_url", "mdm_db_url")
    if (folder := _sqlite_folder(str(Settings.model_fields[field].default))) is not None)


def ensure_sqlite_folder(url: str) -> None:
    """The default SQLite folder (``./var``) is created when missing;
    :class:`~sync.storage.common.DatabaseFileError` names any other folder of a SQLite file URL
    that does not exist, or that cannot be created."""
    folder = _sqlite_folder(url)
    if folder is None or folder.is_dir():
        return
    where = f"database URL {url!r}"
    in_the_way = _first_non_folder(folder)
    if in_the_way is not None:
        raise DatabaseFileError(f"{where}: {in_the_way} is a file, not a folder")
    if folder not in DEFAULT_DATABASE_FOLDERS:
        defaults = ", ".join(f"{default}/" for default in sorted(DEFAULT_DATABASE_FOLDERS))
        raise DatabaseFileError(
            f"{where}: folder {folder} does not exist; create it first (only the default "
            f"folder {defaults} is created)")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:  # no permission
        raise DatabaseFileError(f"{where}: cannot create folder {folder}: "
                                f"{error.strerror or error}") from None


def _first_non_folder(folder: Path) -> Path | None:
    """The first of ``folder``'s ancestors (or itself) that exists and is not a folder."""
    return next((path for path in (*reversed(folder.parents), folder)
                 if path.exists() and not path.is_dir()), None)


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

