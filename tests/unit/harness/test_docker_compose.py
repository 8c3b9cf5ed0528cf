"""docker-compose.yml parses and matches the settings the test suite and launcher use."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from sync.devtools.kafka import KAFKA_VERSION

COMPOSE = Path(__file__).parents[3] / "docker-compose.yml"


def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(COMPOSE.read_text("utf-8"))
    return data


def test_kafka_service_is_the_same_apache_kafka_in_kraft_mode() -> None:
    kafka = compose()["services"]["kafka"]
    assert kafka["image"] == f"apache/kafka:{KAFKA_VERSION}"
    env = kafka["environment"]
    assert env["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert env["KAFKA_NUM_PARTITIONS"] == 3
    assert env["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"
    assert env["KAFKA_ADVERTISED_LISTENERS"].startswith("EXTERNAL://127.0.0.1:")
    # Ports are published on loopback only.
    assert all(port.startswith("127.0.0.1:") for port in kafka["ports"])


def test_postgres_service_matches_the_test_url_in_the_header() -> None:
    postgres = compose()["services"]["postgres"]
    env = postgres["environment"]
    url = (f"postgresql+psycopg://{env['POSTGRES_USER']}:{env['POSTGRES_PASSWORD']}"
           f"@127.0.0.1:5432/{env['POSTGRES_DB']}")
    assert url in COMPOSE.read_text("utf-8")
    assert all(port.startswith("127.0.0.1:") for port in postgres["ports"])
    assert "healthcheck" in postgres

