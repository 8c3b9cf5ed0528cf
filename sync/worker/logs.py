"""The workers' log: one line per event, not one per reconnection attempt.

While the broker is down or restarting, the Kafka clients log every failed connection attempt,
metadata refresh and fetch: about 35 lines a second per worker, a thousand in a 30 s restart,
burying the worker's own lines. Each kind of client line (its logger, level and message
template) is written once per :data:`REPEAT_WINDOW_S`; the next one written after that says how
many like it were left out. The worker's own loggers are never thinned. kafka-python's
informational lines about each connection it opens (the topic administration at start) are
left out altogether; its warnings and errors are kept.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
REPEAT_WINDOW_S = 60.0
# The Kafka client libraries' loggers: aiokafka's (the bus) and kafka-python's (topic admin).
CLIENT_LOGGERS = ("aiokafka", "kafka")


def _is_client(name: str) -> bool:
    return any(name == prefix or name.startswith(prefix + ".") for prefix in CLIENT_LOGGERS)


class RepeatedClientLines(logging.Filter):
    """Lets a client line through once per window of its kind; the next one let through
    carries the count of those left out."""

    def __init__(self, window_s: float = REPEAT_WINDOW_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self.window_s = window_s
        self._clock = clock
        # kind -> (when one was last let through, how many were left out since)
        self._kinds: dict[tuple[str, int, str], tuple[float, int]] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        if not _is_client(record.name):
            return True
        kind = (record.name, record.levelno, str(record.msg))
        now = self._clock()
        seen = self._kinds.get(kind)
        if seen is not None and now - seen[0] < self.window_s:
            self._kinds[kind] = (seen[0], seen[1] + 1)
            return False
        left_out = 0 if seen is None else seen[1]
        self._kinds[kind] = (now, 0)
        if left_out:
            # The handler formats the record: add the count to the message it will format.
            record.msg = (f"{record.msg} [{left_out} more like this in the last "
                          f"{self.window_s:.0f} s not shown]")
        return True


def configure_worker_logging(level: int = logging.INFO) -> None:
    """Log to stderr with time, level and logger, thinning the Kafka clients' repeats."""
    logging.basicConfig(level=level, stream=sys.stderr, format=FORMAT)
    logging.getLogger("kafka").setLevel(max(level, logging.WARNING))
    thinning = RepeatedClientLines()
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, RepeatedClientLines) for f in handler.filters):
            handler.addFilter(thinning)
