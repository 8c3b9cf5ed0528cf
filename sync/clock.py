"""The business clock.

Every rule that needs "today" takes it from a :class:`Clock`; domain code receives the date as an
argument and never reads the wall clock. :class:`SystemClock` is the only adapter that does.
"""

from __future__ import annotations

import datetime as dt
from typing import Protocol
from zoneinfo import ZoneInfo


class Clock(Protocol):
    def business_date(self) -> dt.date: ...

    def now(self) -> dt.datetime:
        """An aware timestamp, for event times and audit entries."""
        ...


class SystemClock:
    """Wall clock in the installation's base time zone; business date = local calendar date."""

    def __init__(self, time_zone: str = "UTC") -> None:
        self._zone = ZoneInfo(time_zone)

    def now(self) -> dt.datetime:
        return dt.datetime.now(self._zone)

    def business_date(self) -> dt.date:
        return self.now().date()


class FixedClock:
    """A clock set by tests or by ``--business-date``; time moves only when told to."""

    def __init__(self, business_date: dt.date, time_of_day: dt.time = dt.time(12, 0),
                 time_zone: str = "UTC") -> None:
        self._date = business_date
        self._time = time_of_day
        self._zone = ZoneInfo(time_zone)

    def business_date(self) -> dt.date:
        return self._date

    def now(self) -> dt.datetime:
        return dt.datetime.combine(self._date, self._time, tzinfo=self._zone)

    def advance(self, days: int = 0, seconds: float = 0.0) -> None:
        moved = self.now() + dt.timedelta(days=days, seconds=seconds)
        self._date, self._time = moved.date(), moved.timetz().replace(tzinfo=None)

    def set(self, business_date: dt.date) -> None:
        self._date = business_date


def clock_for(business_date: dt.date | None, time_zone: str = "UTC") -> Clock:
    """The clock a process runs with: fixed when a business date override is given."""
    if business_date is not None:
        return FixedClock(business_date, time_zone=time_zone)
    return SystemClock(time_zone)
