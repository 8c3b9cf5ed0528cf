"""The workers' daily housekeeping (``SYNC-PURGE``): once per business date (at start and
whenever the date has changed) the CCB worker removes the settled sync requests, and the MDM
worker the acknowledgements it published, older than ``installation.sync_history_days``, so
that those tables do not grow with every change for ever."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Callable

from sync.clock import Clock
from sync.storage.common import first_line, is_unavailable

log = logging.getLogger(__name__)


class DailyPurge:
    """``purge(business_date)`` (how many rows it removed), at most once per business date."""

    def __init__(self, purge: Callable[[dt.date], int], clock: Clock, what: str) -> None:
        self._purge = purge
        self._clock = clock
        self._what = what
        self._done_on: dt.date | None = None
        self.removed = 0

    async def run_if_due(self) -> None:
        """Purge unless it was done on this business date already. A database out of reach
        is left to the next call; any other error is raised (a bug, not a condition)."""
        today = self._clock.business_date()
        if today == self._done_on:
            return
        try:
            removed = await asyncio.to_thread(self._purge, today)
        except Exception as error:
            if not is_unavailable(error):
                raise
            log.warning("SYNC-PURGE of %s: the database is unavailable: %s; tried again "
                        "later", self._what, first_line(error))
            return
        self._done_on = today
        self.removed += removed
        if removed:
            log.info("SYNC-PURGE: %d %s older than the history kept removed", removed,
                     self._what)
