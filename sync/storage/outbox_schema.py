"""The sync outbox tables, in the CCB database beside the entities they describe.

``ccb_sync_requests`` is the queue and its history: one row per sync request, in the state the
rules of :mod:`sync.ccb.sync_requests` give it. ``seq`` is the queue position the relay follows.
A partial unique index allows at most one ``PENDING`` request per entity, which is what makes the
outbox accumulative even under concurrent writers. Another partial index holds the requests
in ``ERROR`` by entity, so that finding which of a batch's entities have one costs the batch,
not the errors outstanding.

``ccb_sync_entities`` holds, per entity, the last version given to a snapshot (versions grow per
entity and never go back) and the fingerprint of the snapshot last handed to the relay (what a
new change is compared with before it is sent).

``ccb_ack_positions`` holds, per partition of the acknowledgement topic, the offset of the last
answer applied, written in the transaction that applies it: where the acknowledgement consumer
resumes when the database lost transactions it had confirmed (the consumer group's committed
offsets would have moved past them).
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    Index,
    Integer,
    LargeBinary,
    String,
    Table,
    Text,
    text,
)

from sync.storage.ccb_schema import Code, Id, Sequence, UtcDateTime, metadata

ERRORS_INDEX = "ix_ccb_sync_requests_errors"

sync_requests = Table(
    "ccb_sync_requests", metadata,
    Column("seq", Sequence, primary_key=True, autoincrement=True),
    Column("id", Id, nullable=False, unique=True),
    Column("entity_type", Code, nullable=False),
    Column("entity_id", Id, nullable=False),
    Column("state", String(16), nullable=False),
    Column("version", Integer, nullable=False),
    Column("fingerprint", String(64), nullable=False),
    Column("payload", LargeBinary, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    Column("sent_at", UtcDateTime),
    Column("acknowledged_at", UtcDateTime),
    Column("partition", Integer),
    Column("offset", Integer),
    Column("errors", Text, nullable=False, server_default="[]"),
    Column("mdm_us_id", Id),
    Column("sends", Integer, nullable=False, server_default="0"),
    Column("retries", Integer, nullable=False, server_default="0"),
    Column("note", Text),
    Index("ix_ccb_sync_requests_state_seq", "state", "seq"),
    Index("ix_ccb_sync_requests_entity", "entity_type", "entity_id", "seq"),
    Index("ux_ccb_sync_requests_pending", "entity_type", "entity_id", unique=True,
          sqlite_where=text("state = 'PENDING'"), postgresql_where=text("state = 'PENDING'")),
    # The requests left in ERROR by entity: every batch of answers looks up its entities
    # here, and a wave of rejections can leave hundreds of thousands of them.
    Index(ERRORS_INDEX, "entity_id", "entity_type",
          sqlite_where=text("state = 'ERROR'"), postgresql_where=text("state = 'ERROR'")),
)

sync_entities = Table(
    "ccb_sync_entities", metadata,
    Column("entity_type", Code, primary_key=True),
    Column("entity_id", Id, primary_key=True),
    Column("last_version", Integer, nullable=False),
    Column("sent_fingerprint", String(64)),
)

ack_positions = Table(
    "ccb_ack_positions", metadata,
    Column("topic", String(249), primary_key=True),  # Kafka's limit on topic names
    Column("partition", Integer, primary_key=True),
    Column("offset", BigInteger, nullable=False),
)
