"""``c2m-sync dev``: developer tooling (the genuine Apache Kafka launcher)."""

from __future__ import annotations

import argparse
from pathlib import Path

from sync.cli.common import CliError, Context, add_json_flag
from sync.devtools.kafka import KAFKA_VERSION, KafkaBroker, KafkaLauncherError


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    dev = commands.add_parser("dev", help="developer tooling")
    dev_commands = dev.add_subparsers(dest="dev_command", required=True)
    kafka = dev_commands.add_parser(
        "kafka", help=f"run a local Apache Kafka {KAFKA_VERSION} broker (KRaft)"
    )
    kafka.add_argument("action", choices=["start", "stop", "status"])
    kafka.add_argument("--state-dir", type=Path, default=Path("var/kafka"),
                       help="broker data and state folder (default: var/kafka)")
    kafka.add_argument("--heap", default="512m", help="JVM heap size (default: 512m)")
    kafka.add_argument("--wipe", action="store_true",
                       help="with stop: also delete the broker's data")
    add_json_flag(kafka)
    kafka.set_defaults(handler=_kafka)


def _kafka(context: Context, args: argparse.Namespace) -> int:
    broker = KafkaBroker(args.state_dir, heap=args.heap)
    try:
        if args.action == "start":
            state = broker.start()
            payload = {"running": True, "bootstrap_servers": state.bootstrap_servers,
                       "broker_url": f"kafka://{state.bootstrap_servers}", "pid": state.pid,
                       "kafka_version": state.kafka_version, "log_file": state.log_file}
            context.emit(payload, lambda: print(
                f"Apache Kafka {state.kafka_version} running at {state.bootstrap_servers} "
                f"(pid {state.pid}); use --broker kafka://{state.bootstrap_servers}"))
            return 0
        if args.action == "stop":
            stopped = broker.stop()
            if args.wipe:
                broker.remove_data()
            context.emit({"stopped": stopped}, lambda: print(
                "broker stopped" if stopped else "no broker was running"))
            return 0
        current = broker.state()
        if current is None:
            context.emit({"running": False}, lambda: print("no broker running"))
            return 3
        context.emit({"running": True, "bootstrap_servers": current.bootstrap_servers,
                      "pid": current.pid, "kafka_version": current.kafka_version},
                     lambda: print(f"running at {current.bootstrap_servers} (pid {current.pid})"))
        return 0
    except KafkaLauncherError as error:
        raise CliError(str(error)) from None
