"""The server's runtime opens each store once, however many first requests arrive together,
and closing it disposes what it opened."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from sync.api.runtime import Runtime
from tests.api.support import ADMIN, settings_for


def test_first_requests_at_once_share_one_store_each(tmp_path: Path) -> None:
    runtime = Runtime(settings_for(f"sqlite:///{tmp_path / 'ccb.db'}",
                                   f"sqlite:///{tmp_path / 'mdm.db'}"), ADMIN)
    start = threading.Barrier(8)
    seen: list[Any] = []

    def first_request() -> None:
        start.wait()
        seen.append((runtime.outbox, runtime.mdm))

    threads = [threading.Thread(target=first_request) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert len(seen) == 8
    assert len({id(outbox) for outbox, _ in seen}) == 1
    assert len({id(mdm) for _, mdm in seen}) == 1
    opened = runtime.outbox
    runtime.close()
    assert runtime.outbox is not opened  # closed stores are opened afresh on the next use
    runtime.close()
