"""The MDM worker's daily housekeeping: the acknowledgements published more than
``installation.sync_history_days`` ago are removed from the store's outbox, once per business
date (at start and whenever the date has changed), so that the table does not grow with every
message for ever."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging

from sync.clock import Clock
from sync.mdm.ports import ConsumerStorePort
from sync.storage.common import first_line, is_unavailable

log = logging.getLogger(__name__)


class DailyPurge:
    def __init__(self, store: ConsumerStorePort, clock: Clock) -> None:
        self._store = store
        self._clock = clock
        self._done_on: dt.date | None = None
        self.removed = 0

    async def run_if_due(self) -> None:
        """Purge unless it was done on this business date already. A store out of reach is
        left to the next call; any other error is raised (a bug, not a condition)."""
        today = self._clock.business_date()
        if today == self._done_on:
            return
        try:
            removed = await asyncio.to_thread(self._store.purge_history, today)
        except Exception as error:
            if not is_unavailable(error):
                raise
            log.warning("purging published acknowledgements: the MDM store is unavailable: "
                        "%s; tried again later", first_line(error))
            return
        self._done_on = today
        self.removed += removed
        if removed:
            log.info("%d published acknowledgements older than the history kept removed",
                     removed)
