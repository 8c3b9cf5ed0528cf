"""Row counts of an MDM store's tables: whether a store is empty (``c2m-sync replay`` rebuilds
only an empty one) and what a rebuild produced."""

from __future__ import annotations

from sqlalchemy import func, inspect, select

from sync.storage import mdm_schema as t
from sync.storage.mdm import MdmStore


def mdm_row_counts(store: MdmStore) -> dict[str, int]:
    """Rows per MDM table (tables that do not exist yet count as empty)."""
    existing = set(inspect(store.engine).get_table_names())
    counts: dict[str, int] = {}
    with store.engine.connect() as connection:
        for table in t.metadata.sorted_tables:
            counts[table.name] = (int(connection.execute(
                select(func.count()).select_from(table)).scalar_one())
                if table.name in existing else 0)
    return counts
