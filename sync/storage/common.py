"""Engine creation shared by the stores: one place that knows each database's quirks.

SQLite (the embedded default) gets write-ahead logging, so readers never block the writer,
enforced foreign keys (off by default in SQLite), and a busy timeout instead of an immediate
"database is locked". Transactions are begun by SQLAlchemy rather than by the pysqlite driver,
whose implicit transaction handling delays ``BEGIN`` until the first write; a connection may ask
for ``BEGIN IMMEDIATE`` (take the write lock up front, so a read-then-write transaction cannot
fail half-way on a lock upgrade) with the execution option ``sqlite_begin="IMMEDIATE"``; the
stores' write transactions (:func:`write_transaction`) do, after taking their turn among the
database's writers (:mod:`sync.storage.writer_turns`).

PostgreSQL always goes through psycopg 3: ``postgresql://`` and ``postgres://`` URLs are
rewritten to ``postgresql+psycopg://``.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterable, Iterator
from functools import lru_cache
from typing import Any

from sqlalchemy import Engine, Index, MetaData, create_engine, event, make_url, text
from sqlalchemy.engine import URL, Connection
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.schema import CreateIndex

from sync.storage.writer_turns import WriterTurns, database_file, turns_for

SQLITE_BUSY_TIMEOUT_MS = 30_000
SQLITE_BEGIN_OPTION = "sqlite_begin"
PG_CONNECT_TIMEOUT_S = 10
PG_KEEPALIVES = {"keepalives": 1, "keepalives_idle": 10, "keepalives_interval": 5,
                 "keepalives_count": 3}


def normalize_url(url: str | URL) -> URL:
    """The URL with PostgreSQL pinned to the psycopg 3 driver."""
    parsed = make_url(url)
    if parsed.drivername in {"postgresql", "postgres"}:
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


class DatabaseFileError(ValueError):
    """A SQLite URL names a path that cannot be the database: a folder, a file that is not a
    SQLite database, or (when the store's opener creates it) a folder that cannot be
    created."""


def _sqlite_where(url: URL) -> str:
    return f"database URL {url.render_as_string(hide_password=True)!r}"


def check_sqlite_file(url: URL) -> None:
    """:class:`DatabaseFileError` naming the URL and the path when the SQLite database of
    ``url`` is a folder: SQLite's own error ("unable to open database file") names neither,
    and is taken for an outage worth waiting out (:func:`is_unavailable`).

    Only the path's status is looked at, never the file opened: SQLite's locks are POSIX
    locks, which a process loses on a file when it closes any descriptor of that file, so a
    look at the file while another connection of this process holds it would drop that
    connection's locks. A file that is not a database is found by the first statement
    (:func:`create_missing_schema`)."""
    file = database_file(url.database)
    if file is not None and file.is_dir():
        raise DatabaseFileError(f"{_sqlite_where(url)}: {file} is a folder, not a database file")


def create_engine_for(url: str | URL, **options: Any) -> Engine:
    """An engine for ``url`` with the project's settings for its database;
    :class:`DatabaseFileError` when a SQLite URL names a folder."""
    parsed = normalize_url(url)
    if is_sqlite_url(parsed):
        check_sqlite_file(parsed)
        return _sqlite_engine(parsed, **options)
    options.setdefault("pool_pre_ping", True)
    # Never wait for ever on a server that is restarting or gone: a connection attempt gives
    # up after CONNECT_TIMEOUT_S and TCP keepalives notice a dead peer within about half a
    # minute, so the workers' outage handling (retry with backoff) sees an error it can act on.
    connect_args = options.setdefault("connect_args", {})
    connect_args.setdefault("connect_timeout", PG_CONNECT_TIMEOUT_S)
    for name, value in PG_KEEPALIVES.items():
        connect_args.setdefault(name, value)
    return create_engine(parsed, **options)


def _sqlite_engine(url: URL, **options: Any) -> Engine:
    engine = create_engine(url, **options)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" event below issue BEGIN (driver autocommit off).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
            cursor.execute("PRAGMA foreign_keys = ON")
            if database_file(url.database) is not None:
                cursor.execute("PRAGMA journal_mode = WAL")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        mode = str(connection.get_execution_options().get(SQLITE_BEGIN_OPTION, "")).upper()
        if mode not in {"", "DEFERRED", "IMMEDIATE", "EXCLUSIVE"}:
            raise ValueError(f"unknown SQLite BEGIN mode {mode!r}")
        connection.exec_driver_sql(f"BEGIN {mode}".strip())

    return engine


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"


def is_sqlite_url(url: str | URL) -> bool:
    """Whether ``url`` names a SQLite database (any driver), before an engine exists."""
    return make_url(url).get_backend_name() == "sqlite"


@contextlib.contextmanager
def write_transaction(engine: Engine) -> Iterator[Connection]:
    """A transaction that commits on success. On SQLite it takes the write lock up front
    (``BEGIN IMMEDIATE``), after its turn among the database's writers
    (:mod:`sync.storage.writer_turns`)."""
    with engine.connect() as connection:
        if not is_sqlite(engine):
            with connection.begin():
                yield connection
            return
        connection.execution_options(**{SQLITE_BEGIN_OPTION: "IMMEDIATE"})
        turns = _writer_turns(engine.url.database)
        with turns.turn() if turns is not None else contextlib.nullcontext(), \
                connection.begin():
            yield connection


@lru_cache(maxsize=64)
def _writer_turns(database: str | None) -> WriterTurns | None:
    return turns_for(database, SQLITE_BUSY_TIMEOUT_MS / 1000)


def create_missing_schema(engine: Engine, metadata: MetaData) -> None:
    """Create the tables of ``metadata`` that do not exist yet and, on the tables that do, the
    indexes they lack. ``create_all`` creates a table's indexes only with the table: a database
    created by an earlier version would never get an index added since (a slower read, or a
    uniqueness no longer guaranteed, and nothing to say so). Columns and table constraints are
    not added to existing tables.

    On PostgreSQL an index added to an existing table is built ``CONCURRENTLY``, outside any
    transaction: a plain ``CREATE INDEX`` blocks every write to the table while it reads it
    all, which on a sync request table of millions of rows held up the CCB worker and every
    command for the first minutes after an upgrade. One left invalid by a build that failed
    (a unique index the rows violate, a start stopped half-way) is dropped and built again,
    and the failure is raised naming the index; one another process is building is waited
    for (:func:`_build_concurrently`).

    It is every store's first statement: a SQLite file that is not a database is refused here
    with :class:`DatabaseFileError` naming the URL and the file."""
    try:
        with write_transaction(engine) as connection:
            metadata.create_all(connection)
            if is_sqlite(engine):
                # One writer at a time anyway: in the same transaction, before anyone writes.
                for table in metadata.sorted_tables:
                    for index in _sorted_indexes(table.indexes):
                        index.create(connection, checkfirst=True)
                return
    except DBAPIError as error:
        if is_sqlite(engine) and str(error.orig) == SQLITE_NOT_A_DATABASE:
            raise DatabaseFileError(f"{_sqlite_where(engine.url)}: "
                                    f"{database_file(engine.url.database)} is not a SQLite "
                                    "database file") from None
        raise
    _build_missing_indexes(engine, metadata)


# sqlite3's message for a file whose header is not a SQLite database's.
SQLITE_NOT_A_DATABASE = "file is not a database"


def _sorted_indexes(indexes: Iterable[Index]) -> list[Index]:
    return sorted(indexes, key=lambda index: str(index.name))


# How often a start looks again at an index another process is building.
INDEX_BUILD_POLL_S = 0.5

_INDEX_STATE = text(
    "SELECT i.indisvalid, EXISTS (SELECT 1 FROM pg_stat_progress_create_index p "
    "WHERE p.index_relid = c.oid) FROM pg_class c JOIN pg_index i ON i.indexrelid = c.oid "
    "JOIN pg_namespace n ON n.oid = c.relnamespace "
    "WHERE n.nspname = current_schema() AND c.relname = :name")


def _build_missing_indexes(engine: Engine, metadata: MetaData) -> None:
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        for table in metadata.sorted_tables:
            for index in _sorted_indexes(table.indexes):
                _build_concurrently(connection, index)


def _build_concurrently(connection: Connection, index: Index) -> None:
    """Build ``index`` unless it is there and valid. An invalid one that another process is
    building (the other services of an upgrade starting at the same time) is waited for; one
    that nobody builds was left by a build that failed, and is dropped and built again."""
    name = str(index.name)
    while True:
        state = connection.execute(_INDEX_STATE, {"name": name}).first()
        if state is None:
            break
        is_valid, being_built = bool(state[0]), bool(state[1])
        if is_valid:
            return
        if not being_built:
            connection.execute(text(f'DROP INDEX CONCURRENTLY IF EXISTS "{name}"'))
            break
        time.sleep(INDEX_BUILD_POLL_S)
    ddl = str(CreateIndex(index, if_not_exists=True).compile(dialect=connection.dialect))
    plain = " INDEX IF NOT EXISTS "
    assert plain in ddl, ddl  # SQLAlchemy's form, which CONCURRENTLY goes into
    connection.execute(text(ddl.replace(plain, " INDEX CONCURRENTLY IF NOT EXISTS ", 1)))


def is_unavailable(error: BaseException) -> bool:
    """Whether ``error`` is the database being out of reach (down, restarting, a connection cut,
    SQLite locked beyond its busy timeout) rather than a statement's fault: worth waiting out."""
    if isinstance(error, (OperationalError, InterfaceError)):
        return True
    return isinstance(error, DBAPIError) and error.connection_invalidated


def first_line(error: BaseException) -> str:
    """``Type: first line of the message``: a driver error's SQL and background link left out."""
    text = str(error).splitlines()[0] if str(error) else ""
    return f"{type(error).__name__}: {text}" if text else type(error).__name__
