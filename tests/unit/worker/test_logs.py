"""The workers' log thins the Kafka clients' repeated lines and leaves the worker's own alone."""

from __future__ import annotations

import logging

from sync.worker.logs import RepeatedClientLines


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def line(name: str, template: str, *args: object,
         level: int = logging.ERROR) -> logging.LogRecord:
    return logging.LogRecord(name, level, __file__, 1, template, args, None)


def test_a_client_line_repeated_within_the_window_is_written_once_then_counted() -> None:
    clock = Clock()
    thinning = RepeatedClientLines(window_s=60, clock=clock)
    written = []
    for attempt in range(100):  # a reconnection attempt every 0.3 s for 30 s
        clock.now = attempt * 0.3
        record = line("aiokafka", "Unable connect to node with id %s: %s", 1, f"port {attempt}")
        if thinning.filter(record):
            written.append(record.getMessage())
    clock.now = 61.0
    record = line("aiokafka", "Unable connect to node with id %s: %s", 1, "port 7")
    assert thinning.filter(record)
    written.append(record.getMessage())
    clock.now = 62.0
    record = line("aiokafka", "Unable connect to node with id %s: %s", 1, "port 8")
    assert not thinning.filter(record)
    assert written == [
        "Unable connect to node with id 1: port 0",
        "Unable connect to node with id 1: port 7 [99 more like this in the last 60 s not shown]",
    ]


def test_kinds_are_told_apart_by_logger_level_and_template() -> None:
    thinning = RepeatedClientLines(window_s=60, clock=Clock())
    kinds = [line("aiokafka", "Unable to update metadata from %s", [1]),
             line("aiokafka.consumer.fetcher", "Unable to update metadata from %s", [1]),
             line("aiokafka", "Unable to update metadata from %s", [1], level=logging.WARNING),
             line("aiokafka", "Failed fetch messages from %s: %s", 1, "NodeNotReadyError"),
             line("kafka.net.manager", "Unable to update metadata from %s", [1])]
    assert [thinning.filter(record) for record in kinds] == [True] * 5
    assert [thinning.filter(record) for record in kinds] == [False] * 5


def test_the_workers_own_lines_and_other_libraries_are_never_thinned() -> None:
    thinning = RepeatedClientLines(window_s=60, clock=Clock())
    for name in ("sync.pipeline.acks", "sync.worker", "aiokafkaesque", "kafkaesque.thing"):
        records = [line(name, "the broker is unavailable, reading again in %.1f s", 0.5)
                   for _ in range(5)]
        assert all(thinning.filter(record) for record in records), name
