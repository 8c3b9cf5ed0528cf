"""Where the worker resumes: right after the last message the MDM store has consumed.

The store, not the broker's committed offsets, is the truth: it records each consumed position
in the transaction that applies the message. A partition the store never read starts at its
beginning. A store that has consumed beyond a partition's end belongs to another topic or to a
topic that was deleted and created again; reading on would silently skip the new records
(their positions look consumed), so it is an error.
"""

from __future__ import annotations

from collections.abc import Mapping


class ResumeError(Exception):
    """The store's consumed positions do not fit the topic."""


def resume_offsets(topic: str, consumed: Mapping[int, int], beginning: Mapping[int, int],
                   end: Mapping[int, int]) -> dict[int, int]:
    """Per partition of ``topic`` (those in ``end``), the offset to read next."""
    offsets = {}
    for partition in sorted(end):
        last = consumed.get(partition)
        if last is not None and last >= end[partition]:
            raise ResumeError(
                f"the MDM store has consumed {topic}[{partition}] up to offset {last}, but the "
                f"partition ends at offset {end[partition]}: the topic was created again or "
                "the store belongs to another topic; use a fresh MDM store or replay")
        # Records before the beginning are gone (retention, compaction): start where it starts.
        offsets[partition] = max(beginning.get(partition, 0), -1 if last is None else last + 1)
    return offsets


def behind_processed(consumed: Mapping[int, int], processed: Mapping[int, int]
                     ) -> dict[int, tuple[int | None, int]]:
    """Partitions where the store has consumed less than a worker had processed (and been told
    was committed): ``partition -> (store's last consumed offset or None, processed)``. Only
    a database that lost confirmed transactions (a crash with ``synchronous_commit = off``, a
    failover to a standby that was behind) can be behind."""
    return {partition: (consumed.get(partition), offset)
            for partition, offset in sorted(processed.items())
            if consumed.get(partition, -1) < offset}
