"""The store the benchmark measures: opened exactly as ``c2m-sync`` opens it.

Going through the CLI's own factory (``sync.cli.ccb.open_store``) means that whatever the
production store gains (the sync outbox's change hook, for one) is in every measured unit of
work too; the benchmark never builds a store its own way.
"""

from __future__ import annotations

import argparse
import datetime as dt

from sync.cli.ccb import open_store
from sync.cli.common import Context
from sync.storage.ccb import SqlCcbStore


def open_production_store(url: str, business_date: dt.date) -> SqlCcbStore:
    args = argparse.Namespace(ccb_db_url=url, mdm_db_url=None, broker=None,
                              business_date=business_date, admin_config=None)
    return open_store(Context(args))
