"""``c2m-sync topics create|list|describe``: the synchronization topics on the configured bus."""

from __future__ import annotations

import argparse
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from sync.cli.common import CliError, Context, add_json_flag, run_on_bus
from sync.transport.bus import Bus, BusError, TopicStatus
from sync.transport.topics import sync_topic_specs

T = TypeVar("T")

MEMORY_NOTE = ("the in-process bus (memory://) lives only inside one process: topics made "
               "here are gone when this command ends; a process using memory:// creates its "
               "own. Use --broker kafka://HOST:PORT for topics that last.")


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    topics = commands.add_parser("topics", help="create and inspect the synchronization topics")
    topic_commands = topics.add_subparsers(dest="topics_command", required=True)
    create = topic_commands.add_parser(
        "create", help="create the sync-request (compacted), acknowledgement and dead-letter "
                       "topics; existing ones are checked, not changed")
    add_json_flag(create)
    create.set_defaults(handler=_create)
    listing = topic_commands.add_parser("list", help="list the topics on the broker")
    add_json_flag(listing)
    listing.set_defaults(handler=_list)
    describe = topic_commands.add_parser(
        "describe", help="partitions, settings and offsets of topics (default: the configured "
                         "synchronization topics)")
    describe.add_argument("names", nargs="*", metavar="TOPIC")
    add_json_flag(describe)
    describe.set_defaults(handler=_describe)


def _on_bus(context: Context, work: Callable[[Bus], Awaitable[T]]) -> T:
    """Run ``work`` on a started bus; transport failures become one-line errors."""
    url = context.settings.broker_url
    try:
        return run_on_bus(context.settings, work)
    except BusError as error:
        raise CliError(f"{url}: {error}") from None


def _memory_note(context: Context) -> str | None:
    return MEMORY_NOTE if context.settings.broker_url.startswith("memory://") else None


def _create(context: Context, args: argparse.Namespace) -> int:
    specs = sync_topic_specs(context.settings)
    outcomes = _on_bus(context, lambda bus: bus.create_topics(specs))
    note = _memory_note(context)
    payload: dict[str, Any] = {
        "broker_url": context.settings.broker_url,
        "topics": [{"name": o.spec.name, "partitions": o.spec.partitions,
                    "compacted": o.spec.compacted, "configs": o.spec.kafka_configs(),
                    "status": o.status.value, "problems": list(o.problems)}
                   for o in outcomes],
    }
    if note:
        payload["note"] = note

    def human() -> None:
        context.table(f"Topics on {context.settings.broker_url}",
                      ["topic", "partitions", "cleanup policy", "status"],
                      [(o.spec.name, o.spec.partitions, o.spec.kafka_configs()["cleanup.policy"],
                        o.status.value) for o in outcomes])
        for outcome in outcomes:
            for problem in outcome.problems:
                print(f"differs: {problem}")
        if note:
            print(f"note: {note}")

    context.emit(payload, human)
    # An existing topic that differs is not repaired (see topic_problems): the operator decides.
    return 1 if any(o.status is TopicStatus.DIFFERS for o in outcomes) else 0


def _list(context: Context, args: argparse.Namespace) -> int:
    described = _on_bus(context, lambda bus: bus.describe_topics())
    note = _memory_note(context)
    payload: dict[str, Any] = {"broker_url": context.settings.broker_url,
                               "topics": [d.name for d in described]}
    if note:
        payload["note"] = note

    def human() -> None:
        for description in described:
            print(description.name)
        if note:
            print(f"note: {note}")

    context.emit(payload, human)
    return 0


def _describe(context: Context, args: argparse.Namespace) -> int:
    topics = context.settings.topics
    names = args.names or [topics.sync_requests, topics.acknowledgements, topics.dead_letters]

    async def gather(bus: Bus) -> list[dict[str, Any]]:
        found = []
        for description in await bus.describe_topics(names):
            beginnings = await bus.beginning_offsets(description.name)
            ends = await bus.end_offsets(description.name)
            found.append({
                "name": description.name, "partitions": description.partitions,
                "compacted": description.compacted, "configs": dict(description.configs),
                "offsets": [{"partition": p, "beginning": beginnings[p], "end": ends[p]}
                            for p in sorted(ends)],
            })
        return found

    described = _on_bus(context, gather)
    missing = sorted(set(names) - {d["name"] for d in described})
    note = _memory_note(context)
    payload: dict[str, Any] = {"broker_url": context.settings.broker_url,
                               "topics": described, "missing": missing}
    if note:
        payload["note"] = note

    def human() -> None:
        for topic in described:
            settings = ", ".join(f"{k}={v}" for k, v in sorted(topic["configs"].items()))
            context.table(f"{topic['name']} ({topic['partitions']} partitions; {settings})",
                          ["partition", "beginning offset", "end offset"],
                          [(o["partition"], o["beginning"], o["end"])
                           for o in topic["offsets"]])
        for name in missing:
            print(f"missing: topic {name!r} does not exist")
        if note:
            print(f"note: {note}")

    context.emit(payload, human)
    return 1 if missing else 0
