"""Hypothesis strategies for wire messages."""

from __future__ import annotations

import datetime as dt

from hypothesis import strategies as st

from sync.mapping.messages import MAX_VERSION, SaSyncMessage, SpLinkSnapshot
from tests.unit.mapping.builders import sa_message

ids = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1, max_size=8)
dates = st.dates(dt.date(2000, 1, 1), dt.date(2100, 1, 1))
reads = st.none() | st.floats(allow_nan=False, allow_infinity=False)


@st.composite
def sa_messages(draw: st.DrawFn) -> SaSyncMessage:
    sp_ids = draw(st.lists(ids, max_size=3, unique=True))
    links = tuple(SpLinkSnapshot(
        sp_id=sp_id, start_date=draw(dates), stop_date=draw(st.none() | dates),
        start_read=draw(reads), stop_read=draw(reads),
        usage_flag=draw(st.sampled_from(["+", "-", "check"])),
        use_percent=draw(st.floats(0, 100))) for sp_id in sp_ids)
    return sa_message(
        draw(ids), version=draw(st.integers(1, MAX_VERSION)),
        sa_status=draw(st.sampled_from(["10", "20", "30", "40", "50", "60", "70"])),
        us_type=draw(st.none() | ids), start=draw(dates), end=draw(st.none() | dates),
        time_zone=draw(st.none() | st.just("America/Chicago")), sp_ids=tuple(sp_ids),
        sp_links=links, master_external_id=draw(st.none() | ids),
        event_time=draw(st.datetimes(timezones=st.just(dt.UTC))))
