"""Which SA serves a service point on which day.

An SA/SP link covers the days ``[start_date, stop_date)``: a stop date is exclusive, so a tenant
stopping on the day the next one starts (back-to-back) leaves neither a gap nor an overlap. A
canceled SA covers nothing. The house rule every command keeps: at one SP, no two non-canceled
SAs of the same service type cover the same day; :func:`check_no_overlap` is the last check a
command makes before its changes are handed to the store.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from sync.ccb.errors import InvalidCommand
from sync.ccb.model import SaSpLink, SaStatus, ServiceAgreement
from sync.ccb.ports import CcbView
from sync.config.admin import AdminConfig


@dataclass(frozen=True)
class Coverage:
    sa: ServiceAgreement
    link: SaSpLink

    @property
    def start(self) -> dt.date:
        return self.link.start_date

    @property
    def end(self) -> dt.date | None:
        return self.link.stop_date

    def overlaps(self, start: dt.date, end: dt.date | None) -> bool:
        return overlaps(self.start, self.end, start, end)


def overlaps(start_a: dt.date, end_a: dt.date | None, start_b: dt.date,
             end_b: dt.date | None) -> bool:
    """Whether ``[start_a, end_a)`` and ``[start_b, end_b)`` share a day (None = open end)."""
    if end_a is not None and end_a <= start_a:
        return False
    if end_b is not None and end_b <= start_b:
        return False
    return (end_b is None or start_a < end_b) and (end_a is None or start_b < end_a)


def service_type_of(admin: AdminConfig, sa: ServiceAgreement) -> str:
    return admin.sa_types[sa.sa_type].service_type


def coverage_at(view: CcbView, admin: AdminConfig, sp_id: str,
                service_type: str) -> list[Coverage]:
    """Every non-canceled SA link of ``service_type`` at the SP, by start date."""
    found: list[Coverage] = []
    for link in view.links_at_sp(sp_id):
        sa = view.sa(link.sa_id)
        if sa is None or sa.status is SaStatus.CANCELED:
            continue
        if service_type_of(admin, sa) == service_type:
            found.append(Coverage(sa, link))
    return sorted(found, key=lambda c: (c.start, c.sa.id))


def conflicts(view: CcbView, admin: AdminConfig, sp_id: str, service_type: str,
              start: dt.date, end: dt.date | None,
              excluding: frozenset[str] = frozenset()) -> list[Coverage]:
    """Coverage at the SP, other than the SAs ``excluding``, sharing a day with the period."""
    return [c for c in coverage_at(view, admin, sp_id, service_type)
            if c.sa.id not in excluding and c.overlaps(start, end)]


@dataclass(frozen=True)
class Span:
    """The days ``[start, end)`` an SA's link covers at a service point, and the SA's service
    type (only SAs of one service type may not overlap)."""

    sa_id: str
    service_type: str
    start: dt.date
    end: dt.date | None


def first_overlap(spans: Sequence[Span]) -> tuple[Span, Span] | None:
    """The first two spans of different SAs and one service type that share a day (in the
    order given, by service type in order of appearance), or None."""
    by_type: dict[str, list[Span]] = {}
    for span in spans:
        by_type.setdefault(span.service_type, []).append(span)
    for group in by_type.values():
        for index, first in enumerate(group):
            for second in group[index + 1:]:
                if first.sa_id != second.sa_id \
                        and overlaps(first.start, first.end, second.start, second.end):
                    return first, second
    return None


def check_no_overlap(view: CcbView, admin: AdminConfig, sp_ids: set[str]) -> None:
    """Raise :class:`InvalidCommand` naming the SP and both SAs if any two SAs overlap."""
    for sp_id in sorted(sp_ids):
        spans = []
        for link in view.links_at_sp(sp_id):
            sa = view.sa(link.sa_id)
            if sa is not None and sa.status is not SaStatus.CANCELED:
                spans.append(Span(sa.id, service_type_of(admin, sa), link.start_date,
                                  link.stop_date))
        found = first_overlap(spans)
        if found is not None:
            first, second = found
            raise InvalidCommand(
                "service point", sp_id, "sa_sp_links",
                f"SA {first.sa_id!r} and SA {second.sa_id!r} would both serve it"
                f" on {max(first.start, second.start).isoformat()}")
