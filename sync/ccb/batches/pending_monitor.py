"""``PSASPM``, the pending SA/SP monitor: field activities shortly before the date (step 1.6).

For a pending start (or stop) whose date is within ``installation.fa_lead_days`` of the business
date, or already past, and whose SA type needs fieldwork, the installation's fieldwork
algorithm (``C2M-SASPFWCR``) creates the FAs that do not exist yet: one per SA/SP link and
purpose. It is the creator of FAs when ``installation.fa_creation`` is ``by_pending_monitor``,
and a safety net otherwise (an FA canceled by hand, a link added later). Because the algorithm
only creates what is missing, a second run creates nothing.
"""

from __future__ import annotations

import datetime as dt

from sync.algorithms import Spot, registry
from sync.ccb.batches.common import ItemOutcome, Result, batch_sa
from sync.ccb.fieldwork import FieldworkAlgorithm
from sync.ccb.model import FaPurpose, FieldActivity, SaStatus
from sync.ccb.work import Work
from sync.config.admin import AdminConfig

CODE = "PSASPM"


def horizon(admin: AdminConfig, today: dt.date) -> dt.date:
    """The last date whose pending starts/stops get their FAs today."""
    return today + dt.timedelta(days=admin.installation.fa_lead_days)


def needs_fieldwork_types(admin: AdminConfig) -> list[str]:
    """SA types whose pending starts/stops the monitor looks at."""
    return sorted(code for code, sa_type in admin.sa_types.items() if sa_type.fieldwork_required)


def create_missing_fas(work: Work, sa_id: str) -> ItemOutcome:
    sa = batch_sa(work, sa_id)
    code = work.admin.algorithms.fieldwork
    if code is None:
        return ItemOutcome("SA", sa.id, Result.UNCHANGED, "no fieldwork algorithm configured")
    algorithm: FieldworkAlgorithm = registry.get(Spot.FIELDWORK, code)
    last = horizon(work.admin, work.today)
    created: list[FieldActivity] = []
    if sa.status is SaStatus.PENDING_START and sa.start_date <= last:
        created += algorithm(work, sa, FaPurpose.START)
    if (sa.status in (SaStatus.PENDING_START, SaStatus.PENDING_STOP)
            and sa.end_date is not None and sa.end_date <= last):
        created += algorithm(work, sa, FaPurpose.STOP)
    if not created:
        return ItemOutcome("SA", sa.id, Result.UNCHANGED, "field activities already exist")
    return ItemOutcome("SA", sa.id, Result.CHANGED,
                       "created " + ", ".join(f"{fa.id} ({fa.purpose.value})" for fa in created))
