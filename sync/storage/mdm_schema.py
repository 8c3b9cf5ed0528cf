"""MDM tables (SQLAlchemy Core).

A usage subscription is one row plus ordered child rows (SP links, usage groups, factor
overrides); ``seq`` keeps the order of the message, so error paths such as ``spLinks[1]`` keep
pointing at the same link after a round trip. SP links are rows rather than a JSON document
because the cross-US check and ``list --sp`` look them up by SP id.

``mdm_consumed_positions`` is the tracking table: the offset of the last message consumed per topic
partition, written in the transaction that applies the message. Every table carries the ``mdm_``
prefix so that MDM and CCB may share one database.

``mdm_acknowledgements`` and ``mdm_dead_letters`` are the worker's outboxes: the answer to a
consumed message is written in the transaction that consumes it, and published afterwards
(``published_at`` set once the broker has it). Each holds at most one row per source position
(topic, partition, offset), and a position is in at most one of them: the unique key is the
proof that no message is consumed twice. The acknowledgements published more than
``installation.sync_history_days`` ago are removed (``MdmStore.purge_published``, once a
business day by the worker); from then on the versions are what keeps an old record from
being applied twice.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import JSONB

Document = JSON().with_variant(JSONB(), "postgresql")
Id = String(64)
TopicName = String(249)  # Kafka's limit on topic names
# SQLite only auto-numbers an INTEGER PRIMARY KEY.
SeqNumber = BigInteger().with_variant(Integer(), "sqlite")
Code = String(32)

metadata = MetaData()


def _owner(target: str) -> ForeignKey:
    # Child rows are replaced as a whole on every update; they live and die with their owner.
    return ForeignKey(target, ondelete="CASCADE")


contacts = Table(
    "mdm_contacts", metadata,
    Column("contact_id", Id, primary_key=True),
    Column("name", String(254), nullable=False),
    Column("is_business", Boolean, nullable=False),
    Column("phones", Document, nullable=False),
    Column("email", String(254)),
    Column("version", Integer, nullable=False),
)

service_points = Table(
    "mdm_service_points", metadata,
    Column("sp_id", Id, primary_key=True),
    Column("sp_type", Code, nullable=False),
    Column("time_zone", String(64)),
    Column("meter_id", Id),
    Column("version", Integer, nullable=False),
)

measuring_components = Table(
    "mdm_measuring_components", metadata,
    Column("sp_id", Id, _owner("mdm_service_points.sp_id"), primary_key=True),
    Column("seq", Integer, primary_key=True),
    Column("mc_id", Id, nullable=False),
    Column("mc_class", Code, nullable=False),
    Column("channel", Code, nullable=False),
)

usage_subscriptions = Table(
    "mdm_usage_subscriptions", metadata,
    Column("external_id", Id, primary_key=True),
    Column("external_account_id", Id, nullable=False, index=True),
    Column("us_type", Code, nullable=False),
    Column("status", String(8), nullable=False, index=True),
    Column("start_date", Date, nullable=False),
    Column("end_date", Date),
    Column("time_zone", String(64)),
    Column("main_contact_id", Id),
    Column("division", Code),
    Column("master_external_id", Id, index=True),
    Column("last_applied_version", BigInteger, nullable=False),
    Column("sync_request_id", String(64)),
    Column("info", Text, nullable=False),
)

us_sp_links = Table(
    "mdm_us_sp_links", metadata,
    Column("external_id", Id, _owner("mdm_usage_subscriptions.external_id"), primary_key=True),
    Column("seq", Integer, primary_key=True),
    Column("sp_id", Id, nullable=False),
    Column("start_date", Date, nullable=False),
    Column("stop_date", Date),
    Column("usage_flag", String(8), nullable=False),
    Column("use_percent", Float, nullable=False),
    Index("ix_mdm_us_sp_links_sp", "sp_id"),
)

us_usage_groups = Table(
    "mdm_us_usage_groups", metadata,
    Column("external_id", Id, _owner("mdm_usage_subscriptions.external_id"), primary_key=True),
    Column("seq", Integer, primary_key=True),
    Column("group_code", Code, nullable=False),
    Column("start_date", Date, nullable=False),
    Column("end_date", Date),
)

us_factor_overrides = Table(
    "mdm_us_factor_overrides", metadata,
    Column("external_id", Id, _owner("mdm_usage_subscriptions.external_id"), primary_key=True),
    Column("seq", Integer, primary_key=True),
    Column("factor", Code, nullable=False),
    Column("value", Float, nullable=False),
    Column("start_date", Date, nullable=False),
    Column("end_date", Date),
)

consumed_positions = Table(
    "mdm_consumed_positions", metadata,
    Column("topic", TopicName, primary_key=True),
    Column("partition", Integer, primary_key=True),
    Column("offset", BigInteger, nullable=False),
)


def _outbox(name: str, *columns: Column[object]) -> Table:
    """An outbox table: one row per consumed source position, published in ``seq`` order."""
    published_at: Column[object] = Column("published_at", DateTime(timezone=True))
    return Table(
        name, metadata,
        Column("seq", SeqNumber, primary_key=True, autoincrement=True),
        Column("source_topic", TopicName, nullable=False),
        Column("source_partition", Integer, nullable=False),
        Column("source_offset", BigInteger, nullable=False),
        *columns,
        published_at,
        UniqueConstraint("source_topic", "source_partition", "source_offset",
                         name=f"uq_{name}_source"),
        # Only unpublished rows are ever looked up by publication state.
        Index(f"ix_{name}_unpublished", "seq", sqlite_where=published_at.is_(None),
              postgresql_where=published_at.is_(None)),
    )


acknowledgements = _outbox(
    "mdm_acknowledgements",
    Column("sync_request_id", String(64), nullable=False, index=True),
    Column("entity_type", Code, nullable=False),
    Column("entity_id", Id, nullable=False),
    Column("version", BigInteger, nullable=False),
    Column("outcome", Code, nullable=False),
    Column("document", Text, nullable=False),  # the acknowledgement as published (JSON)
)

dead_letters = _outbox(
    "mdm_dead_letters",
    Column("source_key", LargeBinary),  # the dead-letter record's key: the source key as is
    Column("failure", Code, nullable=False),
    Column("document", Text, nullable=False),  # the dead-letter record as published (JSON)
)
