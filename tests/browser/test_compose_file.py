"""docker-compose.yml and the Dockerfile, read as files (no Docker daemon needed): the whole
stack is wired to the compose Kafka and PostgreSQL through ``C2M_SYNC_*`` settings, and the two
services the test suite uses keep their host ports and settings."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from sqlalchemy import make_url

from sync.api.security import TOKENS_ENV
from sync.config.settings import ENV_PREFIX, load_settings
from tests.browser.support import ROOT

COMPOSE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
APP_SERVICES = ("ccb", "mdm-worker")


@pytest.fixture(scope="module")
def services() -> dict[str, Any]:
    document = yaml.safe_load(COMPOSE.read_text("utf-8"))
    found: dict[str, Any] = document["services"]
    return found


def env_list(value: str) -> dict[str, str]:
    """``KEY: a://x,B://y`` listener lists as a dict of name -> address."""
    return dict(item.split("://", 1) for item in value.split(","))


def test_the_whole_stack_is_there(services: dict[str, Any]) -> None:
    assert set(services) == {"kafka", "postgres", "mdm-database", *APP_SERVICES}


def test_the_test_suites_kafka_and_postgres_keep_their_host_ports(
        services: dict[str, Any]) -> None:
    assert services["kafka"]["ports"] == ["127.0.0.1:9092:9092"]
    kafka = services["kafka"]["environment"]
    assert env_list(kafka["KAFKA_ADVERTISED_LISTENERS"])["EXTERNAL"] == "127.0.0.1:9092"
    assert kafka["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"
    assert services["postgres"]["ports"] == ["127.0.0.1:5432:5432"]
    assert services["postgres"]["environment"] == {
        "POSTGRES_USER": "c2m_sync", "POSTGRES_PASSWORD": "c2m_sync", "POSTGRES_DB": "c2m_sync"}


@pytest.mark.parametrize("name", APP_SERVICES)
def test_the_ccb_service_and_the_workers_reach_the_compose_broker_and_databases(
        services: dict[str, Any], name: str) -> None:
    service = services[name]
    env = service["environment"]
    assert all(key.startswith(ENV_PREFIX) for key in env)
    settings = load_settings(environ={key: value for key, value in env.items()
                                      if key != TOKENS_ENV and not value.startswith("${")})
    internal = env_list(services["kafka"]["environment"]["KAFKA_ADVERTISED_LISTENERS"])
    assert settings.kafka_bootstrap_servers == internal["INTERNAL"]
    assert internal["INTERNAL"].split(":")[0] == "kafka"
    postgres = services["postgres"]["environment"]
    databases = set()
    for url in (settings.ccb_db_url, settings.mdm_db_url):
        parsed = make_url(url)
        assert (parsed.drivername, parsed.host, parsed.port) == ("postgresql+psycopg",
                                                                 "postgres", 5432)
        assert (parsed.username, parsed.password) == (postgres["POSTGRES_USER"],
                                                      postgres["POSTGRES_PASSWORD"])
        databases.add(parsed.database)
    assert databases == {postgres["POSTGRES_DB"], "c2m_mdm"}  # one database per system
    assert "CREATE DATABASE c2m_mdm" in " ".join(services["mdm-database"]["command"])
    assert service["depends_on"] == {
        "kafka": {"condition": "service_healthy"},
        "postgres": {"condition": "service_healthy"},
        "mdm-database": {"condition": "service_completed_successfully"}}
    assert service["build"] == "."
    assert service["healthcheck"]["test"][0] == "CMD"


def test_the_ccb_service_serves_the_api_and_console_and_takes_its_tokens_from_the_env(
        services: dict[str, Any]) -> None:
    ccb = services["ccb"]
    assert ccb["command"] == ["serve", "--host", "0.0.0.0", "--port", "8080"]
    assert ccb["ports"] == ["127.0.0.1:8080:8080"]
    assert ccb["environment"][TOKENS_ENV] == "${C2M_SYNC_API_TOKENS:-}"
    assert "8080/health" in ccb["healthcheck"]["test"][-1]


def test_the_workers_run_relay_mdm_worker_and_acknowledgements_with_a_health_port(
        services: dict[str, Any]) -> None:
    worker = services["mdm-worker"]
    command = worker["command"]
    assert command[:2] == ["worker", "all"]
    port = command[command.index("--health-port") + 1]
    assert f"{port}/health" in worker["healthcheck"]["test"][-1]
    assert command[command.index("--health-host") + 1] == "0.0.0.0"
    assert TOKENS_ENV not in worker["environment"]


def test_the_image_installs_the_package_on_python_3_11_slim_and_runs_the_cli() -> None:
    lines = [line.strip() for line in DOCKERFILE.read_text("utf-8").splitlines()
             if line.strip() and not line.startswith("#")]
    assert lines[0] == "FROM python:3.11-slim"
    assert "COPY pyproject.toml README.md ./" in lines  # pyproject's readme is part of the build
    assert "COPY sync ./sync" in lines
    assert "RUN pip install ." in lines
    assert any(line.startswith("USER ") and "root" not in line for line in lines)
    assert 'ENTRYPOINT ["c2m-sync"]' in lines
