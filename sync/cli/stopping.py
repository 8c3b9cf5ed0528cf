"""Long CLI commands stopped gracefully: SIGTERM or Ctrl-C ends them after the unit of work
under way (``batch run``, ``batch schedule``, ``ccb sync resend-errors``)."""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

# A command stopped by SIGTERM or Ctrl-C before the end of its work.
STOPPED_EXIT_CODE = 3


@contextmanager
def stopped_by_signals(stop: threading.Event) -> Iterator[None]:
    """SIGTERM or Ctrl-C sets ``stop``: the job ends after the unit of work under way, so a
    service manager's stop never rolls a chunk back. A second Ctrl-C interrupts at once (the
    chunk in flight is rolled back)."""

    def request_stop(signum: int, frame: FrameType | None) -> None:
        if not stop.is_set():
            print(f"{signal.Signals(signum).name}: stopping; a unit of work under way finishes "
                  "first (Ctrl-C again to interrupt it)", file=sys.stderr)
        stop.set()
        signal.signal(signal.SIGINT, signal.default_int_handler)

    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
