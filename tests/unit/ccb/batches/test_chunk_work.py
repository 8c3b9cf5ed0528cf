"""A batch chunk's work answers every list read exactly as the plain work of a command: the same
entities in the same order, whatever was put in between (property test)."""

from __future__ import annotations

import datetime as dt

from hypothesis import given, settings
from hypothesis import strategies as st

from sync.ccb.batches.chunk_work import ChunkWork
from sync.ccb.memory import InMemoryCcb
from sync.ccb.model import (
    DrillKey,
    SaSpLink,
    SaStatus,
    ServiceAgreement,
    ToDoEntry,
    ToDoStatus,
)
from sync.ccb.work import Work
from sync.config.admin import load_admin_config

ADMIN = load_admin_config()
TODAY = dt.date(2025, 3, 3)
NOW = dt.datetime(2025, 3, 3, 9, 0, tzinfo=dt.UTC)
KEYS = ("K0", "K1", "K2")


def _sa(n: int, key: str, master: str | None = None) -> ServiceAgreement:
    return ServiceAgreement(id=f"SA-{n}", account_id=f"A-{key}", sa_type="E-RES",
                            status=SaStatus.ACTIVE, start_date=TODAY, premise_id=f"PR-{key}",
                            master_sa_id=master)


def _link(n: int, key: str) -> SaSpLink:
    return SaSpLink(id=f"L-{n}", sa_id=f"SA-{key}", sp_id=f"SP-{key}", start_date=TODAY)


def _todo(n: int, key: str, complete: bool) -> ToDoEntry:
    return ToDoEntry(id=f"TD-{n}", todo_type="TD-SAACT", role="CSR", message="stuck",
                     drill_key=DrillKey(kind="sa", id=f"SA-{key}"), created_at=NOW,
                     status=ToDoStatus.COMPLETE if complete else ToDoStatus.OPEN)


# (what, entity number, key, flag): put an SA / link / To Do, moved to ``key``.
puts = st.lists(st.tuples(st.sampled_from(("sa", "link", "todo")), st.integers(0, 6),
                          st.sampled_from(KEYS), st.booleans()), max_size=30)


@settings(max_examples=150, deadline=None)
@given(puts)
def test_chunk_work_reads_equal_work_reads_after_any_puts(
        steps: list[tuple[str, int, str, bool]]) -> None:
    store = InMemoryCcb()
    # Stored: SA-0..SA-2 on accounts K0..K2, SA-3 a sub SA of SA-K1's master, links.
    store.add(_sa(0, "K0"), _sa(1, "K1"), _sa(2, "K2"), _sa(3, "K1", master="SA-K1"),
              _link(0, "K0"), _link(1, "K1"), _todo(0, "K2", complete=False))

    plain = Work(store, store, ADMIN, TODAY, NOW, "batch")
    chunk = ChunkWork(store, store, ADMIN, TODAY, NOW, "batch")
    for what, n, key, flag in steps:
        for work in (plain, chunk):
            if what == "sa":
                work.changes.put_sa(_sa(n, key, master=f"SA-{key}" if flag else None))
            elif what == "link":
                work.changes.put_link(_link(n, key))
            else:
                work.changes.put_todo(_todo(n, key, complete=flag))
        for k in KEYS:
            assert chunk.sas_of_account(f"A-{k}") == plain.sas_of_account(f"A-{k}")
            assert chunk.sas_at_premise(f"PR-{k}") == plain.sas_at_premise(f"PR-{k}")
            assert chunk.sub_sas(f"SA-{k}") == plain.sub_sas(f"SA-{k}")
            assert chunk.links_of_sa(f"SA-{k}") == plain.links_of_sa(f"SA-{k}")
            assert chunk.links_at_sp(f"SP-{k}") == plain.links_at_sp(f"SP-{k}")
            drill = DrillKey(kind="sa", id=f"SA-{k}")
            assert chunk.open_todo("TD-SAACT", drill) == plain.open_todo("TD-SAACT", drill)
